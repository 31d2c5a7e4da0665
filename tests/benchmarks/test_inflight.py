"""The in-flight model: SQS's limit, the mapping's scaling, and where the limit lies."""

from __future__ import annotations

import pytest

from benchmarks.inflight import (
    LAMBDA_MAX_CONCURRENCY,
    Scenario,
    inflight_seconds_per_message,
    limit_messages_per_day,
    simulate,
)
from benchmarks.template_defaults import default_batching
from local.aws.moto_stack import parameter_defaults
from shared.backoff import BackoffPolicy


def test_the_time_in_flight_sums_each_attempts_mean_delay_weighted_by_reaching_it() -> None:
    # Given MaxReceiveCount 3 and delays 2^n + 30 + [0, 59]: attempt 1 waits 32..91 s (mean
    # 61.5), attempt 2 34..93 s (mean 63.5), attempt 3 is final (0)
    policy = BackoffPolicy(max_receive_count=3)

    # When half the calls fail, Then a message waits 0.5 x 61.5 + 0.25 x 63.5 = 46.625 s
    assert inflight_seconds_per_message(0.5, policy) == pytest.approx(46.625)
    # ...and the limit of 120,000 is reached at 120,000 / 46.625 x 86,400 messages a day
    assert limit_messages_per_day(0.5, policy, 120_000) == pytest.approx(222_369_973.2, rel=1e-9)
    # ...and never when nothing fails
    assert limit_messages_per_day(0.0, policy, 120_000) == float("inf")


def test_a_small_limit_is_reached_and_receives_are_refused() -> None:
    # Given a full outage for an hour at 1M a day, no breaker, and an in-flight limit of 2,000
    scenario = Scenario(
        messages_per_day=1_000_000, failure_rate=1.0, hours=1, breaker=False, inflight_limit=2_000
    )

    # When it runs
    result = simulate(scenario)

    # Then the in-flight count stops at the limit, receives were refused, and every message
    # was delivered or dead-lettered in the end
    assert 1_900 <= result.peak_inflight <= 2_000 + 100
    assert result.over_limit_events > 0
    arrived = round(1_000_000 / 24)
    assert result.delivered + result.dead_lettered == pytest.approx(arrived, abs=2)
    assert result.left_on_queue == 0


def test_the_breaker_keeps_a_full_outage_far_below_the_limit() -> None:
    # Given 10M messages a day through a 2-hour full outage, with the breaker and without
    with_breaker = simulate(Scenario(messages_per_day=10_000_000, failure_rate=1.0, hours=2))
    without = simulate(
        Scenario(messages_per_day=10_000_000, failure_rate=1.0, hours=2, breaker=False)
    )

    # Then with the breaker nothing is dead-lettered and the peak stays far below 120,000;
    # without, messages run out their receives
    assert with_breaker.over_limit_events == 0
    assert with_breaker.peak_inflight < 30_000
    assert with_breaker.dead_lettered == 0
    assert without.peak_inflight > 100_000
    assert without.dead_lettered > 0


def test_the_mapping_scales_by_300_a_minute_up_to_its_cap() -> None:
    # Given a backlog no concurrency can serve (every call fails for an hour, 100M a day) and
    # MaximumConcurrency 1000
    scenario = Scenario(
        messages_per_day=100_000_000,
        failure_rate=1.0,
        hours=0.25,
        breaker=False,
        maximum_concurrency=1000,
    )

    # When it runs, Then the concurrency grew from 5 by at most 5 a second, capped at 1000
    result = simulate(scenario)
    assert result.peak_concurrency <= min(1000, LAMBDA_MAX_CONCURRENCY)
    assert result.peak_concurrency <= 5 + 5 * 900
    assert result.peak_concurrency > 10


def test_the_scenarios_defaults_are_the_templates() -> None:
    # Given the model's default scenario and the template's defaults (on a standard queue)
    scenario = Scenario(messages_per_day=1, failure_rate=0.0)
    defaults = parameter_defaults()
    # Then they agree on the mapping's batching and concurrency and the function's
    assert scenario.batch_size == default_batching()[0]
    assert scenario.delivery_concurrency == int(defaults["DeliveryConcurrency"])
    assert scenario.maximum_concurrency == int(defaults["MaximumConcurrency"])
    assert scenario.max_receive_count == int(defaults["MaxReceiveCount"])
