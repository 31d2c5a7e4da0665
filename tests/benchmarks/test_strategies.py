"""The study's strategies: S0, S2, S3 are the function's own; S1, S4, S5 their stated formulas."""

from __future__ import annotations

import random

import pytest

from benchmarks.strategies import strategies
from shared.backoff import BackoffPolicy, BackoffStrategy, next_visibility_seconds

POLICY = BackoffPolicy()  # base 30, jitter 60, cap 43200, max receive count 10
STRATEGIES = strategies(POLICY)


def visibility(seconds: int | None) -> int:
    """A strategy's answer where it must set one (every strategy but S5)."""
    assert seconds is not None
    return seconds


def test_the_six_strategies_and_the_breaker_are_there() -> None:
    # Given the study's strategies, Then they are S0 to S5 and CB, the only one with a breaker
    assert list(STRATEGIES) == ["S0", "S1", "S2", "S3", "S4", "S5", "CB"]
    assert [key for key, s in STRATEGIES.items() if s.breaker] == ["CB"]


def test_the_breaker_backs_off_each_message_as_s0_does() -> None:
    # Given the same random source state, When CB and S0 set each attempt's visibility
    # Then they set the same
    for n in range(1, 12):
        assert STRATEGIES["CB"].visibility(n, "m-1", 7, random.Random(n)) == STRATEGIES[
            "S0"
        ].visibility(n, "m-1", 7, random.Random(n))


@pytest.mark.parametrize(
    ("key", "strategy"),
    [
        ("S0", BackoffStrategy.ADDITIVE_JITTER),
        ("S2", BackoffStrategy.FULL_JITTER),
        ("S3", BackoffStrategy.DECORRELATED),
    ],
)
def test_project_strategies_are_the_functions_own(key: str, strategy: BackoffStrategy) -> None:
    # Given the same random source state, Then the study's visibility is the function's
    policy = BackoffPolicy(strategy=strategy)
    for n in range(1, 12):
        expected = next_visibility_seconds(n, policy, random.Random(n), 7, message_id="m-1")
        assert STRATEGIES[key].visibility(n, "m-1", 7, random.Random(n)) == expected


@pytest.mark.parametrize("n", range(1, 10))
def test_s1_is_capped_exponential_without_jitter(n: int) -> None:
    # Given twenty random sources, When S1 draws attempt n's visibility
    draws = {STRATEGIES["S1"].visibility(n, "m", None, random.Random(seed)) for seed in range(20)}
    # Then it is always 30 * 2^n capped at 12 hours: no jitter
    assert draws == {min(30 * 2**n, 43_200)}


def test_s1_reaches_the_cap_and_honours_retry_after() -> None:
    # Given S1, When attempt 9, attempt 20 of 100 and an attempt with a Retry-After fail
    # Then they wait 30 * 2^9 s, the 12-hour cap and the Retry-After
    assert STRATEGIES["S1"].visibility(9, "m", None, random.Random(0)) == 15_360
    long_policy = strategies(BackoffPolicy(max_receive_count=100))["S1"]
    assert long_policy.visibility(20, "m", None, random.Random(0)) == 43_200
    assert STRATEGIES["S1"].visibility(1, "m", 500, random.Random(0)) == 500


@pytest.mark.parametrize("n", range(1, 10))
def test_s4_is_sidekiqs_formula_counting_retries_from_zero(n: int) -> None:
    # Given S4 and attempt n (Sidekiq: count^4 + 15 + rand(10 * (count + 1)), count = n - 1)
    count = n - 1
    rng = random.Random(n)
    # When it draws 3000 visibilities
    draws = [visibility(STRATEGIES["S4"].visibility(n, "m", None, rng)) for _ in range(3_000)]
    # Then they span exactly Sidekiq's range
    assert min(draws) == count**4 + 15
    assert max(draws) == count**4 + 15 + 10 * (count + 1) - 1


def test_s5_leaves_the_queues_visibility_timeout() -> None:
    # Given S5, When a message fails, with or without Retry-After, Then no visibility is set
    assert STRATEGIES["S5"].visibility(1, "m", 600, random.Random(0)) is None
    assert STRATEGIES["S5"].visibility(10, "m", None, random.Random(0)) is None


@pytest.mark.parametrize("key", ["S0", "S1", "S2", "S3", "S4"])
def test_every_backoff_ends_with_visibility_zero_on_the_final_attempt(key: str) -> None:
    # Given a Retry-After of an hour, When the final (10th) attempt fails, Then the visibility is 0
    assert STRATEGIES[key].visibility(10, "m", 3600, random.Random(0)) == 0
    # ...while the attempt before it still waits at least the Retry-After
    assert visibility(STRATEGIES[key].visibility(9, "m", 3600, random.Random(0))) >= 3600
