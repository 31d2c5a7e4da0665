"""SQS adapter: SQS's limits, and the calls the consumer makes itself (the event source mapping
makes the rest): visibility changes and dead-letter copies. The only module that knows
botocore's errors."""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from shared.aws_dependencies import new_client
from shared.errors import (
    DeadLetterError,
    DeadLetterTooLargeError,
    QueueUrlError,
    RedrivePolicyUnavailable,
    SendAgainError,
)
from shared.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient
    from mypy_boto3_sqs.type_defs import (
        ChangeMessageVisibilityBatchRequestEntryTypeDef,
        MessageAttributeValueTypeDef,
    )

# Batch calls (ChangeMessageVisibilityBatch, SendMessageBatch, ...) take at most 10 entries.
MAX_BATCH_ENTRIES = 10
# SendMessage accepts at most 10 message attributes.
MAX_MESSAGE_ATTRIBUTES = 10
# A message's body and its attributes (name, data type and value of each) count toward this.
MAX_MESSAGE_SIZE_BYTES = 1_048_576
# SendMessage's DelaySeconds accepts 0..900 s, on standard queues only (FIFO queues take a
# delay per queue, not per message).
MAX_DELAY_SECONDS = 900
# An SQS event source mapping's MaximumBatchingWindowInSeconds is at most 300: Lambda may have
# received a batch's messages up to that long before the invocation starts.
MAX_BATCHING_WINDOW_SECONDS = 300
# A redrive policy that could not be read is not asked for again for this long: every record
# with a carried-in count would otherwise spend a GetQueueAttributes call (and its timeouts,
# when SQS is slow or refuses) on an answer that is not coming.
REDRIVE_POLICY_RETRY_SECONDS = 30.0


# What SendMessage accepts (SQS developer guide, message attributes and SendMessage): names of
# up to 256 of these characters, not starting with AWS. or Amazon., without a leading, trailing
# or doubled period; String, Number or Binary, optionally with a custom label; and text of
# #x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF.
_ATTRIBUTE_NAME = re.compile(r"(?!(?i:aws\.|amazon\.))(?!\.)(?!.*\.\.)[A-Za-z0-9_.-]{1,256}(?<!\.)")
_DATA_TYPE = re.compile(r"(String|Number|Binary)(\.[A-Za-z0-9_.-]{1,200})?")
_NOT_SQS_TEXT = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


# How the visibility calls are run: the builtin map (one after another), or a thread pool's.
type MapCalls = Callable[
    [
        Callable[[tuple[int, Sequence[VisibilityChange]]], list[str | None]],
        Iterable[tuple[int, Sequence[VisibilityChange]]],
    ],
    Iterable[list[str | None]],
]


def sqs_client() -> SQSClient:
    """The SQS client, made when a record first needs SQS: a batch that succeeds never does.
    Short timeouts: a hung call must not eat the time the batch needs to report its failures."""
    client: SQSClient = new_client("sqs", max_attempts=3)
    return client


@dataclass(frozen=True)
class VisibilityChange:
    receipt_handle: str
    timeout_seconds: int


class SqsActions:
    def __init__(
        self,
        make_client: Callable[[], SQSClient],
        dead_letter_queue_url: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._make_client = make_client
        self.dead_letter_queue_url = dead_letter_queue_url
        self._clock = clock
        # Queue ARN -> URL, as the service returned it, for the execution environment's life.
        self._queue_urls: dict[str, str] = {}
        # Queue ARN -> its redrive policy's maxReceiveCount (None: no policy), asked once.
        self._max_receive_counts: dict[str, int | None] = {}
        # Queue ARN -> (until when, why) its redrive policy is not asked for again.
        self._redrive_policy_failures: dict[str, tuple[float, str]] = {}

    @functools.cached_property
    def client(self) -> SQSClient:
        """Made at first use (two threads may both make one; either serves)."""
        return self._make_client()

    def queue_url(self, queue_arn: str) -> str:
        """The queue's URL, asked of the service (GetQueueUrl) once per ARN.

        Never built from the ARN: SQS-compatible endpoints and partitions differ in host and
        scheme, and an endpoint may find queues only by the URL it handed out. Raises
        QueueUrlError.
        """
        if queue_arn not in self._queue_urls:
            _, _, _, _, account_id, queue_name = queue_arn.split(":", 5)
            try:
                response = self.client.get_queue_url(
                    QueueName=queue_name, QueueOwnerAWSAccountId=account_id
                )
            except (ClientError, BotoCoreError) as exc:
                raise QueueUrlError(_failure(f"GetQueueUrl of {queue_name}", exc)) from exc
            self._queue_urls[queue_arn] = response["QueueUrl"]
        return self._queue_urls[queue_arn]

    def max_receive_count(self, queue_arn: str) -> int | None:
        """The queue's redrive policy's maxReceiveCount, or None without one; asked of the
        service (GetQueueAttributes) once per ARN, and after a failure not again for
        REDRIVE_POLICY_RETRY_SECONDS. Raises RedrivePolicyUnavailable."""
        if queue_arn in self._max_receive_counts:
            return self._max_receive_counts[queue_arn]
        failed = self._redrive_policy_failures.get(queue_arn)
        if failed is not None and self._clock() < failed[0]:
            raise RedrivePolicyUnavailable(f"{failed[1]} (not asked again yet)")
        try:
            max_receive_count = self._read_max_receive_count(queue_arn)
        except RedrivePolicyUnavailable as exc:
            self._redrive_policy_failures[queue_arn] = (
                self._clock() + REDRIVE_POLICY_RETRY_SECONDS,
                str(exc),
            )
            raise
        self._max_receive_counts[queue_arn] = max_receive_count
        return max_receive_count

    def _read_max_receive_count(self, queue_arn: str) -> int | None:
        try:
            queue_url = self.queue_url(queue_arn)
            attributes = self.client.get_queue_attributes(
                QueueUrl=queue_url, AttributeNames=["RedrivePolicy"]
            )["Attributes"]
        except QueueUrlError as exc:
            raise RedrivePolicyUnavailable(str(exc)) from exc
        except (ClientError, BotoCoreError) as exc:
            raise RedrivePolicyUnavailable(_failure("GetQueueAttributes", exc)) from exc
        policy = attributes.get("RedrivePolicy")
        try:
            return None if policy is None else int(json.loads(policy)["maxReceiveCount"])
        except (ValueError, TypeError, KeyError) as exc:
            raise RedrivePolicyUnavailable(f"an unreadable RedrivePolicy: {policy!r}") from exc

    def change_visibility_batch(
        self,
        queue_url: str,
        changes: Sequence[VisibilityChange],
        *,
        map_calls: MapCalls = map,
        keep_going: Callable[[], bool] = lambda: True,
    ) -> list[str | None]:
        """Apply the changes, ten per call; for each change, None if done, else why it was not.

        One ChangeMessageVisibilityBatch call per ten failed records instead of one call each:
        fewer requests to pay for, and less of the invocation's time spent rescheduling.
        `map_calls` runs the calls (a thread pool's map runs them concurrently: a batch of
        10,000 records may need 1,000 calls); a call is only started while `keep_going()`,
        so that the invocation returns before its timeout, the changes not made reported.
        """
        chunks = [
            (start, changes[start : start + MAX_BATCH_ENTRIES])
            for start in range(0, len(changes), MAX_BATCH_ENTRIES)
        ]

        def call(chunk: tuple[int, Sequence[VisibilityChange]]) -> list[str | None]:
            start, entries = chunk
            if not keep_going():
                return [
                    "ChangeMessageVisibilityBatch not made: "
                    "the invocation's time was needed to return before its timeout"
                ] * len(entries)
            return self._change_visibility_chunk(queue_url, start, entries)

        return [refusal for refusals in map_calls(call, chunks) for refusal in refusals]

    def _change_visibility_chunk(
        self, queue_url: str, start: int, chunk: Sequence[VisibilityChange]
    ) -> list[str | None]:
        entries: list[ChangeMessageVisibilityBatchRequestEntryTypeDef] = [
            {
                # Ids are positions, not message ids: a batch may hold a message twice.
                "Id": str(start + offset),
                "ReceiptHandle": change.receipt_handle,
                "VisibilityTimeout": change.timeout_seconds,
            }
            for offset, change in enumerate(chunk)
        ]
        try:
            response = self.client.change_message_visibility_batch(
                QueueUrl=queue_url, Entries=entries
            )
        except (ClientError, BotoCoreError) as exc:
            return [_failure("ChangeMessageVisibilityBatch", exc)] * len(chunk)
        refusals: list[str | None] = [None] * len(chunk)
        for failed in response.get("Failed", []):
            refusals[int(failed["Id"]) - start] = f"{failed['Code']}: {failed.get('Message', '')}"
        return refusals

    def send_to_dead_letter(
        self,
        body: str,
        labels: Mapping[str, str],
        original_attributes: Mapping[str, Any],
        *,
        group_id: str,
        deduplication_id: str,
    ) -> str:
        """Send `body` verbatim to the DLQ with `labels` as string attributes; return the new
        message's id. Raises DeadLetterError.

        The original attributes (in the shape of Lambda's SQS event) travel along as far as
        SQS's limit of 10 allows. A FIFO dead-letter queue gets the message's group, and its id
        as the deduplication id: a copy sent twice within SQS's 5 minutes is kept once.
        """
        request: dict[str, Any] = {"QueueUrl": self.dead_letter_queue_url, "MessageBody": body}
        if self.dead_letter_queue_url.endswith(".fifo"):
            request.update(MessageGroupId=group_id, MessageDeduplicationId=deduplication_id)
        attributes: dict[str, MessageAttributeValueTypeDef] = {
            name: {"DataType": "String", "StringValue": _sqs_text(value)}
            for name, value in labels.items()
        }
        size = len(body.encode("utf-8")) + sum(map(_attribute_size, attributes.items()))
        if size > MAX_MESSAGE_SIZE_BYTES:
            raise DeadLetterTooLargeError(
                f"the dead-letter copy would be {size} bytes, over SQS's {MAX_MESSAGE_SIZE_BYTES}"
            )
        dropped: list[str] = []
        for name, value in _attributes_from_event(original_attributes).items():
            attribute_size = _attribute_size((name, value))
            if (
                name in attributes
                or len(attributes) >= MAX_MESSAGE_ATTRIBUTES
                or size + attribute_size > MAX_MESSAGE_SIZE_BYTES
            ):
                dropped.append(name)
            else:
                attributes[name] = value
                size += attribute_size
        if dropped:
            logger.warning(
                "message attributes left off the dead-letter copy "
                "(SQS allows 10 attributes and 1 MiB with the body)",
                dropped_attributes=dropped,
            )
        try:
            try:
                response = self.client.send_message(**request, MessageAttributes=attributes)
            except ClientError:
                if len(attributes) == len(labels):
                    raise
                # SQS refused something of the original attributes: the copy goes without them.
                logger.warning(
                    "the dead-letter queue refused the original attributes; sent without them"
                )
                response = self.client.send_message(
                    **request, MessageAttributes={name: attributes[name] for name in labels}
                )
        except (ClientError, BotoCoreError) as exc:
            raise DeadLetterError(_failure("SendMessage to the dead-letter queue", exc)) from exc
        return response["MessageId"]

    def send_again(
        self,
        queue_url: str,
        body: str,
        original_attributes: Mapping[str, Any],
        *,
        delay_seconds: int,
        group_id: str | None,
        deduplication_id: str,
    ) -> str:
        """Send `body` with its attributes (in the shape of Lambda's SQS event) to its own queue
        as a new message, hidden for `delay_seconds` (standard queues, at most 900 s); return its
        id. Raises SendAgainError.

        On a FIFO queue it goes into its group, with `deduplication_id`: sent twice within SQS's
        5 minutes, it is kept once.
        """
        request: dict[str, Any] = {
            "QueueUrl": queue_url,
            "MessageBody": body,
            "MessageAttributes": _attributes_from_event(original_attributes),
        }
        if queue_url.endswith(".fifo"):
            request.update(
                MessageGroupId=group_id or deduplication_id,
                MessageDeduplicationId=deduplication_id,
            )
        else:
            request["DelaySeconds"] = max(0, min(delay_seconds, MAX_DELAY_SECONDS))
        try:
            response = self.client.send_message(**request)
        except (ClientError, BotoCoreError) as exc:
            raise SendAgainError(_failure("SendMessage to its own queue", exc)) from exc
        return response["MessageId"]


def _failure(operation: str, exc: ClientError | BotoCoreError) -> str:
    """Why a call failed: the service's error code when it answered, else the SDK's reason."""
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "unknown")
        return f"{operation} refused ({code}): {exc}"
    return f"{operation} failed: {exc}"


def _attributes_from_event(
    event_attributes: Mapping[str, Any],
) -> dict[str, MessageAttributeValueTypeDef]:
    """Convert a Lambda SQS record's messageAttributes to SendMessage's MessageAttributes.

    Lambda spells them camelCase with binary values base64-encoded; SendMessage wants PascalCase
    and raw bytes. Attributes of a shape SendMessage cannot carry are skipped.
    """
    converted: dict[str, MessageAttributeValueTypeDef] = {}
    for name, attribute in event_attributes.items():
        if not (isinstance(name, str) and _ATTRIBUTE_NAME.fullmatch(name)):
            continue
        if not isinstance(attribute, Mapping):
            continue
        data_type = attribute.get("dataType")
        if not (isinstance(data_type, str) and _DATA_TYPE.fullmatch(data_type)):
            continue
        string_value = attribute.get("stringValue")
        binary_value = attribute.get("binaryValue")
        if (
            isinstance(string_value, str)
            and string_value
            and _sqs_text(string_value) == string_value
        ):
            converted[name] = {"DataType": data_type, "StringValue": string_value}
        elif isinstance(binary_value, str) and binary_value:
            try:
                decoded = base64.b64decode(binary_value, validate=True)
            except (binascii.Error, ValueError):
                continue
            converted[name] = {"DataType": data_type, "BinaryValue": decoded}
    return converted


def _sqs_text(text: str) -> str:
    """`text` with each character SQS refuses in a message replaced by U+FFFD."""
    return _NOT_SQS_TEXT.sub("\ufffd", text)


def _attribute_size(item: tuple[str, MessageAttributeValueTypeDef]) -> int:
    name, attribute = item
    binary_value = attribute.get("BinaryValue")
    value = (
        binary_value
        if isinstance(binary_value, bytes)
        else attribute.get("StringValue", "").encode("utf-8")
    )
    return len(name.encode("utf-8")) + len(attribute["DataType"].encode("utf-8")) + len(value)
