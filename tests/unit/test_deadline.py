"""The per-call timeout inside the invocation's remaining time."""

from __future__ import annotations

import pytest

from consumer.deadline import Deadline
from consumer.errors import DeadlineExceeded


def test_the_configured_timeout_when_time_is_plentiful() -> None:
    # Given 60 s left and a 10 s configured timeout, When the call timeout is asked for,
    # Then it is the configured one
    assert Deadline(lambda: 60_000).call_timeout_seconds(10) == 10


def test_the_timeout_shrinks_to_what_is_left_minus_the_reserve() -> None:
    # Given 8 s left, less than the 10 s configured, When the call timeout is asked for,
    # Then it is what is left minus the 3 s reserve
    assert Deadline(lambda: 8_000).call_timeout_seconds(10) == pytest.approx(5.0)


def test_no_call_when_too_little_is_left() -> None:
    # Given 3.4 s left, too little once the reserve is kept back,
    # When the call timeout is asked for, Then no call is allowed, saying how much time was left
    with pytest.raises(DeadlineExceeded, match=r"3\.4s of the invocation left"):
        Deadline(lambda: 3_400).call_timeout_seconds(10)


def test_elapsed_time_comes_from_the_injected_clock() -> None:
    # Given a clock that reads 100 s at the start and 112.5 s later
    ticks = iter([100.0, 112.5])

    # When the elapsed time is asked for, Then it is the difference of the two readings
    assert Deadline(lambda: 1, clock=lambda: next(ticks)).elapsed_seconds() == 12.5
