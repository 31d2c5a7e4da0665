"""SQS adapter: the two calls the consumer makes itself; the event source mapping makes the rest."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from consumer.errors import DeadLetterError, VisibilityChangeError

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient
    from mypy_boto3_sqs.type_defs import MessageAttributeValueTypeDef

# SendMessage accepts at most 10 message attributes.
MAX_MESSAGE_ATTRIBUTES = 10


class SqsActions:
    def __init__(self, client: SQSClient, dead_letter_queue_url: str) -> None:
        self.client = client
        self.dead_letter_queue_url = dead_letter_queue_url

    def change_visibility(self, queue_url: str, receipt_handle: str, timeout_seconds: int) -> None:
        try:
            self.client.change_message_visibility(
                QueueUrl=queue_url, ReceiptHandle=receipt_handle, VisibilityTimeout=timeout_seconds
            )
        except ClientError as exc:
            raise VisibilityChangeError(
                f"ChangeMessageVisibility refused ({_error_code(exc)}): {exc}"
            ) from exc
        except BotoCoreError as exc:
            raise VisibilityChangeError(f"ChangeMessageVisibility failed: {exc}") from exc

    def send_to_dead_letter(
        self, body: str, attributes: Mapping[str, MessageAttributeValueTypeDef]
    ) -> str:
        """Send a message to the dead-letter queue; return the new message's id."""
        try:
            response = self.client.send_message(
                QueueUrl=self.dead_letter_queue_url, MessageBody=body, MessageAttributes=attributes
            )
        except ClientError as exc:
            raise DeadLetterError(
                f"SendMessage to the dead-letter queue refused ({_error_code(exc)}): {exc}"
            ) from exc
        except BotoCoreError as exc:
            raise DeadLetterError(f"SendMessage to the dead-letter queue failed: {exc}") from exc
        return response["MessageId"]


def _error_code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "unknown")


def string_attribute(value: str) -> MessageAttributeValueTypeDef:
    return {"DataType": "String", "StringValue": value}


def attributes_from_event(
    event_attributes: Mapping[str, Any],
) -> dict[str, MessageAttributeValueTypeDef]:
    """Convert a Lambda SQS record's messageAttributes to SendMessage's MessageAttributes.

    Lambda spells them camelCase with binary values base64-encoded; SendMessage wants PascalCase
    and raw bytes. Attributes of a shape SendMessage cannot carry are skipped.
    """
    converted: dict[str, MessageAttributeValueTypeDef] = {}
    for name, attribute in event_attributes.items():
        data_type = attribute.get("dataType")
        if not isinstance(data_type, str):
            continue
        if attribute.get("stringValue") is not None:
            converted[name] = {"DataType": data_type, "StringValue": attribute["stringValue"]}
        elif attribute.get("binaryValue") is not None:
            try:
                binary_value = base64.b64decode(attribute["binaryValue"], validate=True)
            except (binascii.Error, TypeError, ValueError):
                continue
            converted[name] = {"DataType": data_type, "BinaryValue": binary_value}
    return converted
