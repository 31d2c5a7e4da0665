"""The circuit breaker's state machine: what trips it, what does not, probes, pace, closing."""

from __future__ import annotations

import pytest

from benchmarks.breaker import Breaker, BreakerPolicy, BreakerState

POLICY = BreakerPolicy()


def state_of(breaker: Breaker) -> BreakerState:
    # A call, not the attribute: mypy would keep the state narrowed across the calls that move it.
    return breaker.state


def failing_invocations(breaker: Breaker, start_s: float, count: int, calls: int = 5) -> float:
    at = start_s
    for _ in range(count):
        for _ in range(calls):
            at += 0.1
            breaker.record_call(at, failed=True, retry_after_s=None)
        breaker.record_invocation(at, calls, calls)
    return at


def test_whole_batch_failures_at_a_high_failure_rate_open_it() -> None:
    # Given a closed breaker
    breaker = Breaker(POLICY, max_concurrency=10, batch_size=10)
    assert state_of(breaker) is BreakerState.CLOSED
    assert breaker.concurrency() == 10

    # When three invocations fail as a whole (15 failed calls)
    failing_invocations(breaker, 0.0, 3)

    # Then it is open: the mapping is disabled
    assert state_of(breaker) is BreakerState.OPEN
    assert not breaker.enabled
    assert breaker.concurrency() == 0
    assert breaker.counters.trips == 1


def test_two_whole_batch_failures_are_not_enough() -> None:
    # Given a closed breaker
    breaker = Breaker(POLICY, max_concurrency=10, batch_size=10)
    # When two invocations fail as a whole
    failing_invocations(breaker, 0.0, 2, calls=10)
    # Then it stays closed: three are needed
    assert state_of(breaker) is BreakerState.CLOSED


def test_whole_batch_failures_spread_over_more_than_a_minute_do_not_open_it() -> None:
    # Given whole-batch failures of single records, 40 s apart, with successes between them
    breaker = Breaker(POLICY, max_concurrency=10, batch_size=10)
    for index in range(20):
        at = index * 40.0
        breaker.record_call(at, failed=False, retry_after_s=None)
        breaker.record_invocation(at, 1, 0)
        breaker.record_call(at + 1, failed=True, retry_after_s=None)
        breaker.record_invocation(at + 1, 1, 1)

    # Then it stays closed: never ten failures at 90 % within a minute
    assert state_of(breaker) is BreakerState.CLOSED


@pytest.mark.parametrize("failure_rate", [0.1, 0.5, 0.8])
def test_a_partial_outage_does_not_open_it(failure_rate: float) -> None:
    # Given batches of one record (low traffic: the worst case for whole-batch failures) where
    # a fixed fraction of the calls fail, in a deterministic pattern
    breaker = Breaker(POLICY, max_concurrency=10, batch_size=10)
    for index in range(2_000):
        at = index * 0.5
        failed = (index * failure_rate) % 1.0 + failure_rate >= 1.0
        breaker.record_call(at, failed=failed, retry_after_s=None)
        breaker.record_invocation(at, 1, int(failed))

    # Then it never opened
    assert breaker.counters.trips == 0
    assert state_of(breaker) is BreakerState.CLOSED


def test_overload_answers_with_retry_after_never_open_it() -> None:
    # Given a closed breaker
    breaker = Breaker(POLICY, max_concurrency=10, batch_size=10)
    # When every call of a hundred invocations is answered with Retry-After: overload, not an
    # outage
    for index in range(100):
        at = index * 0.1
        for _ in range(10):
            breaker.record_call(at, failed=True, retry_after_s=1)
        breaker.record_invocation(at, 10, 0)
    # Then it stays closed
    assert state_of(breaker) is BreakerState.CLOSED


def test_a_failed_probe_keeps_it_open_and_a_good_one_half_opens_it_at_low_concurrency() -> None:
    # Given an open breaker
    breaker = Breaker(POLICY, max_concurrency=10, batch_size=10)
    at = failing_invocations(breaker, 0.0, 3)

    # When a probe fails
    breaker.probe(at + 60, succeeded=False)
    # Then it stays open
    assert state_of(breaker) is BreakerState.OPEN

    # When a later probe succeeds
    breaker.probe(at + 120, succeeded=True)
    # Then it is half-open
    assert state_of(breaker) is BreakerState.HALF_OPEN
    assert breaker.counters.probes == 2
    assert breaker.counters.open_s == pytest.approx(120)
    # ...three pollers at 3 calls/s, far below the ten of the closed state
    assert breaker.concurrency() == 3
    assert breaker.rate_per_s == POLICY.half_open_rate_per_s


def half_open(start_s: float = 0.0) -> Breaker:
    breaker = Breaker(POLICY, max_concurrency=10, batch_size=10)
    at = failing_invocations(breaker, start_s, 3)
    breaker.probe(at + 60, succeeded=True)
    return breaker


def test_half_open_paces_calls_at_its_rate() -> None:
    # Given a half-open breaker at 3 calls/s
    breaker = half_open()
    start = breaker.state_since

    # When ten calls ask to go at once
    slots = [breaker.reserve_call(start) for _ in range(10)]

    # Then they go a third of a second apart
    assert slots[0] == start
    assert slots[-1] == pytest.approx(start + 9 / 3)


def test_half_open_speeds_up_while_held_back_and_slows_down_on_retry_after() -> None:
    # Given a half-open breaker at 3 calls/s
    breaker = half_open()
    start = breaker.state_since

    # When the pace holds calls back for 10 s without overload
    at = start
    while at < start + 10:
        at = breaker.reserve_call(at)
    breaker.tick(start + 10)

    # Then the rate went up by the increase factor
    assert breaker.rate_per_s == pytest.approx(3.0 * POLICY.increase_factor)

    # When the downstream answers with Retry-After: 5
    breaker.record_call(start + 12, failed=True, retry_after_s=5)
    breaker.tick(start + 20)

    # Then the rate went down, and no call goes before the Retry-After has passed
    assert breaker.rate_per_s == pytest.approx(3.0 * POLICY.increase_factor * 0.9)
    assert breaker.reserve_call(start + 12.5) >= start + 17


def test_half_open_closes_after_a_minute_without_holding_anything_back() -> None:
    # Given a half-open breaker that held one call back at its start
    breaker = half_open()
    start = breaker.state_since
    breaker.reserve_call(start)
    breaker.reserve_call(start)  # held back once, at start + 1/3 s

    # When half a minute passes
    breaker.tick(start + 30)
    # Then it is still half-open
    assert state_of(breaker) is BreakerState.HALF_OPEN

    # When a minute passes without holding anything back
    breaker.tick(start + 61)
    # Then it is closed at full concurrency
    assert state_of(breaker) is BreakerState.CLOSED
    assert breaker.concurrency() == 10
    # ...and closed, nothing is paced
    assert breaker.reserve_call(start + 61) == start + 61


def test_half_open_reopens_on_whole_batch_failures() -> None:
    # Given a half-open breaker
    breaker = half_open()
    # When three invocations fail as a whole again
    failing_invocations(breaker, breaker.state_since, 3)
    # Then it is open again: a second trip
    assert state_of(breaker) is BreakerState.OPEN
    assert breaker.counters.trips == 2


def test_half_open_does_not_close_before_the_mapping_has_polled() -> None:
    # Given a half-open breaker whose mapping has not started polling yet (no call at all)
    breaker = half_open()

    # When minutes pass
    breaker.tick(breaker.state_since + 600)

    # Then it is still half-open: a quiet minute without calls says nothing about the backlog
    assert state_of(breaker) is BreakerState.HALF_OPEN
