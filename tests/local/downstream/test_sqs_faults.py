"""SQS API faults injected between the callers and the embedded emulator."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from local.aws.emulator import running_emulator
from local.downstream.faults import (
    DELETE_FAILED,
    DLQ_SEND_FAILED,
    RECEIPT_EXPIRED,
    SQS_THROTTLED,
    VISIBILITY_FAILED,
    FaultLog,
    FaultPlan,
    SqsFaults,
)
from local.shared.access_keys import FUNCTION_ACCESS_KEY_ID


def function_client(endpoint_url: str) -> Any:
    """An SQS client signing as the function does, with the function's retry settings."""
    return boto3.session.Session(
        aws_access_key_id=FUNCTION_ACCESS_KEY_ID,
        aws_secret_access_key="local",
        region_name="us-east-1",
    ).client(
        "sqs",
        endpoint_url=endpoint_url,
        config=BotoConfig(retries={"mode": "standard", "max_attempts": 3}),
    )


@pytest.fixture
def faulty(request: pytest.FixtureRequest) -> Iterator[tuple[Any, Any, FaultLog, str, str]]:
    plan: FaultPlan = request.param
    log = FaultLog()
    faults = SqsFaults(plan, log)
    with running_emulator(layer=faults.wrap) as emulator:
        runner = emulator.client("sqs")
        # moto's backends outlive one server: fresh names keep the tests apart.
        suffix = uuid.uuid4().hex[:8]
        source = runner.create_queue(QueueName=f"source-{suffix}")["QueueUrl"]
        dead = runner.create_queue(QueueName=f"dead-{suffix}")["QueueUrl"]
        faults.dead_letter_queue_url = dead
        yield runner, function_client(emulator.endpoint_url), log, source, dead


def received(sqs: Any, queue_url: str) -> dict[str, Any]:
    sqs.send_message(QueueUrl=queue_url, MessageBody="{}")
    [message] = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=1)["Messages"]
    return dict(message)


def change(sqs: Any, queue_url: str, receipt: str) -> dict[str, Any]:
    response: dict[str, Any] = sqs.change_message_visibility_batch(
        QueueUrl=queue_url,
        Entries=[{"Id": "0", "ReceiptHandle": receipt, "VisibilityTimeout": 30}],
    )
    return response


@pytest.mark.parametrize("faulty", [FaultPlan(sqs_change_visibility=1.0)], indirect=True)
def test_a_failing_visibility_change_fails_every_retry_of_the_call(faulty: Any) -> None:
    # Given visibility changes that always fail, and a received message
    runner, function, log, source, _ = faulty
    message = received(runner, source)
    # When the function changes its visibility
    with pytest.raises(ClientError) as raised:
        change(function, source, message["ReceiptHandle"])
    # Then the call fails with InternalError after its three retries
    assert raised.value.response["Error"]["Code"] == "InternalError"
    assert raised.value.response["ResponseMetadata"]["RetryAttempts"] == 3
    # Every attempt (the first and the three retries max_attempts=3 allows) was refused, the
    # call recorded once, and nothing reached the emulator
    assert log.counts() == {VISIBILITY_FAILED: 1}
    assert log.snapshot()[1] == []


@pytest.mark.parametrize("faulty", [FaultPlan(sqs_expired_receipt=1.0)], indirect=True)
def test_an_expired_receipt_handle_refuses_each_entry(faulty: Any) -> None:
    # Given receipt handles that always count as expired, and a received message
    runner, function, log, source, _ = faulty
    message = received(runner, source)
    # When the function changes its visibility
    response = change(function, source, message["ReceiptHandle"])
    # Then the entry is refused as SQS refuses an invalid receipt handle, and recorded
    assert response["Successful"] == []
    assert [(f["Id"], f["Code"]) for f in response["Failed"]] == [("0", "ReceiptHandleIsInvalid")]
    assert log.counts() == {RECEIPT_EXPIRED: 1}


@pytest.mark.parametrize("faulty", [FaultPlan(sqs_throttle=1.0)], indirect=True)
def test_the_functions_calls_are_throttled_and_the_runners_are_not(faulty: Any) -> None:
    # Given SQS calls that are always throttled
    runner, function, log, source, _ = faulty
    # When the function and the runner each call SQS
    with pytest.raises(ClientError) as raised:
        function.get_queue_attributes(QueueUrl=source, AttributeNames=["All"])
    # Then the function's call is refused (each of its 4 attempts throttled) and the
    # runner's goes through
    assert raised.value.response["Error"]["Code"] == "RequestThrottled"
    runner.get_queue_attributes(QueueUrl=source, AttributeNames=["All"])
    assert log.counts() == {SQS_THROTTLED: 4}


@pytest.mark.parametrize("faulty", [FaultPlan(sqs_delete=1.0, sqs_dlq_send=1.0)], indirect=True)
def test_deletes_and_dead_letter_sends_fail_and_the_message_stays(faulty: Any) -> None:
    # Given deletes and dead-letter sends that always fail, and a received message
    runner, function, log, source, dead = faulty
    message = received(runner, source)
    # When the message is deleted and sent to the dead-letter queue, Then both calls fail
    with pytest.raises(ClientError):
        runner.delete_message_batch(
            QueueUrl=source, Entries=[{"Id": "0", "ReceiptHandle": message["ReceiptHandle"]}]
        )
    with pytest.raises(ClientError):
        function.send_message(QueueUrl=dead, MessageBody="poison")
    # Sending to the source queue is untouched
    function.send_message(QueueUrl=source, MessageBody="{}")
    # ...each failure is recorded once, and the message is still in flight on the source queue
    counts = log.counts()
    assert counts[DLQ_SEND_FAILED] == 1
    assert counts[DELETE_FAILED] == 1
    attributes = runner.get_queue_attributes(
        QueueUrl=source, AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "1"


@pytest.mark.parametrize("faulty", [FaultPlan(sqs_throttle=0.0)], indirect=True)
def test_visibility_changes_that_go_through_are_recorded(faulty: Any) -> None:
    # Given no fault injected, and a received message
    runner, function, log, source, _ = faulty
    message = received(runner, source)
    # When the function changes its visibility
    response = change(function, source, message["ReceiptHandle"])
    # Then the change goes through and is recorded with its receipt handle and timeout
    assert [entry["Id"] for entry in response["Successful"]] == ["0"]
    [recorded] = log.snapshot()[1]
    assert (recorded.receipt_handle, recorded.timeout_seconds) == (message["ReceiptHandle"], 30)
