"""The handler reschedules failures with the strategy the template's BackoffStrategy selects."""

from __future__ import annotations

import random
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from consumer.delivery import get_runtime
from consumer.sqs_batch import Batch
from shared.backoff import BackoffPolicy, BackoffStrategy, delay_seconds
from tests.integration.conftest import Harness
from tests.support.downstream import Answer

MESSAGES = 10  # one receive: SQS hands out at most 10 messages per call


def fail_one_batch(consumer: Harness) -> dict[str, int]:
    """Send MESSAGES messages, fail them all once; the visibility each got, by message id."""
    for index in range(MESSAGES):
        consumer.send(f'{{"n": {index}}}')
    consumer.downstream.default = Answer(503)
    event = consumer.receive_event()
    assert len(event["Records"]) == MESSAGES
    with pytest.raises(BatchProcessingError):
        consumer.invoke(event)
    message_ids = {record["receiptHandle"]: record["messageId"] for record in event["Records"]}
    changes: list[dict[str, Any]] = consumer.visibility_changes
    return {message_ids[c["ReceiptHandle"]]: c["VisibilityTimeout"] for c in changes}


@pytest.mark.parametrize("parameter_overrides", [{"BackoffStrategy": "full-jitter"}], indirect=True)
def test_full_jitter_draws_from_zero_to_base_times_two(consumer: Harness) -> None:
    # Given the template's full-jitter strategy, and a fixed random source so the test is exact
    assert consumer.stack.function_environment()["BACKOFF_STRATEGY"] == "full-jitter"
    get_runtime().rng.seed(4)

    # When ten messages fail their first delivery
    visibilities = fail_one_batch(consumer)

    # Then every delay is in full jitter's [0, 30 x 2^1], some below additive jitter's least
    # (2 + 30): the additive-jitter strategy could not have produced them
    assert len(visibilities) == MESSAGES
    assert all(0 <= seconds <= 60 for seconds in visibilities.values())
    assert min(visibilities.values()) < 32
    # ...and they are the draws full jitter makes from each record's source, which the batch
    # seeds from that random source
    batch_seed = random.Random(4).getrandbits(64)
    policy = BackoffPolicy(strategy=BackoffStrategy.FULL_JITTER)
    records = [{"position": index} for index in range(MESSAGES)]
    batch = Batch(records, seed=batch_seed)
    assert list(visibilities.values()) == [
        delay_seconds(1, policy, batch.random_source(record)) for record in records
    ]


@pytest.mark.parametrize(
    "parameter_overrides", [{"BackoffStrategy": "decorrelated"}], indirect=True
)
def test_decorrelated_follows_each_messages_own_chain(consumer: Harness) -> None:
    # Given the template's decorrelated strategy
    assert consumer.stack.function_environment()["BACKOFF_STRATEGY"] == "decorrelated"

    # When ten messages fail their first delivery
    visibilities = fail_one_batch(consumer)

    # Then each got the first step of the chain seeded by its own message id
    assert len(visibilities) == MESSAGES
    policy = BackoffPolicy(strategy=BackoffStrategy.DECORRELATED)
    assert visibilities == {
        message_id: delay_seconds(1, policy, random.Random(), message_id=message_id)
        for message_id in visibilities
    }
    assert all(30 <= seconds <= 90 for seconds in visibilities.values())


def test_the_default_strategy_is_additive_jitter(consumer: Harness) -> None:
    # Given the template's defaults
    assert consumer.stack.function_environment()["BACKOFF_STRATEGY"] == "additive-jitter"

    # When ten messages fail their first delivery, Then each delay is 2 + 30 + [0, 59]
    visibilities = fail_one_batch(consumer)
    assert len(visibilities) == MESSAGES
    assert all(32 <= seconds <= 91 for seconds in visibilities.values())


def test_two_batches_draw_different_jitter(consumer: Harness) -> None:
    # Given two batches of ten messages failing their first delivery, one after the other
    first = fail_one_batch(consumer)
    consumer.visibility_changes.clear()
    second = fail_one_batch(consumer)

    # Then their delays in record order differ: each batch seeds its records' jitter afresh, so
    # the records at one position of every batch do not come back together (ten equal draws of
    # 60 values by chance: about 1 in 6 x 10^17)
    assert len(first) == len(second) == MESSAGES
    assert list(first.values()) != list(second.values())
