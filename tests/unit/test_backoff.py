"""The delay policy: bounds for every receive count, the cap, Retry-After, the final attempt."""

from __future__ import annotations

import random

import pytest

from shared.backoff import (
    BackoffPolicy,
    RetryPlan,
    delay_range_seconds,
    delay_seconds,
    is_final_attempt,
    next_visibility_seconds,
    plan_retry,
)

DEFAULT = BackoffPolicy()
# Beyond this receive count 2^n alone exceeds the 12-hour cap.
CAPPED_FROM = 16


class FixedDraw(random.Random):
    """A random source whose randint always returns the lowest or the highest value."""

    def __init__(self, high: bool) -> None:
        super().__init__(0)
        self.high = high

    def randint(self, a: int, b: int) -> int:
        return b if self.high else a


@pytest.mark.parametrize("receive_count", range(1, CAPPED_FROM + 2))
def test_delay_bounds_for_every_receive_count_up_to_the_cap(receive_count: int) -> None:
    # Given the additive-jitter formula's defaults: 2^n + 30 + U[0, 59], capped at 43200
    expected_low = min(2**receive_count + 30, 43_200)
    expected_high = min(2**receive_count + 30 + 59, 43_200)

    # When the jitter draws its extremes, Then the delay is exactly at the formula's bounds
    assert delay_seconds(receive_count, DEFAULT, FixedDraw(high=False)) == expected_low
    assert delay_seconds(receive_count, DEFAULT, FixedDraw(high=True)) == expected_high
    assert delay_range_seconds(receive_count, DEFAULT) == (expected_low, expected_high)

    # ...and real draws stay inside them
    rng = random.Random(receive_count)
    draws = {delay_seconds(receive_count, DEFAULT, rng) for _ in range(2_000)}
    assert min(draws) >= expected_low
    assert max(draws) <= expected_high


def test_jitter_covers_every_value_of_its_range() -> None:
    # Given many draws for one receive count, Then each of the 60 jitter values occurs
    rng = random.Random(7)
    draws = {delay_seconds(1, DEFAULT, rng) for _ in range(5_000)}
    assert draws == set(range(2 + 30, 2 + 30 + 60))


def test_delay_is_capped() -> None:
    # Given a 100-second cap
    policy = BackoffPolicy(max_seconds=100)

    # When the formula reaches it, Then the range stops at the cap
    assert delay_range_seconds(6, policy) == (94, 100)
    assert delay_range_seconds(7, policy) == (100, 100)
    # ...and a runaway receive count (no redrive policy) neither overflows nor slows down
    assert delay_seconds(10**9, DEFAULT, random.Random(1)) == 43_200


def test_jitter_of_one_means_no_jitter() -> None:
    # Given a jitter of one second
    policy = BackoffPolicy(jitter_seconds=1)

    # When delays are drawn from many random sources, Then they are all the bare formula
    assert {delay_seconds(3, policy, random.Random(s)) for s in range(50)} == {2**3 + 30}


@pytest.mark.parametrize(
    ("receive_count", "final"), [(1, False), (9, False), (10, True), (11, True)]
)
def test_final_attempt_rule(receive_count: int, final: bool) -> None:
    # Given a receive count below, at or beyond the default MaxReceiveCount (10),
    # When the next visibility is computed,
    # Then only the final attempts are recognised as such and get visibility 0
    assert is_final_attempt(receive_count, DEFAULT) is final
    visibility = next_visibility_seconds(receive_count, DEFAULT, random.Random(0))
    assert (visibility == 0) is final


def test_final_attempt_ignores_retry_after() -> None:
    # Given the final attempt and a one-hour Retry-After, When the visibility is computed,
    # Then it is still 0, so SQS dead-letters at the next receive
    assert next_visibility_seconds(10, DEFAULT, random.Random(0), retry_after_seconds=3600) == 0


def test_retry_after_is_a_lower_bound_within_the_cap() -> None:
    # Given a first failure whose delay is 32 s (the jitter draws its lowest value)
    rng = FixedDraw(high=False)

    # When Retry-After is shorter than the delay, Then the delay stands
    assert next_visibility_seconds(1, DEFAULT, rng, retry_after_seconds=5) == 32
    # When it is longer, Then it wins
    assert next_visibility_seconds(1, DEFAULT, rng, retry_after_seconds=600) == 600
    # When it is beyond the cap, Then the cap wins
    policy = BackoffPolicy(max_seconds=300)
    assert next_visibility_seconds(1, policy, rng, retry_after_seconds=86_400) == 300


@pytest.mark.parametrize(
    ("receive_count", "expected"),
    [
        # Hand-computed from the formula: 2^1 + 30 + 0 (the lowest draw), then the final attempt
        (1, RetryPlan(visibility_seconds=32, final_attempt=False)),
        (9, RetryPlan(visibility_seconds=542, final_attempt=False)),
        (10, RetryPlan(visibility_seconds=0, final_attempt=True)),
    ],
)
def test_the_retry_plan_says_whether_it_is_the_final_attempt(
    receive_count: int, expected: RetryPlan
) -> None:
    # Given the default policy (MaxReceiveCount 10) and the jitter's lowest draw, When a failure
    # is planned, Then the plan is exactly the delay and the final-attempt verdict
    assert plan_retry(receive_count, DEFAULT, FixedDraw(high=False)) == expected


def test_the_retry_plan_keeps_within_what_sqs_still_accepts() -> None:
    # Given a delay of 91 s (the jitter's highest draw) and only 40 s left of SQS's 12 hours
    rng = FixedDraw(high=True)

    # When the failure is planned, Then the visibility is trimmed to those 40 s; with more left,
    # the delay stands
    assert plan_retry(1, DEFAULT, rng, ceiling_seconds=40) == RetryPlan(40, final_attempt=False)
    assert plan_retry(1, DEFAULT, rng, ceiling_seconds=500) == RetryPlan(91, final_attempt=False)
