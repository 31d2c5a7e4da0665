"""The breaker's control-plane study: its scenarios follow the template, and its verdicts follow
the results."""

from __future__ import annotations

from dataclasses import replace

from benchmarks.breaker_control_plane import (
    SCALED_CONCURRENCY,
    build_jobs,
    goals,
    parse_args,
    per_environment_reads_per_s,
)
from benchmarks.sqs_outage import Scenario, simulate
from benchmarks.strategies import strategies
from shared.backoff import BackoffPolicy


def test_the_scenarios_cross_outages_and_delays_plus_one_scaled_row() -> None:
    # Given two outages and two actuation delays
    jobs = build_jobs(parse_args(["--outages-s", "60,600", "--actuation-delays-s", "0,60"]))
    # Then each pair is a CB scenario at the template's MaximumConcurrency, and one more runs
    # the longest outage and delay with 1,000 environments
    assert [(j.scenario.outage_s, j.scenario.breaker_actuation_delay_s) for j in jobs] == [
        (60, 0), (60, 60), (600, 0), (600, 60), (600, 60)
    ]  # fmt: skip
    assert {j.scenario.strategy for j in jobs} == {"CB"}
    assert [j.scenario.concurrency for j in jobs][-1] == SCALED_CONCURRENCY
    assert jobs[0].scenario.concurrency == 10


def test_the_design_it_replaces_read_the_mapping_per_environment() -> None:
    # Every environment read the mapping every max(5, MaximumConcurrency / 10) s
    assert per_environment_reads_per_s(10) == 2.0
    assert per_environment_reads_per_s(1000) == 10.0


def test_the_verdicts_fail_when_a_goal_is_missed() -> None:
    # Given a short outage with the breaker, and the same with the per-message backoff alone
    # and maxReceiveCount 1 (everything stranded is dead-lettered)
    scenario = Scenario(
        strategy="CB", outage_s=600, arrival_rate_per_s=0.1, arrivals_after_recovery_s=300
    )
    breaker = simulate(scenario, strategies(BackoffPolicy(max_receive_count=10))["CB"])
    per_message = simulate(
        replace(scenario, strategy="S0", max_receive_count=1),
        strategies(BackoffPolicy(max_receive_count=1))["S0"],
    )
    assert per_message.stranded_dead_lettered > 0
    # Then the breaker passes both goals, and a run that dead-letters fails the first
    assert [line.split(":")[1].split()[0] for line in goals([breaker])] == ["PASS", "PASS"]
    assert goals([breaker, per_message])[0].split(":")[1].split()[0] == "FAIL"
