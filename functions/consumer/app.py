"""Lambda entry point: Powertools decorators and the dispatch on the event's shape."""

from __future__ import annotations

import gc
import os
from collections.abc import Mapping
from enum import Enum
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from consumer.deadline import Deadline
from consumer.direct_job import handle_direct_job
from consumer.errors import ConfigurationError, UnsupportedEventError
from consumer.observability import logger, metrics, tracer
from consumer.runtime import get_runtime
from consumer.sqs_batch import process_sqs_batch

ACCEPTED_SHAPES = (
    'an SQS batch {"Records": [...]} from the event source mapping, '
    'or a direct job {"body": <JSON value>}'
)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: Any, context: LambdaContext) -> Any:
    deadline = Deadline(context.get_remaining_time_in_millis)
    shape = classify(event)
    runtime = get_runtime()
    if runtime.idempotency is not None:
        runtime.idempotency.register(context)
    if shape is EventShape.DIRECT_JOB:
        return handle_direct_job(event, context.aws_request_id, runtime, deadline)
    return process_sqs_batch(event, context, runtime, deadline)


class EventShape(Enum):
    SQS_BATCH = "sqs-batch"
    DIRECT_JOB = "direct-job"


def classify(event: Any) -> EventShape:
    if isinstance(event, dict):
        records = event.get("Records")
        if isinstance(records, list) and (not records or any(_is_sqs(r) for r in records)):
            return EventShape.SQS_BATCH
        if "body" in event and "Records" not in event:
            return EventShape.DIRECT_JOB
    raise UnsupportedEventError(
        f"unsupported event: expected {ACCEPTED_SHAPES}; got {_describe(event)}"
    )


def _is_sqs(record: Any) -> bool:
    return isinstance(record, dict) and record.get("eventSource") == "aws:sqs"


def _describe(event: Any) -> str:
    # Names the keys, never the values: an event can carry data that has no place in a log.
    if isinstance(event, dict):
        keys = sorted(str(key) for key in event)[:10]
        return f"an object with keys {keys}"
    return f"a JSON {type(event).__name__}"


def init_phase(environ: Mapping[str, str]) -> None:
    """Lambda's init phase: the runtime is built now (an on-demand init gets a full vCPU for up
    to 10 s; an invocation gets its memory's share). No AWS client and no request: the
    consumer makes no Lambda control-plane call, and its clients are made at first use.

    Only in Lambda (AWS_LAMBDA_FUNCTION_NAME): a test or a tool that imports the module builds
    its runtime when it first invokes the handler. A configuration error is left to the first
    invocation, which raises it as before, with its request, instead of failing the init.
    """
    if not environ.get("AWS_LAMBDA_FUNCTION_NAME"):
        return
    try:
        runtime = get_runtime()
    except ConfigurationError:
        return
    del runtime
    # What the init made lives as long as the environment: out of the garbage collector's
    # way. Every full collection scans every tracked object (about 26,000 after the init,
    # counted with gc.get_objects, more once boto3 is imported). Python's
    # gc.freeze: "Freeze all the objects tracked by the garbage collector; move them to a
    # permanent generation and ignore them in all the future collections". The collection
    # first frees the init's own garbage, which a freeze would keep for good.
    gc.collect()
    gc.freeze()


init_phase(os.environ)
