"""The built function against LocalStack's SQS provider, the second SQS implementation: the
backoff is accepted, the final attempt and a poison message reach the DLQ with their reasons,
FIFO queues keep their groups, and a DLQ copy of a message with 10 attributes is accepted."""

from __future__ import annotations

import time

import pytest

from tests.localstack.conftest import FAST_BACKOFF, Deploy
from tests.support.downstream import Answer

pytestmark = pytest.mark.localstack


def test_a_failed_delivery_is_hidden_for_its_backoff_and_comes_back(deploy: Deploy) -> None:
    # Given a message and a downstream that answers 503; delay(1) = 2^1 + 5 + 0 = 7 s
    deployment = deploy(BackoffBaseSeconds=5, BackoffJitterSeconds=1, MaxReceiveCount=3)
    deployment.downstream.default = Answer(503)
    deployment.sqs.send_message(QueueUrl=deployment.source_url, MessageBody='{"n": 1}')

    # When the function handles its first delivery
    [message], invocation = deployment.poll()

    # Then the batch failed (every record of it did: Powertools raises) and LocalStack accepted
    # the 7 s visibility change
    assert invocation.outcome == "error"
    assert "All records failed processing" in invocation.error["errorMessage"]
    [scheduled] = deployment.logged("delivery failed; retry scheduled")
    assert scheduled["delay_seconds"] == 7
    assert not deployment.logged(
        "delivery failed and the backoff could not be set; the queue's visibility timeout applies"
    )
    # ...so it comes back long before the queue's own 360 s visibility timeout would let it
    started = time.monotonic()
    [again], _ = deployment.poll(limit_seconds=120)
    assert again["MessageId"] == message["MessageId"]
    assert again["Attributes"]["ApproximateReceiveCount"] == "2"
    assert time.monotonic() - started < 300


def test_the_final_attempt_and_a_poison_message_reach_the_dlq_with_their_reasons(
    deploy: Deploy,
) -> None:
    # Given a message the downstream refuses (503) and one that is not JSON; MaxReceiveCount 3,
    # delays 2 s and 4 s
    deployment = deploy(**FAST_BACKOFF)
    deployment.downstream.default = Answer(503)
    failing = deployment.sqs.send_message(QueueUrl=deployment.source_url, MessageBody='{"n": 1}')
    poison = deployment.sqs.send_message(QueueUrl=deployment.source_url, MessageBody="not json")

    # When the function has had the failing one three times (the poison one at once)
    for _ in range(3):
        deployment.poll()
    # ...and the next receive comes (LocalStack moves the message to the DLQ then)
    assert deployment.receive(deployment.source_url) == []

    # Then the third attempt was the final one (visibility 0), the poison one was copied at
    # once with its reason, and the source queue is empty
    assert [r["receive_count"] for r in deployment.logged("delivery failed; retry scheduled")] == [
        1,
        2,
    ]
    [final] = deployment.logged(
        "final attempt failed; SQS moves the message to the dead-letter queue at its next receive"
    )
    assert (final["receive_count"], final["delay_seconds"]) == (3, 0)
    assert deployment.counts(deployment.source_url) == (0, 0)
    letters = {m["Body"]: m for m in deployment.receive(deployment.dead_letter_url)}
    assert set(letters) == {'{"n": 1}', "not json"}
    moved = letters['{"n": 1}']
    assert moved["MessageId"] == failing["MessageId"]
    assert moved["Attributes"]["DeadLetterQueueSourceArn"] == deployment.source_arn
    copy = letters["not json"]["MessageAttributes"]
    assert copy["DeadLetterReason"]["StringValue"] == "invalid-json"
    assert copy["SourceMessageId"]["StringValue"] == poison["MessageId"]


def test_a_fifo_source_dead_letters_into_its_fifo_dlq_in_the_message_group(
    deploy: Deploy,
) -> None:
    # Given FIFO queues, and in one group a message that is not JSON followed by one the
    # downstream refuses
    deployment = deploy(QueueType="fifo", **FAST_BACKOFF)
    assert deployment.source_url.endswith(".fifo")
    assert deployment.dead_letter_url.endswith(".fifo")
    deployment.downstream.default = Answer(503)
    for number, body in enumerate(("not json", '{"n": 2}')):
        deployment.sqs.send_message(
            QueueUrl=deployment.source_url,
            MessageBody=body,
            MessageGroupId="g-1",
            MessageDeduplicationId=f"d-{number}",
        )

    # When the function handles the group's batch
    messages, invocation = deployment.poll()

    # Then the poison one is in the FIFO DLQ in its group, with its reason, and the other one
    # was rescheduled (LocalStack accepted the visibility change on the FIFO queue)
    assert [m["Body"] for m in messages] == ["not json", '{"n": 2}']
    assert invocation.response == {
        "batchItemFailures": [{"itemIdentifier": messages[1]["MessageId"]}]
    }
    [scheduled] = deployment.logged("delivery failed; retry scheduled")
    assert scheduled["delay_seconds"] == 2
    [letter] = deployment.receive(deployment.dead_letter_url)
    assert letter["Body"] == "not json"
    assert letter["Attributes"]["MessageGroupId"] == "g-1"
    assert letter["MessageAttributes"]["DeadLetterReason"]["StringValue"] == "invalid-json"


def test_a_dead_letter_copy_keeps_what_fits_of_ten_original_attributes(deploy: Deploy) -> None:
    # Given a message that is not JSON and carries ten attributes already
    deployment = deploy(**FAST_BACKOFF)
    originals = {
        f"attr{index}": {"DataType": "String", "StringValue": f"v{index}"} for index in range(10)
    }
    deployment.sqs.send_message(
        QueueUrl=deployment.source_url, MessageBody="not json", MessageAttributes=originals
    )

    # When the function dead-letters it
    _, invocation = deployment.poll()

    # Then LocalStack accepted a copy of exactly ten attributes: the three reasons and seven of
    # the originals, and the log names the three left off
    assert invocation.response == {"batchItemFailures": []}
    [letter] = deployment.receive(deployment.dead_letter_url)
    attributes = letter["MessageAttributes"]
    assert len(attributes) == 10
    assert {"DeadLetterReason", "DeadLetterDetail", "SourceMessageId"} <= set(attributes)
    kept = {name: attributes[name] for name in attributes if name.startswith("attr")}
    assert len(kept) == 7
    assert all(originals[name] == value for name, value in kept.items())
    [warning] = deployment.logged(
        "message attributes left off the dead-letter copy "
        "(SQS allows 10 attributes and 1 MiB with the body)"
    )
    assert sorted(warning["dropped_attributes"]) == sorted(set(originals) - set(kept))
