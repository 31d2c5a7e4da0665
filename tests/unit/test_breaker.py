"""One consumer environment's part of the circuit breaker, on an injected clock and a recording
channel: which outcomes trip or pause it, what a whole-batch failure is, reporting (at most
once per report_every_s), failing fast only on calls without an answer, and the delivery
pool's threads sharing it. The controller's side: tests/unit/test_breaker_controller.py."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator

import pytest

from benchmarks.breaker import BreakerPolicy as StudyPolicy
from consumer.breaker import BatchCalls, CircuitBreaker, LocalPolicy
from shared.breaker_policy.report import BreakerReport
from shared.breaker_policy.rules import TripRules, Verdict
from shared.breaker_policy.timing import ControllerPolicy
from shared.deadline import Deadline
from shared.errors import BreakerOpen, DownstreamFailure
from shared.observability import metrics


class RecordingChannel:
    def __init__(self) -> None:
        self.reports: list[BreakerReport] = []

    def send(self, report: BreakerReport) -> None:
        self.reports.append(report)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def deadline() -> Deadline:
    return Deadline(lambda: 60_000)


def no_answer() -> DownstreamFailure:
    return DownstreamFailure("could not connect", outcome="connection")


def status(code: int, retry_after_seconds: int | None = None) -> DownstreamFailure:
    return DownstreamFailure(
        f"answered {code}",
        outcome="status",
        status_code=code,
        retry_after_seconds=retry_after_seconds,
    )


def run_batch(breaker: CircuitBreaker, outcomes: list[DownstreamFailure | None]) -> BatchCalls:
    """One batch whose calls end as given (None: 2xx), each asked of the breaker first."""
    calls = breaker.start_batch()
    for outcome in outcomes:
        calls.before_call(deadline())
        calls.after_call(outcome)
    breaker.finish_batch(calls)
    return calls


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def channel() -> RecordingChannel:
    return RecordingChannel()


@pytest.fixture
def breaker(clock: FakeClock, channel: RecordingChannel) -> CircuitBreaker:
    return CircuitBreaker(TripRules(), channel, clock=clock, wall_clock=clock)


@pytest.fixture(autouse=True)
def no_metrics_left_behind() -> Iterator[None]:
    yield
    metrics.clear_metrics()


# The study's numbers -----------------------------------------------------------------------


def test_the_rules_and_timings_are_the_studys() -> None:
    # Given the study's policy (benchmarks/breaker.py) and the product's rules and timings
    study, rules, timing = StudyPolicy(), TripRules(), ControllerPolicy()
    # Then the trip rule and the controller's times agree with it
    assert (rules.window_s, rules.failure_ratio, rules.min_failures) == (
        study.window_s,
        study.trip_failure_ratio,
        study.trip_min_failures,
    )
    assert rules.whole_batch_failures == study.trip_whole_batch_failures
    assert (timing.probe_interval_s, timing.close_after_s) == (
        study.probe_interval_s,
        study.close_after_s,
    )
    assert timing.min_concurrency == study.min_concurrency
    # Half-open: one poller per call a second of the study's starting pace, batches of 10
    assert timing.half_open_concurrency == int(study.half_open_rate_per_s * study.horizon_s / 10)


# What trips it and what does not -----------------------------------------------------------


def test_a_full_outage_is_reported_after_three_whole_batch_failures(
    breaker: CircuitBreaker, channel: RecordingChannel
) -> None:
    # Given two batches of 5 calls that all failed with 500 (10 failures, 2 whole batches)
    for _ in range(2):
        run_batch(breaker, [status(500)] * 5)
    assert channel.reports == []
    # When a third one fails as a whole
    run_batch(breaker, [status(500)] * 5)
    # Then the environment reports a trip with its window's counts
    [report] = channel.reports
    assert report.verdict is Verdict.TRIP
    assert (report.counts.calls, report.counts.failures) == (15, 15)
    assert report.counts.whole_batch_failures == 3


def test_a_429_without_retry_after_counts_as_down(
    breaker: CircuitBreaker, channel: RecordingChannel
) -> None:
    # Given batches answered 429 without Retry-After (overloaded, no guidance)
    for _ in range(3):
        run_batch(breaker, [status(429)] * 5)
    # Then it trips, as for 5xx
    assert [report.verdict for report in channel.reports] == [Verdict.TRIP]


def test_retry_after_never_trips_it(breaker: CircuitBreaker, channel: RecordingChannel) -> None:
    # Given batches whose every call is answered 503 or 429 with Retry-After
    for code in (503, 429, 503, 429, 503):
        run_batch(breaker, [status(code, retry_after_seconds=5)] * 10)
    # Then nothing is reported: the downstream is up and asks for a pause
    assert channel.reports == []


@pytest.mark.parametrize("code", [400, 404, 409, 422])
def test_a_messages_own_4xx_never_trips_it(
    breaker: CircuitBreaker, channel: RecordingChannel, code: int
) -> None:
    # Given batches whose every call is refused with a message's own 4xx
    for _ in range(5):
        run_batch(breaker, [status(code)] * 10)
    # Then nothing is reported
    assert channel.reports == []


@pytest.mark.parametrize("code", [401, 403])
def test_credential_failures_pause_delivery(
    breaker: CircuitBreaker, channel: RecordingChannel, code: int
) -> None:
    # Given batches whose every call is refused for its credentials (after a rotation)
    for _ in range(3):
        run_batch(breaker, [status(code)] * 5)
    # Then the environment reports a pause: the controller opens the breaker, and the backlog
    # waits instead of being dead-lettered
    [report] = channel.reports
    assert report.verdict is Verdict.PAUSE
    assert report.counts.auth_failures == 15


def test_a_batch_with_one_success_is_not_a_whole_batch_failure(
    breaker: CircuitBreaker, channel: RecordingChannel
) -> None:
    # Given ten batches of 9 failures and 1 success: 90 % failed, 90 failures, no batch whole
    for _ in range(10):
        calls = run_batch(breaker, [status(500)] * 9 + [None])
        assert (calls.calls, calls.down_failures) == (10, 9)
    # Then nothing trips: a whole-batch failure needs every call of the batch to fail
    assert channel.reports == []


def test_a_batch_without_calls_is_not_a_whole_batch_failure(
    breaker: CircuitBreaker, channel: RecordingChannel
) -> None:
    # Given 12 failed calls in batches of 4 plus batches that made no call at all
    for _ in range(3):
        run_batch(breaker, [])
    run_batch(breaker, [status(500)] * 4)
    run_batch(breaker, [status(500)] * 4)
    run_batch(breaker, [status(500)] * 4 + [None])
    # Then it does not trip: two whole-batch failures only
    assert channel.reports == []


def test_below_the_failure_ratio_it_does_not_trip(
    breaker: CircuitBreaker, channel: RecordingChannel
) -> None:
    # Given 4 whole-batch failures (20 failures) and 4 fully successful batches (20 calls):
    # 50 % failed, well above the minimum count and the whole-batch count
    for _ in range(4):
        run_batch(breaker, [None] * 5)
        run_batch(breaker, [status(500)] * 5)
    # Then nothing trips: the failures are not 90 % of the calls
    assert channel.reports == []


def test_below_the_minimum_failures_it_does_not_trip(
    breaker: CircuitBreaker, channel: RecordingChannel
) -> None:
    # Given three whole-batch failures of 3 calls each: 100 % failed, but 9 failures
    for _ in range(3):
        run_batch(breaker, [status(500)] * 3)
    assert channel.reports == []
    # When one more call fails, in a fourth whole batch
    run_batch(breaker, [status(500)])
    # Then the tenth failure trips it
    assert [report.verdict for report in channel.reports] == [Verdict.TRIP]


def test_failures_spread_over_more_than_the_window_do_not_trip_it(
    breaker: CircuitBreaker, channel: RecordingChannel, clock: FakeClock
) -> None:
    # Given whole-batch failures of 5 calls, 40 s apart
    for _ in range(6):
        run_batch(breaker, [status(500)] * 5)
        clock.advance(40)
    # Then no minute ever holds three of them: nothing trips
    assert channel.reports == []


# Reporting and failing fast ----------------------------------------------------------------


def test_reports_are_sent_at_most_once_per_report_interval(
    breaker: CircuitBreaker, channel: RecordingChannel, clock: FakeClock
) -> None:
    # Given an environment that keeps seeing the downstream down
    for _ in range(4):
        for _ in range(3):
            run_batch(breaker, [status(500)] * 5)
        clock.advance(10)
    # Then it reported once in the first 30 s, and again once 30 s had passed
    sent_at = [report.observed_at for report in channel.reports]
    assert sent_at == [1000.0, 1030.0]


def test_no_answer_fails_fast_without_a_call_for_a_while(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    # Given a trip whose failures were all calls without an answer (timeouts, refused)
    for _ in range(3):
        run_batch(breaker, [no_answer()] * 5)
    # Then the next call is failed without being made
    with pytest.raises(BreakerOpen):
        breaker.start_batch().before_call(deadline())
    # And once fail_fast_s has passed, calls go again
    clock.advance(LocalPolicy().fail_fast_s)
    breaker.start_batch().before_call(deadline())


def test_answered_failures_do_not_fail_fast(breaker: CircuitBreaker) -> None:
    # Given a trip on fast 500s (a dead backend, or a flood of poison messages)
    for _ in range(3):
        run_batch(breaker, [status(500)] * 5)
    # Then calls still go: a receive is spent either way, and a good message may be delivered
    breaker.start_batch().before_call(deadline())
    assert not breaker.failing_fast


def test_a_lost_report_does_not_stop_deliveries(clock: FakeClock) -> None:
    # Given a channel that fails (it logs and returns, as ControllerChannel does)
    class Lost:
        sent = 0

        def send(self, report: BreakerReport) -> None:
            self.sent += 1

    lost = Lost()
    breaker = CircuitBreaker(TripRules(), lost, clock=clock, wall_clock=clock)
    # When it trips on 500s
    for _ in range(3):
        run_batch(breaker, [status(500)] * 5)
    # Then it tried to report, and calls still go
    assert lost.sent == 1
    breaker.start_batch().before_call(deadline())


def test_concurrent_failures_are_all_counted(
    breaker: CircuitBreaker, channel: RecordingChannel
) -> None:
    # Given the delivery pool's threads reporting the outcomes of one batch at once
    calls = breaker.start_batch()
    rng = random.Random(7)
    outcomes = [status(500) if rng.random() < 0.5 else None for _ in range(400)]
    barrier = threading.Barrier(8)

    def deliver(share: list[DownstreamFailure | None]) -> None:
        barrier.wait()
        for outcome in share:
            calls.after_call(outcome)

    threads = [threading.Thread(target=deliver, args=(outcomes[i::8],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then every call and every failure was counted
    assert calls.calls == 400
    assert calls.down_failures == sum(outcome is not None for outcome in outcomes)
