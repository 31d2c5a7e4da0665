"""The circuit breaker's rules in one execution environment, on an injected clock and a fake
mapping: the trip rule, open, half-open pacing and its adjustments, closing, failing open, and
the delivery pool's threads sharing it. The same rules against moto's Lambda API and a real
downstream: tests/integration/test_circuit_breaker.py."""

from __future__ import annotations

import dataclasses
import random
import threading
from collections.abc import Iterator

import pytest

from benchmarks.breaker import BreakerPolicy as StudyPolicy
from consumer.breaker import (
    BatchCalls,
    BreakerPolicy,
    BreakerState,
    CircuitBreaker,
    MappingView,
    mapping_cache_seconds,
)
from consumer.deadline import Deadline
from consumer.errors import BreakerOpen, DeadlineExceeded, DownstreamFailure, MappingUnavailable
from consumer.observability import metrics

CONFIGURED = 10


class FakeMapping:
    """The event source mapping as the Lambda API would show it, and every change asked of it."""

    def __init__(self, state: str = "Enabled", concurrency: int = CONFIGURED) -> None:
        self.state = state
        self.concurrency = concurrency
        self.batch_size = 10
        self.reads = 0
        self.changes: list[tuple[str, int | None]] = []
        self.fail_reads = False
        self.fail_updates = False

    def read(self) -> MappingView | None:
        if self.fail_reads:
            raise MappingUnavailable("GetEventSourceMapping failed: TooManyRequestsException")
        self.reads += 1
        return MappingView("mapping-1", self.state, self.concurrency, self.batch_size)

    def disable(self, uuid: str) -> None:
        assert uuid == "mapping-1"
        if self.fail_updates:
            raise MappingUnavailable("UpdateEventSourceMapping failed: AccessDeniedException")
        self.state = "Disabled"
        self.changes.append(("disable", None))

    def set_concurrency(self, uuid: str, maximum_concurrency: int, *, enable: bool) -> None:
        assert uuid == "mapping-1"
        if self.fail_updates:
            raise MappingUnavailable("UpdateEventSourceMapping failed: AccessDeniedException")
        self.concurrency = maximum_concurrency
        if enable:
            self.state = "Enabled"
        self.changes.append(("enable" if enable else "concurrency", maximum_concurrency))


class FakeClock:
    """Time that moves only when the test (or a pacing wait) moves it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.waits: list[float] = []
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        # A pacing wait: recorded; the clock stays, so that concurrent waits are comparable.
        with self._lock:
            self.waits.append(round(seconds, 6))

    def advance(self, seconds: float) -> None:
        self.now += seconds


def breaker_on(mapping: FakeMapping, clock: FakeClock) -> CircuitBreaker:
    return CircuitBreaker(mapping, CONFIGURED, clock=clock, sleep=clock.sleep)


def deadline(seconds_left: float = 60.0) -> Deadline:
    return Deadline(lambda: int(seconds_left * 1000))


def down() -> DownstreamFailure:
    return DownstreamFailure("could not connect", outcome="connection")


def overloaded(retry_after_seconds: int = 5) -> DownstreamFailure:
    return DownstreamFailure(
        "answered 503", outcome="status", status_code=503, retry_after_seconds=retry_after_seconds
    )


def run_batch(
    breaker: CircuitBreaker, outcomes: list[DownstreamFailure | None], left: float = 60.0
) -> BatchCalls:
    """One batch whose calls end as given (None: 2xx), each asked of the breaker first."""
    calls = breaker.start_batch()
    for outcome in outcomes:
        calls.before_call(deadline(left))
        calls.after_call(outcome)
    breaker.finish_batch(calls)
    return calls


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(autouse=True)
def no_metrics_left_behind() -> Iterator[None]:
    """Transitions add metrics that only a handler's end flushes: none may reach a later test."""
    yield
    metrics.clear_metrics()


# The study's numbers -----------------------------------------------------------------------


def test_the_function_uses_the_studys_policy() -> None:
    # Given the study's breaker policy and the function's, Then they agree name for name
    assert dataclasses.asdict(BreakerPolicy()) == dataclasses.asdict(StudyPolicy())


@pytest.mark.parametrize(
    ("state", "concurrency", "expected"),
    [
        ("Enabled", 10, BreakerState.CLOSED),
        ("Enabled", None, BreakerState.CLOSED),
        ("Enabled", 12, BreakerState.CLOSED),
        ("Disabled", 10, BreakerState.OPEN),
        ("Disabling", 3, BreakerState.OPEN),
        ("Enabled", 3, BreakerState.HALF_OPEN),
        ("Enabling", 3, BreakerState.HALF_OPEN),
        ("Updating", 9, BreakerState.HALF_OPEN),
        ("Updating", 10, BreakerState.CLOSED),
    ],
)
def test_the_mappings_state_is_the_breakers(
    state: str, concurrency: int | None, expected: BreakerState
) -> None:
    # Given a mapping in this State with this MaximumConcurrency, Then the breaker is in
    assert MappingView("m", state, concurrency).breaker_state(CONFIGURED) is expected


def test_half_open_starts_at_three_pollers_below_the_configured_concurrency() -> None:
    # Given the study's starting pace (3 calls a second, one poller per call a second)
    policy = BreakerPolicy()
    # Then half-open starts with 3 pollers, fewer than configured, and never below 2
    assert policy.half_open_concurrency(10) == 3
    assert policy.half_open_concurrency(4) == 3
    assert policy.half_open_concurrency(3) == 2


def test_many_environments_read_the_mapping_less_often() -> None:
    # Given the mapping's configured concurrency, Then each environment's cache keeps the
    # mapping's reads near 10 a second, and never below 5 s
    assert mapping_cache_seconds(10) == 5.0
    assert mapping_cache_seconds(1000) == 100.0


# Tripping -----------------------------------------------------------------------------------


def test_a_full_outage_trips_it_after_three_whole_batch_failures(clock: FakeClock) -> None:
    # Given a closed breaker and a downstream that answers nothing
    mapping = FakeMapping()
    breaker = breaker_on(mapping, clock)
    # When two batches of 10 fail as a whole, Then it stays closed
    for _ in range(2):
        run_batch(breaker, [down()] * 10)
        clock.advance(5)
    assert mapping.changes == []
    # When a third one fails within the minute, Then the mapping is disabled, once
    run_batch(breaker, [down()] * 10)
    assert mapping.changes == [("disable", None)]
    assert breaker.state is BreakerState.OPEN


def test_whole_batch_failures_spread_over_more_than_a_minute_do_not_trip_it(
    clock: FakeClock,
) -> None:
    # Given three whole-batch failures, 40 s apart (never three within 60 s)
    mapping = FakeMapping()
    breaker = breaker_on(mapping, clock)
    for _ in range(3):
        run_batch(breaker, [down()] * 10)
        clock.advance(40)
    # Then it never opened
    assert mapping.changes == []


@pytest.mark.parametrize("failure_rate", [0.1, 0.5])
def test_a_partial_outage_never_trips_it(clock: FakeClock, failure_rate: float) -> None:
    # Given 10 minutes of full batches, a batch every 2 s, with this share of calls failing
    mapping = FakeMapping()
    breaker = breaker_on(mapping, clock)
    draw = random.Random(f"partial-{failure_rate}")
    failed = 0
    for _ in range(300):
        outcomes = [down() if draw.random() < failure_rate else None for _ in range(10)]
        failed += sum(outcome is not None for outcome in outcomes)
        run_batch(breaker, outcomes)
        clock.advance(2)
    # Then plenty failed, and still it never opened: healthy traffic keeps flowing
    assert failed > 250
    assert mapping.changes == []
    assert breaker.state is BreakerState.CLOSED


def test_retry_after_answers_never_trip_it(clock: FakeClock) -> None:
    # Given a downstream that answers every call 503 with Retry-After, batch after batch
    mapping = FakeMapping()
    breaker = breaker_on(mapping, clock)
    for _ in range(20):
        run_batch(breaker, [overloaded()] * 10)
        clock.advance(1)
    # Then it never opened: the downstream is up and asks for a pause
    assert mapping.changes == []


def test_client_errors_never_trip_it(clock: FakeClock) -> None:
    # Given a downstream that refuses every message with 400 (up, but refusing this data)
    mapping = FakeMapping()
    breaker = breaker_on(mapping, clock)
    refused = DownstreamFailure("answered 400", outcome="status", status_code=400)
    for _ in range(10):
        run_batch(breaker, [refused] * 10)
        clock.advance(1)
    # Then it never opened; per-message backoff and the DLQ deal with such messages
    assert mapping.changes == []


# Open -----------------------------------------------------------------------------------------


def test_open_fails_records_without_a_call(clock: FakeClock) -> None:
    # Given a mapping another environment disabled
    breaker = breaker_on(FakeMapping(state="Disabling"), clock)
    calls = breaker.start_batch()
    # When a record asks to call, Then it is refused without a call
    with pytest.raises(BreakerOpen):
        calls.before_call(deadline())
    assert calls.calls == 0


def test_a_mapping_still_updating_after_the_trip_stays_open(clock: FakeClock) -> None:
    # Given an environment that tripped the breaker
    mapping = FakeMapping()
    breaker = breaker_on(mapping, clock)
    for _ in range(3):
        run_batch(breaker, [down()] * 10)
    # When the mapping reads Updating at full concurrency (the change still in progress)
    mapping.state = "Updating"
    mapping.concurrency = CONFIGURED
    clock.advance(5)
    # Then records are still failed without a call
    with pytest.raises(BreakerOpen):
        breaker.start_batch().before_call(deadline())
    # ...until the mapping reads Enabled again (an operator, or the probe)
    mapping.state = "Enabled"
    clock.advance(5)
    breaker.start_batch().before_call(deadline())


def test_a_failed_trip_leaves_it_closed(clock: FakeClock) -> None:
    # Given the Lambda API refusing to disable the mapping
    mapping = FakeMapping()
    mapping.fail_updates = True
    breaker = breaker_on(mapping, clock)
    # When a full outage would trip it
    for _ in range(3):
        run_batch(breaker, [down()] * 10)
    # Then it stays closed as far as this environment is concerned: deliveries go on
    assert breaker.state is BreakerState.CLOSED
    breaker.start_batch().before_call(deadline())


def test_aws_errors_reading_the_mapping_leave_it_closed(clock: FakeClock) -> None:
    # Given a mapping that is open, but that cannot be read
    mapping = FakeMapping(state="Disabled")
    mapping.fail_reads = True
    breaker = breaker_on(mapping, clock)
    # When a batch asks to call, Then the call may go (fail open)
    calls = breaker.start_batch()
    calls.before_call(deadline())
    assert breaker.state is BreakerState.CLOSED
    # ...and once it can be read again (after the cache's 5 s), the breaker follows it
    mapping.fail_reads = False
    clock.advance(5)
    with pytest.raises(BreakerOpen):
        breaker.start_batch().before_call(deadline())


def test_the_mapping_is_read_at_most_once_per_cache_period(clock: FakeClock) -> None:
    # Given a closed breaker, When 50 batches run within 5 s
    mapping = FakeMapping()
    breaker = breaker_on(mapping, clock)
    for _ in range(50):
        run_batch(breaker, [None] * 10)
        clock.advance(0.09)
    # Then the mapping was read once: no Lambda API call per batch
    assert mapping.reads == 1


# Half-open --------------------------------------------------------------------------------------


def half_open(clock: FakeClock, concurrency: int = 3) -> tuple[FakeMapping, CircuitBreaker]:
    mapping = FakeMapping(concurrency=concurrency)
    breaker = breaker_on(mapping, clock)
    breaker.start_batch()
    assert breaker.state is BreakerState.HALF_OPEN
    return mapping, breaker


def test_half_open_paces_one_call_a_second_with_batches_of_ten(clock: FakeClock) -> None:
    # Given a half-open breaker and a batch of 10 records all ready at once
    _, breaker = half_open(clock)
    calls = breaker.start_batch()
    # When each asks for its call
    for _ in range(10):
        calls.before_call(deadline())
    # Then the first goes now and each of the others a second after the one before
    assert clock.waits == [1.0 * n for n in range(1, 10)]


def test_the_pace_follows_the_batch_size(clock: FakeClock) -> None:
    # Given a mapping with batches of 20, half-open
    mapping = FakeMapping(concurrency=3)
    mapping.batch_size = 20
    breaker = breaker_on(mapping, clock)
    calls = breaker.start_batch()
    for _ in range(4):
        calls.before_call(deadline())
    # Then the calls are half a second apart (a batch's calls over 10 s)
    assert clock.waits == [0.5, 1.0, 1.5]


def test_no_call_before_a_retry_after_ends(clock: FakeClock) -> None:
    # Given a half-open breaker whose downstream just asked for 30 s
    _, breaker = half_open(clock)
    calls = breaker.start_batch()
    calls.before_call(deadline())
    calls.after_call(overloaded(retry_after_seconds=30))
    # When the next call asks, Then it waits for the end of the Retry-After
    calls.before_call(deadline())
    assert clock.waits == [30.0]


def test_a_slot_past_the_deadline_fails_the_record_without_a_call(clock: FakeClock) -> None:
    # Given a half-open breaker with 12 s left in the invocation (3 s reserve, 0.5 s a call)
    _, breaker = half_open(clock)
    calls = breaker.start_batch()
    for _ in range(9):
        calls.before_call(deadline(12.0))
    # When the tenth record's slot (9 s away) leaves no time for its call
    with pytest.raises(DeadlineExceeded):
        calls.before_call(deadline(12.0))
    # Then it was not given the slot: the next invocation's first call takes it
    assert clock.waits == [1.0 * n for n in range(1, 9)]
    assert calls.calls == 0


def test_holding_calls_back_raises_the_concurrency_every_ten_seconds(clock: FakeClock) -> None:
    # Given a half-open mapping at 3 pollers whose batches come full (calls held back)
    mapping, breaker = half_open(clock)
    run_batch(breaker, [None] * 10)
    # When 10 s have passed, Then the mapping gets more pollers, x1.1 but at least one more
    clock.advance(10)
    run_batch(breaker, [None] * 10)
    assert mapping.changes == [("concurrency", 4)]


def test_the_concurrency_stays_below_the_configured_value_while_half_open(
    clock: FakeClock,
) -> None:
    # Given a half-open mapping one poller below its configured concurrency, calls held back
    mapping, breaker = half_open(clock, concurrency=CONFIGURED - 1)
    pace = breaker.pace_per_s
    run_batch(breaker, [None] * 10)
    clock.advance(10)
    run_batch(breaker, [None] * 10)
    # Then the pollers stay as they are and this environment's pace rises x1.1 instead
    assert mapping.changes == []
    assert breaker.pace_per_s == pytest.approx(pace * 1.1)


def test_retry_after_lowers_the_concurrency(clock: FakeClock) -> None:
    # Given a half-open mapping at 5 pollers, When the downstream answers with Retry-After
    mapping, breaker = half_open(clock, concurrency=5)
    run_batch(breaker, [overloaded(retry_after_seconds=1)])
    clock.advance(10)
    run_batch(breaker, [None])
    # Then the mapping gets fewer pollers (x0.9), and never fewer than 2
    assert mapping.changes == [("concurrency", 4)]
    mapping2, breaker2 = half_open(clock, concurrency=2)
    run_batch(breaker2, [overloaded(retry_after_seconds=1)])
    clock.advance(10)
    run_batch(breaker2, [None])
    assert mapping2.changes == []


def test_it_closes_after_a_minute_of_calls_held_back_by_nothing(clock: FakeClock) -> None:
    # Given a half-open breaker whose calls come one at a time, 2 s apart (nothing held back)
    mapping, breaker = half_open(clock)
    for _ in range(29):
        run_batch(breaker, [None])
        clock.advance(2)
    # Then after 58 s of such calls it is still half-open
    assert mapping.changes == []
    # ...and once the calls span a minute it restores the configured concurrency
    clock.advance(2)
    run_batch(breaker, [None])
    assert mapping.changes == [("concurrency", CONFIGURED)]
    assert breaker.state is BreakerState.CLOSED


def test_it_does_not_close_before_calls_come(clock: FakeClock) -> None:
    # Given a half-open breaker that has made no call yet (the mapping slow to poll)
    mapping, breaker = half_open(clock)
    clock.advance(120)
    run_batch(breaker, [])
    # Then it stays half-open: a minute of calls, not merely a minute
    assert mapping.changes == []


def test_a_full_outage_in_half_open_opens_it_again(clock: FakeClock) -> None:
    # Given a half-open breaker, When three paced batches fail as a whole within a minute
    mapping, breaker = half_open(clock)
    for _ in range(3):
        run_batch(breaker, [down()] * 4)
        clock.advance(4)
    # Then the mapping is disabled again
    assert ("disable", None) in mapping.changes


# The delivery pool's threads ------------------------------------------------------------------


THREADS = 16


def test_concurrent_records_share_the_pace_without_sharing_a_slot(clock: FakeClock) -> None:
    # Given a half-open breaker and 16 threads each asking for 10 calls at the same instant
    _, breaker = half_open(clock)
    calls = breaker.start_batch()
    start = threading.Barrier(THREADS)

    def deliver() -> None:
        start.wait()
        for _ in range(10):
            calls.before_call(deadline(3600.0))
            calls.after_call(None)

    workers = [threading.Thread(target=deliver) for _ in range(THREADS)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    # Then every call got a slot of its own, a second apart, and every outcome was counted
    assert sorted(clock.waits) == [1.0 * n for n in range(1, THREADS * 10)]
    assert calls.calls == THREADS * 10


def test_concurrent_failures_are_all_counted(clock: FakeClock) -> None:
    # Given a closed breaker, When 16 threads report 10 failures each at once
    mapping = FakeMapping()
    breaker = breaker_on(mapping, clock)
    calls = breaker.start_batch()
    start = threading.Barrier(THREADS)

    def deliver() -> None:
        start.wait()
        for _ in range(10):
            calls.before_call(deadline())
            calls.after_call(down())

    workers = [threading.Thread(target=deliver) for _ in range(THREADS)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    # Then none was lost: the batch counts as a whole-batch failure of 160 calls
    assert (calls.calls, calls.failures) == (THREADS * 10, THREADS * 10)
