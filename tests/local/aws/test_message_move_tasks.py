"""StartMessageMoveTask, ListMessageMoveTasks and CancelMessageMoveTask in the embedded
emulator, with SQS's semantics (moto has none of them): `make redrive ENV=local` moves the DLQ
back as it would in AWS, without a traceback."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local.aws.emulator import running_emulator
from tools.redrive import move_task_redrive

SETTLE_SECONDS = 30.0


@pytest.fixture
def sqs() -> Iterator[Any]:
    with running_emulator() as emulator:
        yield emulator.client("sqs")


def arn(sqs: Any, url: str) -> str:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return str(attributes["Attributes"]["QueueArn"])


def queues(sqs: Any) -> tuple[str, str]:
    """A source queue and its dead-letter queue."""
    dlq = sqs.create_queue(QueueName="moves-dlq")["QueueUrl"]
    policy = {"deadLetterTargetArn": arn(sqs, dlq), "maxReceiveCount": 3}
    source = sqs.create_queue(
        QueueName="moves-source", Attributes={"RedrivePolicy": json.dumps(policy)}
    )["QueueUrl"]
    return source, dlq


def put(sqs: Any, url: str, count: int, prefix: str = "m") -> None:
    for n in range(count):
        sqs.send_message(
            QueueUrl=url,
            MessageBody=f"{prefix}-{n}",
            MessageAttributes={"Kind": {"DataType": "String", "StringValue": prefix}},
        )


def drain(sqs: Any, url: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    while batch := sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    ).get("Messages", []):
        messages.extend(batch)
    return messages


def latest(sqs: Any, dlq: str) -> dict[str, Any]:
    [task] = sqs.list_message_move_tasks(SourceArn=arn(sqs, dlq))["Results"]
    return dict(task)


def wait_for_status(sqs: Any, dlq: str, statuses: set[str]) -> dict[str, Any]:
    deadline = time.monotonic() + SETTLE_SECONDS
    while (task := latest(sqs, dlq))["Status"] not in statuses:
        assert time.monotonic() < deadline, task
        time.sleep(0.1)  # polling the task's status, with a deadline
    return task


def test_a_task_moves_what_the_dlq_held_to_its_source_queue(sqs: Any) -> None:
    # Given five messages on a dead-letter queue
    source, dlq = queues(sqs)
    put(sqs, dlq, 5)
    # When a move task starts without a destination
    handle = sqs.start_message_move_task(SourceArn=arn(sqs, dlq))["TaskHandle"]
    # Then it completes, having counted and moved the five, with no handle once done
    task = wait_for_status(sqs, dlq, {"COMPLETED", "FAILED"})
    assert handle
    assert task["Status"] == "COMPLETED"
    assert (
        task["ApproximateNumberOfMessagesToMove"],
        task["ApproximateNumberOfMessagesMoved"],
    ) == (
        5,
        5,
    )
    assert task["DestinationArn"] == arn(sqs, source)
    assert "TaskHandle" not in task
    # And the source queue has them, bodies and attributes kept; the DLQ is empty
    moved = drain(sqs, source)
    assert sorted(m["Body"] for m in moved) == [f"m-{n}" for n in range(5)]
    assert {m["MessageAttributes"]["Kind"]["StringValue"] for m in moved} == {"m"}
    assert drain(sqs, dlq) == []


def test_what_arrives_after_the_start_waits_for_the_next_task(sqs: Any) -> None:
    # Given a slow task (1 message a second) over three messages
    source, dlq = queues(sqs)
    put(sqs, dlq, 3, prefix="before")
    sqs.start_message_move_task(SourceArn=arn(sqs, dlq), MaxNumberOfMessagesPerSecond=1)
    # When two more are dead-lettered while it runs, and a second task is asked for
    put(sqs, dlq, 2, prefix="after")
    with pytest.raises(ClientError) as refused:
        sqs.start_message_move_task(SourceArn=arn(sqs, dlq))
    # Then the second is refused (one active task per queue), and the first moves only the
    # three it counted at its start
    assert "UnsupportedOperation" in refused.value.response["Error"]["Code"]
    task = wait_for_status(sqs, dlq, {"COMPLETED", "FAILED"})
    assert task["ApproximateNumberOfMessagesMoved"] == 3
    assert len(drain(sqs, source)) == 3
    assert len(drain(sqs, dlq)) == 2


def test_a_cancelled_task_stops_and_keeps_what_it_moved(sqs: Any) -> None:
    # Given a task moving 20 messages at 2 a second
    source, dlq = queues(sqs)
    put(sqs, dlq, 20)
    handle = sqs.start_message_move_task(SourceArn=arn(sqs, dlq), MaxNumberOfMessagesPerSecond=2)[
        "TaskHandle"
    ]
    # When it is cancelled
    moved = sqs.cancel_message_move_task(TaskHandle=handle)["ApproximateNumberOfMessagesMoved"]
    # Then it ends cancelled, short of the 20, and cannot be cancelled again
    task = wait_for_status(sqs, dlq, {"CANCELLED"})
    assert moved < 20
    assert task["ApproximateNumberOfMessagesMoved"] < 20
    with pytest.raises(ClientError):
        sqs.cancel_message_move_task(TaskHandle=handle)
    assert len(drain(sqs, source)) + len(drain(sqs, dlq)) == 20


def test_a_queue_that_is_no_dead_letter_queue_is_refused(sqs: Any) -> None:
    # Given a queue no redrive policy names
    source, _ = queues(sqs)
    # Then a move task from it is refused, as SQS refuses it, and an unknown queue is not found
    with pytest.raises(ClientError) as refused:
        sqs.start_message_move_task(SourceArn=arn(sqs, source))
    assert "UnsupportedOperation" in refused.value.response["Error"]["Code"]
    with pytest.raises(ClientError) as missing:
        sqs.start_message_move_task(SourceArn="arn:aws:sqs:us-east-1:123456789012:nowhere")
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_make_redrives_move_task_method_works_against_the_emulator(sqs: Any) -> None:
    # Given four dead letters
    source, dlq = queues(sqs)
    put(sqs, dlq, 4)
    # When make redrive's move-task method runs (as --method auto does first)
    report = move_task_redrive(sqs, dlq, source, rate_per_s=50, at_start=4, poll_s=0.1)
    # Then it used SQS's task and moved the four, with nothing failed
    assert (report.method, report.moved, report.failed) == ("move-task", 4, [])
    assert len(drain(sqs, source)) == 4
