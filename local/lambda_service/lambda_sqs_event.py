"""Lambda's SQS event, built from ReceiveMessage results as the event source mapping builds it."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

# Lambda's payload limit of a synchronous invocation, which the event source mapping's
# invocations are: "Request must be smaller than 6291456 bytes for the InvokeFunction
# operation" (RequestEntityTooLargeException). The mapping invokes the function as soon as a
# batch's payload reaches it, whatever BatchSize and the batching window ("The payload size
# reaches 6 MB. You cannot modify this limit.": AWS Lambda Developer Guide, "How Lambda
# processes records from stream and queue-based event sources", batching behavior).
MAX_EVENT_BYTES = 6 * 1024 * 1024
_EMPTY_EVENT_BYTES = len(json.dumps({"Records": []}).encode())
# ", " between two records, as json.dumps writes them.
_SEPARATOR_BYTES = 2


def lambda_sqs_event(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    """The event Lambda's event source mapping would deliver for these ReceiveMessage results.

    Keys and attributes follow `sam local generate-event sqs receive-message`.
    """
    region = queue_arn.split(":")[3]
    return {
        "Records": [
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": dict(message.get("Attributes", {})),
                "messageAttributes": {
                    name: _event_attribute(value)
                    for name, value in message.get("MessageAttributes", {}).items()
                },
                "md5OfBody": hashlib.md5(message["Body"].encode()).hexdigest(),
                # SQS's digest of the message attributes, present when the message has any.
                **(
                    {"md5OfMessageAttributes": message["MD5OfMessageAttributes"]}
                    if "MD5OfMessageAttributes" in message
                    else {}
                ),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for message in messages
        ]
    }


def _event_attribute(value: dict[str, Any]) -> dict[str, Any]:
    attribute: dict[str, Any] = {
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": value["DataType"],
    }
    if "StringValue" in value:
        attribute["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        attribute["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode()
    return attribute


def event_bytes(event: Any) -> int:
    """The event's size as the invocation sends it (JSON, UTF-8)."""
    return len(json.dumps(event).encode())


def record_bytes(record: dict[str, Any]) -> int:
    """One record's share of the event's size (without the separator before it)."""
    return len(json.dumps(record).encode())


def records_within_limit(record_sizes: list[int], limit_bytes: int = MAX_EVENT_BYTES) -> int:
    """How many of the event's records (their record_bytes), from the first, one event of at
    most `limit_bytes` holds: at least one (an SQS message is at most 1 MiB, far below)."""
    size = _EMPTY_EVENT_BYTES
    for index, record_size in enumerate(record_sizes):
        size += record_size + (_SEPARATOR_BYTES if index else 0)
        if size > limit_bytes:
            return max(1, index)
    return len(record_sizes)
