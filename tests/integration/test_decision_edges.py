"""Retry decisions at their edges, each pinned by a test because a mutant of it survived
`make mutate` (docs/mutation-testing.md): the would-expire bounds, a carried-in FIFO record,
and FIFO groups an odd record names (a count at the queue's own limit is pinned in
test_redriven_messages.py).

Delays are computed by hand from the formula 2^n + BackoffBaseSeconds + J (J = 0 with
BackoffJitterSeconds 1): delay(1) = 2 + 30 = 32 s.
"""

from __future__ import annotations

from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from consumer import sqs_batch
from consumer.delivery import get_runtime
from shared.errors import UnsupportedEventError
from tests.integration.conftest import Harness
from tests.support.downstream import Answer
from tests.support.sqs_records import failing_with_receive_count, send_in_group

SCHEDULE = {"BackoffBaseSeconds": 30, "BackoffJitterSeconds": 1, "MaxReceiveCount": 3}
FIRST_DELAY_SECONDS = 32
# Lambda's longest batching window, which the would-expire rule adds to the visibility.
BATCHING_WINDOW_SECONDS = 300
# A fixed "now" for the would-expire rule, so that its bounds can be hit exactly.
NOW = 1_800_000_000


def failures(response: dict[str, Any]) -> list[str]:
    return [failure["itemIdentifier"] for failure in response["batchItemFailures"]]


class FrozenClock:
    """The `time` module as consumer.sqs_batch sees it, stopped at NOW."""

    @staticmethod
    def time() -> float:
        return float(NOW)


# The would-expire rule: now < expiry <= now + visibility + batching window (+ the breaker's
# hold, none here) --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("parameter_overrides", "sent_seconds_ago", "dead_lettered"),
    [
        # Expires exactly when the next attempt may come (32 + 300 s): dead-lettered now.
        ({**SCHEDULE, "SourceQueueRetentionSeconds": 332, "CircuitBreaker": "Disabled"}, 0, True),
        # One second later: the next attempt comes in time, so it is retried.
        ({**SCHEDULE, "SourceQueueRetentionSeconds": 333, "CircuitBreaker": "Disabled"}, 0, False),
        # Expiring at this very instant: it cannot have been received, the rule does not apply.
        ({**SCHEDULE, "SourceQueueRetentionSeconds": 60, "CircuitBreaker": "Disabled"}, 60, False),
    ],
    indirect=["parameter_overrides"],
)
def test_the_would_expire_rule_counts_the_visibility_and_the_batching_window_exactly(
    consumer: Harness, monkeypatch: pytest.MonkeyPatch, sent_seconds_ago: int, dead_lettered: bool
) -> None:
    # Given the clock stopped, a failing message on its first delivery, enqueued
    # `sent_seconds_ago` before now, and the breaker off (no hold to add)
    monkeypatch.setattr(sqs_batch, "time", FrozenClock)
    consumer.send('{"n": 1}')
    consumer.downstream.default = Answer(503)
    event = consumer.receive_event()
    [record] = event["Records"]
    record["attributes"]["SentTimestamp"] = str((NOW - sent_seconds_ago) * 1000)

    # When its delivery fails
    if dead_lettered:
        response = consumer.invoke(event)
    else:
        with pytest.raises(BatchProcessingError):
            consumer.invoke(event)
        response = None

    # Then it is dead-lettered as about to expire exactly when its expiry is not after its next
    # attempt (32 s of backoff and a 300 s batching window); otherwise it waits delay(1)
    reasons = [
        m["MessageAttributes"]["DeadLetterReason"]["StringValue"] for m in consumer.dead_letters()
    ]
    if dead_lettered:
        assert response == {"batchItemFailures": []}
        assert reasons == ["would-expire"]
        assert consumer.visibility_changes == []
    else:
        assert reasons == []
        assert [change["VisibilityTimeout"] for change in consumer.visibility_changes] == [
            FIRST_DELAY_SECONDS
        ]


# Carried-in receive counts in FIFO groups ------------------------------------------------


FIFO_SCHEDULE = pytest.mark.parametrize(
    "parameter_overrides", [{**SCHEDULE, "QueueType": "fifo"}], indirect=True
)


@FIFO_SCHEDULE
def test_a_carried_in_record_behind_a_failed_one_of_its_group_is_not_a_final_attempt(
    consumer: Harness,
) -> None:
    # Given a FIFO group whose first message the downstream refuses, and a second message back
    # from the DLQ with a count its queue (maxReceiveCount 3) cannot have given (8)
    first = send_in_group(consumer, "A", '{"n": 1}')
    second = send_in_group(consumer, "A", '{"n": 2}')
    consumer.downstream.by_body['{"n": 1}'] = Answer(503)
    event = consumer.receive_event()
    assert [record["messageId"] for record in event["Records"]] == [first, second]
    event["Records"][1]["attributes"]["ApproximateReceiveCount"] = "8"

    # When the batch is processed, Then both stay on the queue (every record failed)
    with pytest.raises(BatchProcessingError):
        consumer.invoke(event)

    # ...the second held back as long as the first (delay(1)): its count is taken for its
    # first attempt, never its final one (visibility 0)
    assert [change["VisibilityTimeout"] for change in consumer.visibility_changes] == [
        FIRST_DELAY_SECONDS,
        FIRST_DELAY_SECONDS,
    ]


@FIFO_SCHEDULE
def test_a_carried_in_fifo_message_is_sent_again_in_its_group_with_a_fixed_deduplication_id(
    consumer: Harness,
) -> None:
    # Given a FIFO message back from the DLQ with a carried-in count (8) and a failing downstream
    message_id = send_in_group(consumer, "A", '{"n": 1}')
    event, sent = failing_with_receive_count(consumer, 8)

    # When the function handles it
    response = consumer.invoke(event)

    # Then it is sent again in its group, with a deduplication id a retried invocation repeats
    assert response == {"batchItemFailures": []}
    [again] = sent
    assert again["MessageGroupId"] == "A"
    assert again["MessageDeduplicationId"] == f"{message_id}-8"


# FIFO groups an odd record names -----------------------------------------------------------


FIFO = pytest.mark.parametrize("parameter_overrides", [{"QueueType": "fifo"}], indirect=True)


@FIFO
@pytest.mark.parametrize("group", ["", 7])
def test_a_fifo_record_with_an_empty_or_non_string_group_holds_nothing_back(
    consumer: Harness, group: Any
) -> None:
    # Given two FIFO records whose MessageGroupId is not a usable group name, the first refused
    first = send_in_group(consumer, "A", '{"n": 1}')
    send_in_group(consumer, "A", '{"n": 2}')
    consumer.downstream.by_body['{"n": 1}'] = Answer(503)
    event = consumer.receive_event()
    for record in event["Records"]:
        record["attributes"]["MessageGroupId"] = group

    # When the batch is processed
    response = consumer.invoke(event)

    # Then they are not taken for one group: the second is delivered, only the first fails
    assert failures(response) == [first]
    assert sorted(request["body"] for request in consumer.downstream.requests) == [
        '{"n": 1}',
        '{"n": 2}',
    ]


@FIFO
def test_a_fifo_record_without_attributes_fails_alone(consumer: Harness) -> None:
    # Given a FIFO batch whose first record has no attributes at all (no receive count)
    first = send_in_group(consumer, "A", '{"n": 1}')
    send_in_group(consumer, "B", '{"n": 2}')
    event = consumer.receive_event()
    del event["Records"][0]["attributes"]

    # When the batch is processed
    response = consumer.invoke(event)

    # Then that record alone is reported failed, and the other group's record is delivered
    assert failures(response) == [first]
    assert [request["body"] for request in consumer.downstream.requests] == ['{"n": 2}']


@pytest.mark.parametrize(
    "parameter_overrides",
    # Full jitter is the one strategy whose delay can be 0 (from 0..2 s at the first attempt,
    # base 1), so that a hold an invalid record put on its group would show.
    [{"QueueType": "fifo", "BackoffStrategy": "full-jitter", "BackoffBaseSeconds": 1}],
    indirect=True,
)
def test_an_invalid_fifo_record_holds_its_group_back_by_nothing_more_than_its_backoff(
    consumer: Harness,
) -> None:
    # Given a FIFO group whose first record cannot be read (its receive count is not a number)
    first = send_in_group(consumer, "A", '{"n": 1}')
    second = send_in_group(consumer, "A", '{"n": 2}')
    event = consumer.receive_event()
    event["Records"][0]["attributes"]["ApproximateReceiveCount"] = "x"
    # ...and a seeded jitter source whose draw for the second record is 0 (checked: seeds 3 and
    # 4 draw 1 and 2)
    get_runtime().rng.seed(0)

    # When the batch is processed, Then both stay on the queue (every record failed)
    with pytest.raises(BatchProcessingError):
        consumer.invoke(event)

    # ...the second was not sent, and waits its own backoff (0 s): the invalid record leaves
    # the queue's visibility timeout to apply to itself and adds no wait to the group
    assert [record["messageId"] for record in event["Records"]] == [first, second]
    assert consumer.downstream.requests == []
    assert [change["VisibilityTimeout"] for change in consumer.visibility_changes] == [0]


def test_a_record_whose_message_id_is_not_a_string_fails_the_batch_with_the_reason(
    consumer: Harness,
) -> None:
    # Given a batch whose record names itself by a number, which a partial batch response
    # could not name (Lambda fails the whole batch on an unknown identifier)
    consumer.send('{"n": 1}')
    event = consumer.receive_event()
    event["Records"][0]["messageId"] = 7

    # When it is processed, Then the invocation fails at once, saying why, and nothing is sent
    with pytest.raises(UnsupportedEventError, match=r"Records\[0\] has no messageId"):
        consumer.invoke(event)
    assert consumer.downstream.requests == []
