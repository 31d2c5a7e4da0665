"""Lambda's SQS event, built from ReceiveMessage results as the event source mapping builds it."""

from __future__ import annotations

import base64
import hashlib
from typing import Any


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
