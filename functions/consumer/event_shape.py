"""Tell the two invocation shapes apart: an SQS batch and a direct (asynchronous) job."""

from __future__ import annotations

from enum import Enum
from typing import Any

from consumer.errors import UnsupportedEventError

ACCEPTED_SHAPES = (
    'an SQS batch {"Records": [...]} from the event source mapping, '
    'or a direct job {"body": <JSON value>}'
)


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
