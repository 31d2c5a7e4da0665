"""A message moved back from the DLQ gets its whole schedule, whatever the endpoint does with its
receive count (moto here; tests/localstack runs StartMessageMoveTask on LocalStack).

AWS documents redriven messages as new messages (a new message id and enqueue time): their
counts start at 1. LocalStack keeps the count (8 and 16 seen with maxReceiveCount 3), which the
source queue's own redrive policy can never produce: such a message is sent again as a new one,
after the first delay, instead of being taken for its final attempt. Delays are computed by hand
from the formula 2^n + BackoffBaseSeconds + J (J = 0 with BackoffJitterSeconds 1).
"""

from __future__ import annotations

from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from consumer.delivery import get_runtime
from shared.errors import RedrivePolicyUnavailable, SendAgainError
from tests.integration.conftest import Harness
from tests.support.downstream import Answer
from tests.support.sqs_records import failing_with_receive_count
from tools.redrive import Pacer, copy_redrive

# delay(1) = 2 + 30 + 0 = 32 s; delay(2) = 4 + 30 + 0 = 34 s.
SCHEDULE = {"BackoffBaseSeconds": 30, "BackoffJitterSeconds": 1, "MaxReceiveCount": 3}
FIRST_DELAY_SECONDS = 32
SECOND_DELAY_SECONDS = 34


@pytest.mark.parametrize("parameter_overrides", [SCHEDULE], indirect=True)
def test_a_redriven_message_that_kept_its_count_is_sent_again_to_start_its_schedule(
    consumer: Harness,
) -> None:
    # Given a message back from the DLQ with the count LocalStack's move left it (8 > 3), with
    # an attribute of its own, and a downstream that answers 503
    consumer.send('{"n": 1}', {"tenant": {"DataType": "String", "StringValue": "t-1"}})
    event, sent = failing_with_receive_count(consumer, 8)

    # When the function handles it
    response = consumer.invoke(event)

    # Then it is acknowledged (deleted) and sent again to the source queue as a new message,
    # hidden for the first delay, with its body and attribute; no visibility change was made
    assert response == {"batchItemFailures": []}
    [again] = sent
    assert again["QueueUrl"] == consumer.source_url
    assert again["DelaySeconds"] == FIRST_DELAY_SECONDS
    assert again["MessageBody"] == '{"n": 1}'
    assert again["MessageAttributes"] == {"tenant": {"DataType": "String", "StringValue": "t-1"}}
    assert consumer.visibility_changes == []
    [logged] = [
        line
        for line in consumer.emitted().logs
        if line["message"].startswith("delivery failed; a redriven message kept")
    ]
    assert logged["receive_count"] == 8
    assert consumer.emitted().metric_total("SchedulesRestarted") == 1
    # ...and the new message starts from the first receive
    consumer.sqs.change_message_visibility(
        QueueUrl=consumer.source_url,
        ReceiptHandle=event["Records"][0]["receiptHandle"],
        VisibilityTimeout=3600,
    )
    attributes = consumer.sqs.get_queue_attributes(
        QueueUrl=consumer.source_url, AttributeNames=["ApproximateNumberOfMessagesDelayed"]
    )["Attributes"]
    assert attributes["ApproximateNumberOfMessagesDelayed"] == "1"


@pytest.mark.parametrize("parameter_overrides", [SCHEDULE], indirect=True)
@pytest.mark.parametrize(
    ("receive_count", "visibility_seconds"), [(2, SECOND_DELAY_SECONDS), (3, 0)]
)
def test_without_a_carried_count_the_schedule_and_final_attempt_are_unchanged(
    consumer: Harness, receive_count: int, visibility_seconds: int
) -> None:
    # Given a message on its 2nd or 3rd (final, MaxReceiveCount 3) delivery and a failing
    # downstream
    consumer.send('{"n": 1}')
    event, sent = failing_with_receive_count(consumer, receive_count)

    # When the function handles it
    with pytest.raises(BatchProcessingError):
        consumer.invoke(event)

    # Then it is rescheduled as before: delay(2), or visibility 0 on the final attempt; nothing
    # is sent again
    assert [change["VisibilityTimeout"] for change in consumer.visibility_changes] == [
        visibility_seconds
    ]
    assert sent == []


@pytest.mark.parametrize("parameter_overrides", [SCHEDULE], indirect=True)
def test_a_carried_count_message_that_cannot_be_sent_again_waits_the_first_delay(
    consumer: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a redriven message that kept its count, a failing downstream, and a queue that
    # refuses the new message
    consumer.send('{"n": 1}')
    event, _ = failing_with_receive_count(consumer, 16)

    def refuse(*_: Any, **__: Any) -> str:
        raise SendAgainError("SendMessage to its own queue refused (AccessDenied)")

    monkeypatch.setattr(get_runtime().sqs, "send_again", refuse)

    # When the function handles it
    with pytest.raises(BatchProcessingError):
        consumer.invoke(event)

    # Then the record stays on its queue, rescheduled by the first delay and not as a final
    # attempt (visibility 0 would send it straight back to the DLQ)
    assert [change["VisibilityTimeout"] for change in consumer.visibility_changes] == [
        FIRST_DELAY_SECONDS
    ]
    assert any("could not be sent again" in line["message"] for line in consumer.emitted().logs)


@pytest.mark.parametrize("parameter_overrides", [SCHEDULE], indirect=True)
def test_a_message_the_copy_redrive_moved_back_starts_at_its_first_attempt(
    consumer: Harness,
) -> None:
    # Given a message SQS moved to the DLQ after three receives
    consumer.send('{"n": 1}')
    for _ in range(4):
        consumer.receive(visibility_timeout=0)
    assert len(consumer.dead_letters()) == 1

    # When make redrive copies it back
    report = copy_redrive(
        consumer.sqs,
        consumer.dead_letter_url,
        to_url=consumer.source_url,
        lambda_client=None,
        function_name=None,
        pacer=Pacer(1000),
    )
    assert report.moved == 1
    # ...and the function fails its first delivery
    consumer.downstream.default = Answer(503)
    event = consumer.receive_event()
    with pytest.raises(BatchProcessingError):
        consumer.invoke(event)

    # Then that delivery was its first, rescheduled by the first delay
    assert event["Records"][0]["attributes"]["ApproximateReceiveCount"] == "1"
    assert [change["VisibilityTimeout"] for change in consumer.visibility_changes] == [
        FIRST_DELAY_SECONDS
    ]


@pytest.mark.parametrize("parameter_overrides", [{**SCHEDULE, "MaxReceiveCount": 5}], indirect=True)
@pytest.mark.parametrize("env_overrides", [{"MAX_RECEIVE_COUNT": "3"}], indirect=True)
# The 4th delivery, and the 5th: the queue's own last, not a carried-in count (> made >=).
@pytest.mark.parametrize("receive_count", [4, 5])
def test_a_count_the_queue_itself_allows_is_not_taken_for_a_carried_one(
    consumer: Harness, receive_count: int
) -> None:
    # Given a source queue whose maxReceiveCount (5) is above the function's MAX_RECEIVE_COUNT
    # (3), a message on a delivery the queue allows and a failing downstream
    consumer.send('{"n": 1}')
    event, sent = failing_with_receive_count(consumer, receive_count)

    # When the function handles it
    with pytest.raises(BatchProcessingError):
        consumer.invoke(event)

    # Then the count is the queue's own: the final-attempt rule applies (visibility 0) and
    # nothing is sent again, which would start it over for ever
    assert [change["VisibilityTimeout"] for change in consumer.visibility_changes] == [0]
    assert sent == []


@pytest.mark.parametrize("parameter_overrides", [SCHEDULE], indirect=True)
def test_a_redrive_policy_that_cannot_be_read_is_asked_for_once_per_failed_record(
    consumer: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a redriven message that kept its count, a failing downstream, and a redrive policy
    # SQS will not tell
    consumer.send('{"n": 1}')
    event, sent = failing_with_receive_count(consumer, 16)
    asked: list[str] = []

    def refuse(queue_arn: str) -> int | None:
        asked.append(queue_arn)
        raise RedrivePolicyUnavailable("GetQueueAttributes refused (AccessDenied)")

    monkeypatch.setattr(get_runtime().sqs, "max_receive_count", refuse)

    # When the function handles it
    consumer.invoke(event)

    # Then the policy was asked for once, its warning written once, and the message was sent
    # again (taken as the template's policy)
    assert len(asked) == 1
    warnings = [
        line
        for line in consumer.emitted().logs
        if "redrive policy could not be read" in line["message"]
    ]
    assert len(warnings) == 1
    assert len(sent) == 1
