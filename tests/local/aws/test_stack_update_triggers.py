"""When a --stack-update is due: after N deliveries, or once the breaker is in a state (an
outage delivers nothing, so only the breaker's state can place an update inside one)."""

from __future__ import annotations

import pytest

from local.aws.stack_updates import StackUpdate


def test_a_count_is_due_once_that_many_were_delivered_whatever_the_breaker() -> None:
    update = StackUpdate.parse("10:BatchSize=5")
    assert update.render() == "after 10 delivered: BatchSize=5"
    assert [update.due(n, "open") for n in (0, 9, 10, 11)] == [False, False, True, True]


@pytest.mark.parametrize("state", ["open", "half-open"])
def test_a_breaker_state_is_due_only_in_that_state_whatever_was_delivered(state: str) -> None:
    update = StackUpdate.parse(f"{state}:CircuitBreaker=Disabled")
    assert update.render() == f"once the breaker is {state}: CircuitBreaker=Disabled"
    assert update.when_breaker == state
    assert update.due(0, state) is True
    assert update.due(1000, "closed") is False
    assert update.due(1000, "open" if state == "half-open" else "half-open") is False


@pytest.mark.parametrize("text", ["closed:BatchSize=5", "OPEN:BatchSize=5", "x:BatchSize=5"])
def test_another_trigger_is_refused_saying_which_ones_there_are(text: str) -> None:
    with pytest.raises(ValueError, match="open or half-open instead of N"):
        StackUpdate.parse(text)
