"""A flood of poison messages (95 % answered 500 for ever) while the downstream is up: the
breaker must not hold the good messages back for long. Defined as: over an hour, the mapping
is below its configured concurrency less than half the time, no stretch without a receive is
longer than two probe minutes, and at most 30 transitions an hour. Simulated with the real
consumer and controller code (tests/support/poison_flood.py, which prints the figures)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared.breaker_policy.timing import ControllerPolicy
from shared.observability import metrics
from tests.support.poison_flood import simulate


@pytest.fixture(autouse=True)
def no_metrics_left_behind() -> Iterator[None]:
    yield
    metrics.clear_metrics()


@pytest.mark.parametrize("actuation_s", [0.0, 30.0, 60.0])
def test_a_poison_flood_holds_good_messages_back_briefly(actuation_s: float) -> None:
    # Given 95 % of the messages answered 500 for ever, a health check answering 200, and a
    # mapping change that takes actuation_s to land
    result = simulate(poison_share=0.95, hours=1.0, actuation_s=actuation_s)
    # Then good messages are held back less than half the hour, never more than two minutes
    # without a receive, at a bounded number of transitions
    assert result.held_back_share < 0.5
    assert result.longest_without_receive_s <= 120
    assert result.transitions_per_hour <= 30


def test_without_the_poison_flood_guard_the_flood_holds_them_back() -> None:
    # Given the same flood and a controller that never recognises it (the guard off)
    result = simulate(poison_share=0.95, hours=1.0, policy=ControllerPolicy(flap_retrips=10**6))
    # Then the mapping is held back most of the hour: what the guard prevents
    assert result.held_back_share > 0.9
