"""The embedded emulator's cheaper SQS bookkeeping answers as moto's own does.

local.aws.emulator replaces some of moto's SQS internals while the emulator runs (counts from one
pass, a receipt-handle index, attributes built once). Each scenario here runs twice, against
moto as released (mock_aws, in process, nothing replaced) and against the running emulator, and
the two stories must be identical: every answer and every error, with ids and receipt handles
replaced by the order in which they were first seen.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.backends import get_backend

from local.aws.emulator import (
    ACCOUNT_ID,
    REGION,
    _seconds_until_due,
    expired_message_ids,
    running_emulator,
    steady_unix_time_millis,
)

Scenario = Callable[[Any, list[Any]], None]
COUNTS = [
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
]


def _call(story: list[Any], operation: Callable[..., Any], **kwargs: Any) -> Any:
    """Run one SQS call and write what it answered (or the error it raised) into the story."""
    try:
        answer = operation(**kwargs)
    except ClientError as error:
        story.append(("error", error.response["Error"]["Code"]))
        return None
    answer = {k: v for k, v in answer.items() if k != "ResponseMetadata"}
    story.append(("answer", answer))
    return answer


def _queues(sqs: Any, max_receive_count: int = 2, **source: str) -> tuple[str, str]:
    dead = sqs.create_queue(QueueName="dead")["QueueUrl"]
    dead_arn = sqs.get_queue_attributes(QueueUrl=dead, AttributeNames=["QueueArn"])
    policy = {
        "deadLetterTargetArn": dead_arn["Attributes"]["QueueArn"],
        "maxReceiveCount": max_receive_count,
    }
    url = sqs.create_queue(
        QueueName="source", Attributes={"RedrivePolicy": json.dumps(policy), **source}
    )["QueueUrl"]
    return url, dead


def _receive(sqs: Any, story: list[Any], url: str, visibility: int = 30) -> list[dict[str, Any]]:
    answer = _call(
        story,
        sqs.receive_message,
        QueueUrl=url,
        MaxNumberOfMessages=10,
        VisibilityTimeout=visibility,
        AttributeNames=["ApproximateReceiveCount"],
    )
    return list((answer or {}).get("Messages", []))


def _counts(sqs: Any, story: list[Any], url: str) -> None:
    _call(story, sqs.get_queue_attributes, QueueUrl=url, AttributeNames=COUNTS)


def visibility_deletes_and_redrive(sqs: Any, story: list[Any]) -> None:
    url, dead = _queues(sqs)
    for index in range(4):
        _call(story, sqs.send_message, QueueUrl=url, MessageBody=f"m{index}")
    _call(story, sqs.send_message, QueueUrl=url, MessageBody="later", DelaySeconds=60)
    _counts(sqs, story, url)
    first = _receive(sqs, story, url)
    _counts(sqs, story, url)
    handles = [m["ReceiptHandle"] for m in first]
    _call(story, sqs.delete_message, QueueUrl=url, ReceiptHandle=handles[0])
    # Deleting again is accepted; a handle never issued is not.
    _call(story, sqs.delete_message, QueueUrl=url, ReceiptHandle=handles[0])
    _call(story, sqs.delete_message, QueueUrl=url, ReceiptHandle="x" * 185)
    _call(story, sqs.change_message_visibility, QueueUrl=url, ReceiptHandle=handles[0],
          VisibilityTimeout=0)  # fmt: skip
    _call(story, sqs.change_message_visibility, QueueUrl=url, ReceiptHandle=handles[1],
          VisibilityTimeout=0)  # fmt: skip
    _call(story, sqs.change_message_visibility, QueueUrl=url, ReceiptHandle=handles[2],
          VisibilityTimeout=43_201)  # fmt: skip
    _call(
        story,
        sqs.change_message_visibility_batch,
        QueueUrl=url,
        Entries=[
            {"Id": "valid", "ReceiptHandle": handles[2], "VisibilityTimeout": 0},
            {"Id": "unknown", "ReceiptHandle": "y" * 185, "VisibilityTimeout": 0},
        ],
    )
    _counts(sqs, story, url)
    second = _receive(sqs, story, url)
    # The earlier handle of a message received again still deletes it (moto accepts it).
    _call(story, sqs.change_message_visibility_batch, QueueUrl=url, Entries=[
        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
        for i, m in enumerate(second)
    ])  # fmt: skip
    # Received twice with maxReceiveCount 2: the next receive moves them to the DLQ.
    _receive(sqs, story, url)
    _counts(sqs, story, url)
    _counts(sqs, story, dead)
    moved = _receive(sqs, story, dead)
    _call(story, sqs.delete_message, QueueUrl=dead, ReceiptHandle=moved[0]["ReceiptHandle"])
    _call(story, sqs.delete_message, QueueUrl=url, ReceiptHandle=handles[3])
    _counts(sqs, story, url)
    _counts(sqs, story, dead)
    _call(story, sqs.get_queue_attributes, QueueUrl=url, AttributeNames=["All"])
    _call(story, sqs.get_queue_attributes, QueueUrl=url, AttributeNames=["NoSuchName"])
    _call(story, sqs.get_queue_attributes, QueueUrl=url, AttributeNames=[])


def fifo_groups(sqs: Any, story: list[Any]) -> None:
    url = sqs.create_queue(
        QueueName="source.fifo",
        Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"},
    )["QueueUrl"]
    for index in range(4):
        _call(story, sqs.send_message, QueueUrl=url, MessageBody=f"a{index}", MessageGroupId="a")
    _call(story, sqs.send_message, QueueUrl=url, MessageBody="a0", MessageGroupId="a")
    _call(story, sqs.send_message, QueueUrl=url, MessageBody="b0", MessageGroupId="b")
    _counts(sqs, story, url)
    first = _receive(sqs, story, url)
    # Group a is in flight: nothing more of it, and b is in flight too.
    _receive(sqs, story, url)
    _call(story, sqs.change_message_visibility, QueueUrl=url,
          ReceiptHandle=first[0]["ReceiptHandle"], VisibilityTimeout=0)  # fmt: skip
    _call(story, sqs.delete_message_batch, QueueUrl=url, Entries=[
        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(first[1:])
    ])  # fmt: skip
    _counts(sqs, story, url)
    _receive(sqs, story, url)
    _call(story, sqs.get_queue_attributes, QueueUrl=url, AttributeNames=["All"])


class _Names:
    """Ids, receipt handles and times replaced by stable stand-ins (they differ run to run)."""

    def __init__(self) -> None:
        self.seen: dict[str, str] = {}

    def __call__(self, value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            return {k: self(v, k) for k, v in sorted(value.items())}
        if isinstance(value, list | tuple):
            return [self(v, key) for v in value]
        if key in ("MessageId", "ReceiptHandle", "SequenceNumber"):
            return self.seen.setdefault(value, f"{key}#{len(self.seen)}")
        if key in ("CreatedTimestamp", "LastModifiedTimestamp", "QueueArn", "RedrivePolicy"):
            return "-"
        return value


def _normalised(story: list[Any]) -> list[Any]:
    names = _Names()
    return [names(entry) for entry in story]


@pytest.mark.parametrize(
    # Not retention: moto marks an expired message received, keeps it and stops the receive
    # there (nothing returned, the unexpired message behind it included); the emulator expires
    # it as SQS does (test_a_message_past_the_queues_retention_is_gone_even_unreceived).
    "scenario",
    [visibility_deletes_and_redrive, fifo_groups],
    ids=lambda s: s.__name__,
)
def test_the_emulator_answers_as_moto_does(scenario: Scenario) -> None:
    # Given moto as released (before the emulator replaces anything) and the running emulator
    released: list[Any] = []
    with mock_aws():
        scenario(boto3.client("sqs", region_name=REGION), released)
    replaced: list[Any] = []
    with running_emulator() as emulator:
        # When the same calls are made of each
        scenario(emulator.client("sqs"), replaced)

    # Then every answer is the same
    assert _normalised(replaced) == _normalised(released)


def test_a_long_poll_wakes_when_the_first_hidden_or_delayed_message_is_due() -> None:
    # Given a message hidden for 30 s by its receive, and one delayed by 60 s
    with running_emulator() as emulator:
        sqs = emulator.client("sqs")
        url = sqs.create_queue(QueueName="source")["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody="hidden")
        sqs.receive_message(QueueUrl=url, VisibilityTimeout=30)
        sqs.send_message(QueueUrl=url, MessageBody="delayed", DelaySeconds=60)
        queue = get_backend("sqs")[ACCOUNT_ID][REGION].get_queue("source")

        # When a long poll asks how long it may wait
        wait_seconds = _seconds_until_due(queue)
        # and when the hidden message is deleted
        queue._messages = [m for m in queue._messages if m.body == "delayed"]
        wait_for_the_delayed = _seconds_until_due(queue)
        queue._messages = []
        nothing_due = _seconds_until_due(queue)

    # Then it wakes when the hidden one is due (not a second later, as moto's wait would), then
    # when the delayed one is, and without either it waits out its own timeout
    assert 25 < wait_seconds <= 30.001
    assert 55 < wait_for_the_delayed <= 60.001
    assert nothing_due == math.inf


def test_a_message_past_the_queues_retention_is_gone_even_unreceived() -> None:
    # Given a queue keeping messages 60 s, one message sent 61 s ago (its send time moved back,
    # as the emulator's clock cannot be) and one sent now, neither ever received
    with running_emulator() as emulator:
        sqs = emulator.client("sqs")
        url = sqs.create_queue(
            QueueName="short-retention", Attributes={"MessageRetentionPeriod": "60"}
        )["QueueUrl"]
        old_id = sqs.send_message(QueueUrl=url, MessageBody="old")["MessageId"]
        new_id = sqs.send_message(QueueUrl=url, MessageBody="new")["MessageId"]
        queue = get_backend("sqs")[ACCOUNT_ID][emulator.region].get_queue("short-retention")
        [old] = [m for m in queue._messages if m.id == old_id]
        old.sent_timestamp = int(steady_unix_time_millis()) - 61_000  # type: ignore[assignment]
        # When the queue is looked at (as the run's progress and reconciliation do)
        depth = sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]["ApproximateNumberOfMessages"]
        # Then the old message has expired: not counted, not on the queue, said expired
        assert depth == "1"
        assert emulator.message_ids_on_queue(url) == {new_id}
        assert expired_message_ids() == [old_id]
        # and a receive gets the unexpired message
        received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
        assert [m["Body"] for m in received] == ["new"]
