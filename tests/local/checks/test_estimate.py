"""A local run says how long it will take before it starts."""

from __future__ import annotations

from dataclasses import replace

import pytest

from local.checks.estimate import (
    BATCH_OVERHEAD_SECONDS,
    LOCAL_SYSTEM_MESSAGES_PER_SECOND,
    RunEstimate,
    estimate_run,
)
from local.shared.run_deadline import RunWork
from shared.backoff import BackoffPolicy, delay_range_seconds

# The demo's policy: delays 3-5 s, 5-7 s, 9-11 s after the first three failures.
POLICY = BackoffPolicy(base_seconds=1, jitter_seconds=3, max_receive_count=4)
WORK = RunWork(
    messages=1000,
    policy=POLICY,
    function_timeout_seconds=60,
    queue_visibility_timeout_seconds=360,
    concurrency=10,
    downstream_latency_seconds=0.05,
)


def estimated(
    work: RunWork = WORK,
    *,
    failure_rate: float = 0.0,
    send_rate: float = 0.0,
    delivery_concurrency: int = 10,
) -> RunEstimate:
    return estimate_run(
        work,
        failure_rate=failure_rate,
        send_rate=send_rate,
        batch_size=10,
        delivery_concurrency=delivery_concurrency,
    )


def test_a_fast_downstream_moves_at_the_local_systems_own_pace() -> None:
    # Given 1000 messages, no failure and a downstream answering in 50 ms
    # When the run is estimated
    estimate = estimated()
    # Then the local system, not the ten environments, sets the pace, and nothing is retried
    assert estimate.messages_per_second == LOCAL_SYSTEM_MESSAGES_PER_SECOND
    assert estimate.retry_seconds == 0
    assert estimate.seconds == pytest.approx(1000 / LOCAL_SYSTEM_MESSAGES_PER_SECOND)
    assert estimate.render() == (
        "estimate   about 3 s from the first send: 1000 messages at ~300/s"
    )


def test_a_slow_downstream_makes_the_environments_the_limit() -> None:
    # Given 4000 messages, a downstream answering in 2 s, a batch's records delivered 5 at a time
    work = replace(WORK, messages=4000, downstream_latency_seconds=2.0)
    # When the run is estimated
    estimate = estimated(work, delivery_concurrency=5)
    # Then ten environments move a batch of 10 every two rounds of 2 s (plus a batch's overhead)
    assert estimate.messages_per_second == pytest.approx(10 * 10 / (4 + BATCH_OVERHEAD_SECONDS))
    # and a run of several minutes says so plainly
    assert "this run is long: over a minute (3 min)" in estimate.render()


def test_a_paced_send_sets_the_pace() -> None:
    # Given messages sent at 20 a second, When the run is estimated
    estimate = estimated(send_rate=20.0)
    # Then the send is the limit
    assert estimate.messages_per_second == 20
    assert estimate.moving_seconds == 50


def test_random_failures_add_the_whole_schedule() -> None:
    # Given a downstream failing at random, When the run is estimated
    estimate = estimated(failure_rate=0.4)
    # Then a message failing every attempt but its last waits out the longest delays: 5 + 7 + 11
    longest = sum(delay_range_seconds(n, POLICY)[1] for n in range(1, 4))
    assert estimate.retry_seconds == longest == 23
    assert "then up to 23 s of retries for a message failing every attempt" in estimate.render()


def test_an_outage_adds_itself_and_the_delays_until_a_retry_surely_follows_it() -> None:
    # Given a 3 s outage: the first delay, at least 3 s, surely ends after it
    estimate = estimated(replace(WORK, outage_seconds=3))
    # Then the retries add the outage and the longest first delay
    assert estimate.retry_seconds == 3 + 5
    # Given a 10 s outage: the first two delays (at least 3 + 5 s) may still fall inside it
    longer = estimated(replace(WORK, outage_seconds=10))
    # Then three delays are counted
    assert longer.retry_seconds == 10 + 5 + 7 + 11
    assert "of retries through the 10 s outage" in longer.render()


def test_retry_after_lengthens_every_delay() -> None:
    # Given a downstream answering 429 with Retry-After 30 s, When a failing run is estimated
    work = replace(WORK, retry_after_seconds=30)
    estimate = estimated(work, failure_rate=0.1)
    # Then each of the three delays is at least 30 s
    assert estimate.retry_seconds == 3 * 30
