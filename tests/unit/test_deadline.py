"""The per-call timeout inside the invocation's remaining time, and the reserve kept back to
settle the batch."""

from __future__ import annotations

import pytest

from shared.deadline import (
    REPORT_SECONDS_PER_RECORD,
    RESERVE_SECONDS,
    RESPONSE_SECONDS,
    VISIBILITY_ROUND_SECONDS,
    Deadline,
    WrapUp,
)
from shared.errors import DeadlineExceeded


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


def test_the_wrap_up_of_a_large_batch_counts_rounds_of_concurrent_calls() -> None:
    # Given 10,000 unsettled records and 10 visibility calls at a time
    wrap_up = WrapUp(parallel_calls=10)

    # When its time is asked for
    seconds = wrap_up.seconds(10_000)

    # Then it is the response, 100 rounds of 10 calls of 10 entries, and 10,000 log lines
    expected = (
        RESPONSE_SECONDS + 100 * VISIBILITY_ROUND_SECONDS + 10_000 * REPORT_SECONDS_PER_RECORD
    )
    assert seconds == pytest.approx(expected)


def test_one_call_at_a_time_takes_a_round_per_call() -> None:
    # Given 25 unsettled records and one call at a time, When the time is asked for,
    # Then three calls are counted (10 + 10 + 5 entries)
    expected = RESPONSE_SECONDS + 3 * VISIBILITY_ROUND_SECONDS + 25 * REPORT_SECONDS_PER_RECORD
    assert WrapUp(parallel_calls=1).seconds(25) == pytest.approx(expected)


def test_the_reserve_grows_with_the_work_left_and_never_falls_below_the_floor() -> None:
    # Given a deadline with 60 s left whose batch says 20 s of work are left
    work_left = [20.0]
    deadline = Deadline(lambda: 60_000)
    deadline.keep_back_for(lambda: work_left[0])

    # When a call's timeout is asked for, Then only 40 s are available
    assert deadline.reserve_seconds() == 20.0
    assert deadline.call_timeout_seconds(55) == pytest.approx(40.0)

    # When the work left shrinks below the floor, Then the floor is kept back
    work_left[0] = 0.5
    assert deadline.reserve_seconds() == RESERVE_SECONDS


def test_no_call_when_the_work_left_takes_the_rest() -> None:
    # Given 12 s left and 11.8 s of work left to settle the batch
    deadline = Deadline(lambda: 12_000)
    deadline.keep_back_for(lambda: 11.8)

    # When a call is checked for, Then none fits, and the error says what was kept back
    with pytest.raises(DeadlineExceeded, match=r"12\.0s of the invocation left, 11\.8s of it"):
        deadline.check_time_for_a_call()
