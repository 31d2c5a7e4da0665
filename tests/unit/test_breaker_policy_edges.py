"""The edges of the breaker's policy that mutation testing found unpinned
(docs/mutation-testing.md): the verdict when auth and down failures are equal, the hold bounds
in whole seconds, and half-open's concurrency below the configured one. Expected values are
worked out by hand from the rules in docs/circuit-breaker.md, not from the code."""

from __future__ import annotations

import pytest

from shared.breaker_policy.rules import TripRules, Verdict, WindowCounts
from shared.breaker_policy.timing import ControllerPolicy, longest_hold_seconds, max_open_seconds


def test_equal_auth_and_down_failures_trip_rather_than_pause() -> None:
    # Given a window past every threshold whose failures are half auth, half down
    counts = WindowCounts(calls=20, down_failures=10, auth_failures=10, whole_batch_failures=3)

    # When the rules judge it
    verdict = TripRules().verdict(counts)

    # Then it trips: a pause needs the auth failures to be the greater part
    assert verdict is Verdict.TRIP


@pytest.mark.parametrize(
    ("retention_seconds", "max_open", "longest_hold"),
    [
        # The default 4 days: a quarter is 1 day; plus the backstop's 5-minute period
        (345_600, 86_400, 86_700),
        (600, 150, 450),
        # An odd retention rounds down to whole seconds (SQS's timeouts are whole seconds)
        (1_001, 250, 550),
    ],
)
def test_the_hold_bounds_in_whole_seconds(
    retention_seconds: int, max_open: int, longest_hold: int
) -> None:
    # Given a source queue's retention
    # When the policy derives the sweep time and the longest hold from it
    # Then they are a quarter of it, and that plus one backstop period, in whole seconds
    assert max_open_seconds(retention_seconds) == max_open
    assert type(max_open_seconds(retention_seconds)) is int
    assert longest_hold_seconds(retention_seconds) == longest_hold


@pytest.mark.parametrize(
    ("configured", "half_open"),
    [
        # Below the configured concurrency, never above the study's 3, never below the minimum 2
        (2, 2),
        (3, 2),
        (4, 3),
        (1_000, 3),
    ],
)
def test_half_open_concurrency_stays_below_the_configured_one(
    configured: int, half_open: int
) -> None:
    # Given the mapping's configured MaximumConcurrency
    # When the controller sets half-open
    # Then the concurrency is the one worked out by hand
    assert ControllerPolicy().half_open(configured) == half_open
