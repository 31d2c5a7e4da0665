"""The record shapes a DLQ holds, and the redrive's pace (a fake clock: no sleeping)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tools.dead_letters import Shape, classify, on_failure_record
from tools.redrive import Pacer

ON_FAILURE_RECORD = {
    "version": "1.0",
    "timestamp": "2026-11-24T03:00:00.000Z",
    "requestContext": {
        "requestId": "req-1",
        "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:consumer:$LATEST",
        "condition": "RetriesExhausted",
        "approximateInvokeCount": 3,
    },
    "requestPayload": {"body": {"orderId": "A-1"}},
    "responseContext": {
        "statusCode": 200,
        "executedVersion": "$LATEST",
        "functionError": "Unhandled",
    },
    "responsePayload": {"errorMessage": "503 from downstream"},
}


def message(body: str, attributes: dict[str, str] | None = None, **system: str) -> dict[str, Any]:
    return {
        "MessageId": "m-1",
        "ReceiptHandle": "rh-1",
        "Body": body,
        "MessageAttributes": {
            name: {"DataType": "String", "StringValue": value}
            for name, value in (attributes or {}).items()
        },
        "Attributes": {"SentTimestamp": "1700000000000", "ApproximateReceiveCount": "1", **system},
    }


def test_an_on_failure_record_is_recognised_and_its_job_is_the_request_payload() -> None:
    # Given an OnFailure record Lambda sent to the failed-jobs queue, When it is classified
    letter = classify(message(json.dumps(ON_FAILURE_RECORD)))
    # Then it is recognised, with its request id, condition, error and request payload as the job
    assert letter.shape is Shape.ON_FAILURE_RECORD
    assert letter.source_id == "req-1"
    assert letter.reason == "on-failure: RetriesExhausted"
    assert letter.detail == "Unhandled"
    assert letter.job_payload == {"body": {"orderId": "A-1"}}


@pytest.mark.parametrize(
    "body",
    [
        '{"orderId": "A-1"}',
        '{"requestContext": {}, "requestPayload": {}}',  # responseContext missing
        "[1, 2]",
        "not json",
    ],
)
def test_anything_else_is_not_an_on_failure_record(body: str) -> None:
    # Given a body that is not an OnFailure record (another JSON, a record part missing, not json)
    # When it is read, Then it is not taken for one and has no job payload
    assert on_failure_record(body) is None
    with pytest.raises(ValueError, match="not an OnFailure record"):
        _ = classify(message(body)).job_payload


def test_a_consumer_copy_carries_its_reason_and_source_which_a_redrive_leaves_off() -> None:
    # Given a copy the consumer dead-lettered, with its reason, detail, source and own attributes
    # When it is classified
    letter = classify(
        message(
            "not json",
            {
                "DeadLetterReason": "invalid-json",
                "DeadLetterDetail": "Expecting value",
                "SourceMessageId": "src-9",
                "tenant": "t-1",
            },
        )
    )
    # Then its reason and source are read, and only the message's own attributes are kept for a
    # redrive
    assert letter.shape is Shape.CONSUMER_COPY
    assert (letter.reason, letter.detail, letter.source_id) == (
        "invalid-json",
        "Expecting value",
        "src-9",
    )
    assert letter.attributes_to_keep() == {"tenant": {"DataType": "String", "StringValue": "t-1"}}


def test_a_message_moved_by_the_redrive_policy_names_its_source_queue() -> None:
    # Given a message SQS moved to the DLQ under the redrive policy, naming its source queue
    arn = "arn:aws:sqs:us-east-1:123456789012:stack-source"
    # When it is classified
    letter = classify(message('{"a": 1}', {"tenant": "t"}, DeadLetterQueueSourceArn=arn))
    # Then its reason is the max receive count and its source the source queue
    assert letter.shape is Shape.REDRIVE_POLICY
    assert letter.reason == "max-receive-count"
    assert letter.source_id == arn
    assert letter.receive_count == 1


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_the_pacer_holds_batches_to_the_rate() -> None:
    # Given 10 messages a second
    fake = FakeClock()
    pacer = Pacer(10, clock=fake.clock, sleep=fake.sleep)

    # When five batches of 10 go as fast as they can
    for _ in range(5):
        pacer.wait(10)

    # Then the first went at once and each following one a second later
    assert fake.slept == pytest.approx([1.0, 1.0, 1.0, 1.0])
    assert fake.now == pytest.approx(104.0)


def test_the_pacer_does_not_sleep_when_the_work_is_slower_than_the_rate() -> None:
    # Given 10 messages a second
    fake = FakeClock()
    pacer = Pacer(10, clock=fake.clock, sleep=fake.sleep)
    # When a batch of 10 takes 5 s, longer than the rate's one second, before the next one
    pacer.wait(10)
    fake.now += 5  # the batch took 5 s
    pacer.wait(10)
    # Then the pacer never slept
    assert fake.slept == []
