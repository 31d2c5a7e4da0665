"""What a dead-lettered message is: its shape, its reason, where it came from.

Three shapes reach the queues of this stack:
- a message moved by the source queue's redrive policy: the original, attributes and all;
- the consumer's copy of a message that can never succeed, with the attributes
  DeadLetterReason, DeadLetterDetail and SourceMessageId (SourceRequestId for a direct job);
- Lambda's OnFailure record of a failed direct invocation: a JSON object with requestContext,
  requestPayload and responseContext (the failed-jobs queue; the DLQ of stacks deployed before
  it existed). Its requestPayload is the job: it is replayed as an invocation, never as a message.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

# The attributes the consumer adds to its dead-letter copies (consumer.dead_letter).
CONSUMER_ATTRIBUTES = ("DeadLetterReason", "DeadLetterDetail", "SourceMessageId", "SourceRequestId")
_ON_FAILURE_KEYS = {"requestContext", "requestPayload", "responseContext"}


class Shape(StrEnum):
    REDRIVE_POLICY = "redrive-policy"
    CONSUMER_COPY = "consumer-copy"
    ON_FAILURE_RECORD = "on-failure-record"


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    receipt_handle: str
    body: str
    shape: Shape
    reason: str
    detail: str
    source_id: str
    receive_count: int
    sent_timestamp_ms: int
    message_attributes: dict[str, Any]
    # FIFO queues only: the group the message belongs to.
    message_group_id: str | None = None

    @property
    def job_payload(self) -> Any:
        """The original job of an OnFailure record (its requestPayload)."""
        if self.shape is not Shape.ON_FAILURE_RECORD:
            raise ValueError(f"message {self.message_id} is not an OnFailure record")
        return json.loads(self.body)["requestPayload"]

    def attributes_to_keep(self) -> dict[str, Any]:
        """The message's own attributes, as SendMessage takes them, without the consumer's."""
        kept: dict[str, Any] = {}
        for name, value in self.message_attributes.items():
            if name in CONSUMER_ATTRIBUTES:
                continue
            kept[name] = {
                key: value[key]
                for key in ("DataType", "StringValue", "BinaryValue")
                if key in value
            }
        return kept


def on_failure_record(body: str) -> dict[str, Any] | None:
    """The parsed record when `body` is Lambda's OnFailure invocation record, else None."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    if isinstance(parsed, dict) and parsed.keys() >= _ON_FAILURE_KEYS:
        return parsed
    return None


def classify(message: dict[str, Any]) -> DeadLetter:
    """A received SQS message (with All message and system attributes) as a DeadLetter."""
    attributes = message.get("MessageAttributes", {})
    system = message.get("Attributes", {})
    body = message["Body"]

    def text(name: str) -> str:
        return str(attributes.get(name, {}).get("StringValue", ""))

    record = on_failure_record(body)
    if record is not None:
        context = record.get("requestContext", {})
        response = record.get("responseContext", {})
        shape = Shape.ON_FAILURE_RECORD
        reason = f"on-failure: {context.get('condition', '?')}"
        detail = str(response.get("functionError", response.get("statusCode", "")))
        source_id = str(context.get("requestId", ""))
    elif "DeadLetterReason" in attributes:
        shape = Shape.CONSUMER_COPY
        reason = text("DeadLetterReason")
        detail = text("DeadLetterDetail")
        source_id = text("SourceMessageId") or text("SourceRequestId")
    else:
        shape = Shape.REDRIVE_POLICY
        reason = "max-receive-count"
        detail = ""
        source_id = str(system.get("DeadLetterQueueSourceArn", ""))
    return DeadLetter(
        message_id=message["MessageId"],
        receipt_handle=message["ReceiptHandle"],
        body=body,
        shape=shape,
        reason=reason,
        detail=detail,
        source_id=source_id,
        receive_count=int(system.get("ApproximateReceiveCount", 0)),
        sent_timestamp_ms=int(system.get("SentTimestamp", 0)),
        message_attributes=attributes,
        message_group_id=system.get("MessageGroupId"),
    )
