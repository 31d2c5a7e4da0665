"""SQS adapter: the source queue as the controller sees it. Its counts (the expiry sweep ends
when nothing is visible) and, for the probe without a probe URL, one message received, then
deleted or released. The only module of the controller that knows the SQS client."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from breaker_controller.errors import QueueUnavailable

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient


@dataclass(frozen=True)
class ProbeMessage:
    message_id: str
    body: str
    receipt_handle: str
    # ApproximateReceiveCount after this receive.
    receive_count: int


class SourceQueue:
    def __init__(self, make_client: Callable[[], SQSClient], queue_url: str) -> None:
        self._make_client = make_client
        self.queue_url = queue_url

    @functools.cached_property
    def client(self) -> SQSClient:
        return self._make_client()

    def visible_messages(self) -> int:
        """ApproximateNumberOfMessages. Raises QueueUnavailable."""
        try:
            attributes = self.client.get_queue_attributes(
                QueueUrl=self.queue_url, AttributeNames=["ApproximateNumberOfMessages"]
            )["Attributes"]
            return int(attributes["ApproximateNumberOfMessages"])
        except (ClientError, BotoCoreError, KeyError, ValueError) as exc:
            raise QueueUnavailable(f"GetQueueAttributes failed: {_describe(exc)}") from exc

    def receive_one(self, visibility_timeout_s: int) -> ProbeMessage | None:
        """One visible message, hidden for visibility_timeout_s; None when none is visible."""
        try:
            messages = self.client.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=1,
                VisibilityTimeout=visibility_timeout_s,
                WaitTimeSeconds=0,
                MessageSystemAttributeNames=["ApproximateReceiveCount"],
            ).get("Messages", [])
        except (ClientError, BotoCoreError) as exc:
            raise QueueUnavailable(f"ReceiveMessage failed: {_describe(exc)}") from exc
        if not messages:
            return None
        message = messages[0]
        return ProbeMessage(
            message_id=message["MessageId"],
            body=message.get("Body", ""),
            receipt_handle=message["ReceiptHandle"],
            receive_count=int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1")),
        )

    def delete(self, message: ProbeMessage) -> None:
        try:
            self.client.delete_message(
                QueueUrl=self.queue_url, ReceiptHandle=message.receipt_handle
            )
        except (ClientError, BotoCoreError) as exc:
            raise QueueUnavailable(f"DeleteMessage failed: {_describe(exc)}") from exc

    def release(self, message: ProbeMessage, after_s: int) -> None:
        try:
            self.client.change_message_visibility(
                QueueUrl=self.queue_url,
                ReceiptHandle=message.receipt_handle,
                VisibilityTimeout=after_s,
            )
        except (ClientError, BotoCoreError) as exc:
            raise QueueUnavailable(f"ChangeMessageVisibility failed: {_describe(exc)}") from exc


def _describe(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'error')}: {error.get('Message', '')}".strip()
    return type(exc).__name__
