"""Full jitter and decorrelated jitter: bounds, the shared cap, final attempt, Retry-After."""

from __future__ import annotations

import random

import pytest

from shared.backoff import (
    BackoffPolicy,
    BackoffStrategy,
    delay_range_seconds,
    delay_seconds,
    next_visibility_seconds,
)

FULL_JITTER = BackoffPolicy(strategy=BackoffStrategy.FULL_JITTER)
DECORRELATED = BackoffPolicy(strategy=BackoffStrategy.DECORRELATED)
ALL_STRATEGIES = [BackoffPolicy(strategy=strategy) for strategy in BackoffStrategy]
DRAWS = 2_000


@pytest.mark.parametrize("receive_count", range(1, 20))
def test_full_jitter_spans_zero_to_the_capped_exponential(receive_count: int) -> None:
    # Given full jitter with base 30 and the 12-hour cap
    ceiling = min(30 * 2**receive_count, 43_200)

    # When many delays are drawn
    rng = random.Random(receive_count)
    draws = [delay_seconds(receive_count, FULL_JITTER, rng) for _ in range(DRAWS)]

    # Then they stay in [0, ceiling], which is what the range reports
    assert delay_range_seconds(receive_count, FULL_JITTER) == (0, ceiling)
    assert min(draws) >= 0
    assert max(draws) <= ceiling
    # ...and spread over the whole range rather than bunching at one end
    assert min(draws) < ceiling * 0.05
    assert max(draws) > ceiling * 0.95


def test_full_jitters_first_delay_takes_every_whole_second_from_zero_to_sixty() -> None:
    # Given full jitter with base 30: its first delay is uniform over 0..30 x 2^1 = 0..60
    rng = random.Random(1)

    # When 5,000 delays are drawn, Then every whole second of 0..60 occurs, and no other
    assert {delay_seconds(1, FULL_JITTER, rng) for _ in range(5_000)} == set(range(61))


@pytest.mark.parametrize("receive_count", range(1, 20))
def test_decorrelated_stays_between_the_base_and_base_times_three_to_the_n(
    receive_count: int,
) -> None:
    # Given the decorrelated strategy (base 30, cap 43200)
    upper = min(30 * 3**receive_count, 43_200)

    # When delays are computed for many different messages
    draws = [
        delay_seconds(receive_count, DECORRELATED, random.Random(0), message_id=f"message-{index}")
        for index in range(DRAWS)
    ]

    # Then every delay is within [base, min(cap, base * 3^n)], the reported range
    assert delay_range_seconds(receive_count, DECORRELATED) == (30, upper)
    assert min(draws) >= 30
    assert max(draws) <= upper
    # ...and different messages get different delays (decorrelated, not one shared wave)
    possible_values = upper - 30 + 1
    assert len(set(draws)) > min(possible_values, DRAWS) // 4


def test_decorrelated_first_delay_takes_every_whole_second_from_base_to_three_times_base() -> None:
    # Given the decorrelated strategy (base 30): its first delay is uniform over the 61 whole
    # seconds 30..90 (random_between(base, 3 x base), the documented formula)
    expected = set(range(30, 91))

    # When the first delay is computed for 5,000 different messages
    draws = {
        delay_seconds(1, DECORRELATED, random.Random(0), message_id=f"m-{index}")
        for index in range(5_000)
    }

    # Then every one of those values occurs, and no other: both ends included (a range one
    # second narrower or wider at either end would show here)
    assert draws == expected


def test_decorrelated_chain_is_regenerated_from_the_message_id() -> None:
    # Given one message delivered several times (SQS keeps no state between deliveries)
    message_id = "5f2b1d3e-0c4a-4b8e-9f71-3a2d6c1e8b90"

    # When each delivery computes the delay for its receive count with a different random source
    chain = [
        delay_seconds(n, DECORRELATED, random.Random(n), message_id=message_id) for n in range(1, 9)
    ]
    again = [
        delay_seconds(n, DECORRELATED, random.Random(-n), message_id=message_id)
        for n in range(1, 9)
    ]

    # Then the delays are one chain: the same each time, each step within [base, 3 x previous]
    assert chain == again
    previous = 30
    for delay in chain:
        assert 30 <= delay <= 3 * previous
        previous = delay
    # ...and another message follows another chain
    other = [
        delay_seconds(n, DECORRELATED, random.Random(0), message_id="other") for n in range(1, 9)
    ]
    assert other != chain


def test_decorrelated_needs_the_message_id() -> None:
    # Given the decorrelated strategy, When a delay is asked for without a message id,
    # Then it is refused, since the chain is regenerated from that id
    with pytest.raises(ValueError, match="message id"):
        delay_seconds(1, DECORRELATED, random.Random(0))


@pytest.mark.parametrize("policy", ALL_STRATEGIES, ids=lambda policy: policy.strategy.value)
def test_every_strategy_shares_the_cap(policy: BackoffPolicy) -> None:
    # Given a low cap
    capped = BackoffPolicy(max_seconds=300, max_receive_count=100, strategy=policy.strategy)

    # When the receive count is far beyond the point where the formula exceeds it
    rng = random.Random(3)
    draws = [delay_seconds(n, capped, rng, message_id=f"m{n}") for n in range(1, 100)]

    # Then no delay exceeds the cap, and a runaway receive count neither overflows nor hangs
    assert max(draws) <= 300
    assert delay_range_seconds(90, capped)[1] == 300
    assert delay_seconds(10**9, capped, rng, message_id="runaway") <= 300


def visibility(n: int, policy: BackoffPolicy, retry_after_seconds: int | None = None) -> int:
    """The visibility after the n-th failure, from a fixed random source and message id."""
    return next_visibility_seconds(
        n, policy, random.Random(5), retry_after_seconds=retry_after_seconds, message_id="m"
    )


@pytest.mark.parametrize("policy", ALL_STRATEGIES, ids=lambda policy: policy.strategy.value)
def test_every_strategy_ends_with_visibility_zero_on_the_final_attempt(
    policy: BackoffPolicy,
) -> None:
    # Given the final attempt (receive count 10 of 10), even with a long Retry-After,
    # Then the visibility is 0, so SQS dead-letters at the next receive
    assert visibility(10, policy, retry_after_seconds=3600) == 0
    # ...while the attempt before it still waits
    assert visibility(9, policy, retry_after_seconds=3600) >= 3600


@pytest.mark.parametrize("policy", ALL_STRATEGIES, ids=lambda policy: policy.strategy.value)
def test_every_strategy_treats_retry_after_as_a_lower_bound_within_the_cap(
    policy: BackoffPolicy,
) -> None:
    # Given a Retry-After longer than any first delay (at most 121 s for these defaults),
    # Then it wins
    assert visibility(1, policy, retry_after_seconds=600) == 600

    # Given one beyond the cap, Then the cap wins
    capped = BackoffPolicy(max_seconds=300, strategy=policy.strategy)
    assert visibility(1, capped, retry_after_seconds=86_400) == 300

    # Given a short Retry-After, Then the strategy's own delay stands
    own = visibility(1, policy)
    assert visibility(1, policy, retry_after_seconds=own) == own
