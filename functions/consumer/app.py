"""Lambda entry point: Powertools decorators and the dispatch on the event's shape."""

from __future__ import annotations

from enum import Enum
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from consumer.breaker_probe import handle_breaker_probe
from consumer.deadline import Deadline
from consumer.direct_job import handle_direct_job
from consumer.errors import UnsupportedEventError
from consumer.observability import logger, metrics, tracer
from consumer.runtime import get_runtime
from consumer.sqs_batch import process_sqs_batch

ACCEPTED_SHAPES = (
    'an SQS batch {"Records": [...]} from the event source mapping, '
    'a direct job {"body": <JSON value>}, '
    'or the circuit breaker\'s scheduled probe {"breakerProbe": {}}'
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
    if shape is EventShape.BREAKER_PROBE:
        return handle_breaker_probe(runtime, deadline)
    if shape is EventShape.DIRECT_JOB:
        return handle_direct_job(event, context.aws_request_id, runtime, deadline)
    return process_sqs_batch(event, context, runtime, deadline)


class EventShape(Enum):
    SQS_BATCH = "sqs-batch"
    DIRECT_JOB = "direct-job"
    BREAKER_PROBE = "breaker-probe"


def classify(event: Any) -> EventShape:
    if isinstance(event, dict):
        records = event.get("Records")
        if isinstance(records, list) and (not records or any(_is_sqs(r) for r in records)):
            return EventShape.SQS_BATCH
        if "body" in event and "Records" not in event:
            return EventShape.DIRECT_JOB
        # Exactly the schedule's Input: a job's body is never mistaken for it.
        if event == {"breakerProbe": {}}:
            return EventShape.BREAKER_PROBE
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
