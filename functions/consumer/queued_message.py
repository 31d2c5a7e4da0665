"""The fields of an SQS record the consumer relies on, checked once."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from consumer.errors import InvalidRecordError

# ApproximateReceiveCount and SentTimestamp are decimal integers far below 10^15; a longer digit
# string is not one SQS wrote (and int() of thousands of digits is refused or slow).
_MAX_DIGITS = 15


@dataclass(frozen=True)
class QueuedMessage:
    message_id: str
    receipt_handle: str
    body: str
    receive_count: int
    # When SQS first enqueued the message (ms since the epoch); retention counts from it.
    sent_timestamp_ms: int | None
    queue_arn: str
    message_attributes: Mapping[str, Any]
    # The FIFO message group, or None (a standard queue's record may carry one too: fair queues).
    message_group_id: str | None = None


def queued_message(record: SQSRecord) -> QueuedMessage:
    raw = record.raw_event
    if raw.get("eventSource") != "aws:sqs":
        raise InvalidRecordError(f"not an SQS record (eventSource={raw.get('eventSource')!r})")
    message_id = _text(raw, "messageId")
    receipt_handle = _text(raw, "receiptHandle")
    body = raw.get("body")
    if not isinstance(body, str):
        raise InvalidRecordError("record has no body string")
    attributes = raw.get("attributes")
    if not isinstance(attributes, dict):
        attributes = {}
    receive_count = _integer(attributes.get("ApproximateReceiveCount"))
    if receive_count is None or receive_count < 1:
        raise InvalidRecordError("invalid attributes.ApproximateReceiveCount")
    queue_arn = _text(raw, "eventSourceARN")
    arn_parts = queue_arn.split(":")
    if len(arn_parts) != 6 or arn_parts[:3] != ["arn", arn_parts[1], "sqs"] or not all(arn_parts):
        raise InvalidRecordError("invalid eventSourceARN")
    message_attributes = raw.get("messageAttributes")
    return QueuedMessage(
        message_id=message_id,
        receipt_handle=receipt_handle,
        body=body,
        receive_count=receive_count,
        sent_timestamp_ms=_integer(attributes.get("SentTimestamp")),
        queue_arn=queue_arn,
        message_attributes=message_attributes if isinstance(message_attributes, dict) else {},
        message_group_id=_optional_text(attributes.get("MessageGroupId")),
    )


def _text(raw: Mapping[str, Any], key: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value:
        raise InvalidRecordError(f"record has no {key}")
    return value


def _optional_text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _integer(value: Any) -> int | None:
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= _MAX_DIGITS:
        return int(value)
    return None
