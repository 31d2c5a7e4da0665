"""The fields of an SQS record the consumer relies on, checked once."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from consumer.errors import InvalidRecordError


@dataclass(frozen=True)
class QueuedMessage:
    message_id: str
    receipt_handle: str
    body: str
    receive_count: int
    queue_url: str
    message_attributes: Mapping[str, Any]


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
    count = attributes.get("ApproximateReceiveCount") if isinstance(attributes, dict) else None
    if not (isinstance(count, str) and count.isascii() and count.isdigit() and int(count) >= 1):
        raise InvalidRecordError(f"invalid attributes.ApproximateReceiveCount: {count!r}")
    queue_arn = _text(raw, "eventSourceARN")
    arn_parts = queue_arn.split(":")
    if len(arn_parts) != 6 or arn_parts[:3] != ["arn", arn_parts[1], "sqs"] or not all(arn_parts):
        raise InvalidRecordError(f"invalid eventSourceARN: {queue_arn!r}")
    message_attributes = raw.get("messageAttributes")
    return QueuedMessage(
        message_id=message_id,
        receipt_handle=receipt_handle,
        body=body,
        receive_count=int(count),
        queue_url=record.queue_url,
        message_attributes=message_attributes if isinstance(message_attributes, dict) else {},
    )


def _text(raw: Mapping[str, Any], key: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value:
        raise InvalidRecordError(f"record has no {key}")
    return value
