"""Lambda entry point: Powertools decorators and the dispatch on the event's shape.

An SQS batch goes to consumer.sqs_batch. A direct asynchronous invocation is one job, handled
here and retried by Lambda itself, never by the queue: a failure raises, so the function's
MaximumRetryAttempts, MaximumEventAgeInSeconds and OnFailure destination apply. Lambda keeps
the request id across its retries of one event, which makes it the job's Idempotency-Key.
"""

from __future__ import annotations

import gc
import json
import math
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from consumer.delivery import (
    DeadLetterReason,
    Message,
    Runtime,
    dead_letter,
    deliver_or_dead_letter,
    get_runtime,
)
from consumer.sqs_batch import process_sqs_batch
from shared.deadline import Deadline
from shared.errors import ConfigurationError, DownstreamFailure, UnsupportedEventError
from shared.observability import delivered, logger, metrics, record_context, tracer

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
    try:
        if shape is EventShape.DIRECT_JOB:
            return handle_direct_job(event, context.aws_request_id, runtime, deadline)
        return process_sqs_batch(event, context, runtime, deadline)
    finally:
        # Before log_metrics flushes; also when every record failed and the batch raises.
        delivered.publish()


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


def handle_direct_job(
    event: dict[str, Any], request_id: str, runtime: Runtime, deadline: Deadline
) -> dict[str, Any]:
    body = job_body(event["body"])
    message = Message(body.text, idempotency_key=request_id, source={"SourceRequestId": request_id})
    with record_context(job_request_id=request_id):
        try:
            if body.refusal is not None:
                # Delivering 1e999 for what was sent as 1e400 would change the job silently.
                reason, detail = body.refusal
                outcome = dead_letter(runtime, message, reason, detail)
            else:
                outcome = deliver_or_dead_letter(runtime, deadline, message)
        except DownstreamFailure as failure:
            logger.warning("direct job failed; Lambda's async retries apply", error=str(failure))
            raise
        if not outcome.dead_lettered:
            logger.info("delivered", status_code=outcome.status_code)
    if outcome.dead_lettered:
        return {"status": "dead-lettered", "deadLetterMessageId": outcome.dead_letter_message_id}
    return {"status": "delivered", "statusCode": outcome.status_code}


@dataclass(frozen=True)
class JobBody:
    # Compact JSON (RFC 8259) in every case: what is delivered, or the dead-letter copy.
    text: str
    # Why it cannot be delivered as it was sent, if it cannot.
    refusal: tuple[DeadLetterReason, str] | None = None


def job_body(value: Any) -> JobBody:
    """The job's body as compact JSON, or a JSON copy and why it cannot be delivered.

    The runtime parses the invocation's JSON before the handler sees it: a number beyond a
    double's range (1e400) arrives as Infinity, the token NaN as NaN, which json.dumps would
    write as the non-JSON tokens Infinity and NaN. The copy writes them as 1e999 and -1e999
    (JSON numbers a double-based parser reads back as the same Infinity) and null.
    """
    try:
        return JobBody(json.dumps(value, separators=(",", ":"), allow_nan=False))
    except ValueError:
        pass
    marker = secrets.token_hex(16)
    found: dict[str, int] = {"inf": 0, "-inf": 0, "nan": 0}

    def finite(item: Any) -> Any:
        if isinstance(item, float) and not math.isfinite(item):
            found[str(item)] += 1
            return f"{marker}{item}"
        if isinstance(item, dict):
            return {key: finite(member) for key, member in item.items()}
        if isinstance(item, list | tuple):
            return [finite(member) for member in item]
        return item

    text = json.dumps(finite(value), separators=(",", ":"))
    for name, written in (("inf", "1e999"), ("-inf", "-1e999"), ("nan", "null")):
        # The marker is random: no string of the body holds it as json.dumps quotes it.
        text = text.replace(f'"{marker}{name}"', written)
    if found["nan"]:
        return JobBody(
            text,
            (
                DeadLetterReason.INVALID_JSON,
                "the job's body held NaN, which is not JSON (RFC 8259); this copy writes it "
                "as null",
            ),
        )
    return JobBody(
        text,
        (
            DeadLetterReason.NUMBER_OUT_OF_RANGE,
            f"the job's body held {found['inf'] + found['-inf']} number(s) beyond a double's "
            "range, which the Lambda runtime parsed as Infinity: the digits sent are lost; "
            "this copy writes each as 1e999 or -1e999",
        ),
    )


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
