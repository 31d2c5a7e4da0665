"""The outage model on small scenarios: conservation, the redrive policy, expiry, the in-flight
limit, the downstream's capacity and Retry-After, and determinism."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from benchmarks.sqs_outage import Result, Scenario, simulate
from benchmarks.strategies import Strategy, strategies
from shared.backoff import BackoffPolicy

# About 300 messages an hour: small enough for milliseconds per run.
SMALL = Scenario(
    strategy="S0", outage_s=1_800, arrival_rate_per_s=300 / 3600, arrivals_after_recovery_s=1_800
)


def run(scenario: Scenario, policy: BackoffPolicy | None = None) -> Result:
    chosen = policy or BackoffPolicy(max_receive_count=scenario.max_receive_count)
    return simulate(scenario, strategies(chosen)[scenario.strategy])


@pytest.mark.parametrize("key", ["S0", "S1", "S2", "S3", "S4", "S5"])
def test_every_message_ends_delivered_dead_lettered_or_expired(key: str) -> None:
    # Given the small scenario with a half-hour outage, When it runs under each strategy
    result = run(replace(SMALL, strategy=key))
    # Then every message was delivered, dead-lettered or expired, and calls went out in the outage
    assert result.messages > 200
    assert result.delivered + result.dead_lettered + result.expired == result.messages
    assert result.calls >= result.delivered
    assert result.calls_during_outage > 0


def test_without_an_outage_each_message_takes_one_call_and_no_time() -> None:
    # Given the small scenario without an outage, When it runs
    result = run(replace(SMALL, outage_s=0))
    # Then each message took exactly one call and none was dead-lettered or expired
    assert result.calls == result.delivered == result.messages
    assert result.calls_per_message == 1.0
    assert result.dead_lettered == result.expired == 0
    # Nothing was stranded, so there is nothing to drain
    assert result.messages_during_outage == 0
    assert result.drain_s == 0.0


def test_without_backoff_a_long_outage_dead_letters_after_max_receive_count_calls() -> None:
    # Given S5 (the queue's 360 s visibility timeout), maxReceiveCount 3, a 10-hour outage
    scenario = replace(SMALL, strategy="S5", outage_s=36_000, max_receive_count=3)

    # When it runs
    result = run(scenario)

    # Then every message enqueued early enough got exactly 3 calls and was dead-lettered; the
    # ones that could not have used their 3 receives before recovery were delivered
    early = 36_000 - 3 * 360 - 60
    assert result.dead_lettered >= round(early * scenario.arrival_rate_per_s * 0.8)
    assert result.calls_during_outage <= 3 * result.messages_during_outage
    assert result.expired == 0


def test_the_final_attempt_rule_dead_letters_without_waiting() -> None:
    # Given additive jitter, maxReceiveCount 2, and an outage that outlasts both attempts
    scenario = replace(SMALL, outage_s=36_000, max_receive_count=2)
    backoff = run(scenario)
    fixed = run(replace(scenario, strategy="S5"))

    # Then messages reach the DLQ after one backoff (under 91 s) rather than after a further
    # visibility timeout: additive jitter drains the stranded set far sooner than S5's 2 x 360 s
    assert backoff.dead_lettered == pytest.approx(fixed.dead_lettered, rel=0.05)
    assert backoff.calls_during_outage == pytest.approx(
        2 * backoff.messages_during_outage, rel=0.05
    )
    assert backoff.drain_s < fixed.drain_s


def test_messages_expire_when_the_schedule_outlives_the_retention() -> None:
    # Given S1 (60, 120, 240, 480 s, ...) and a retention of 10 minutes, through a 1-hour outage
    result = run(replace(SMALL, strategy="S1", outage_s=3_600, retention_s=600))

    # Then stranded messages expire before they reach the DLQ (5 receives take 900 s)
    assert result.expired > 0.8 * result.messages_during_outage
    assert result.dead_lettered == 0


def test_the_in_flight_limit_refuses_receives_and_is_never_exceeded() -> None:
    # Given a queue that allows 40 messages in flight and a long backoff that keeps them there
    scenario = replace(SMALL, strategy="S1", outage_s=3_600, inflight_limit=40)

    # When it runs
    result = run(scenario)

    # Then receives were refused at the limit, the limit held, and nothing was lost
    assert result.inflight_breaches > 0
    assert result.peak_inflight <= 40
    assert result.delivered + result.dead_lettered + result.expired == result.messages


def test_after_recovery_deliveries_never_outrun_the_capacity() -> None:
    # Given a backlog of about 1,200 messages, no arrivals after recovery, and a downstream that
    # serves 1 call per second once it is back (no backoff: S5's 360 s, no dead-lettering)
    scenario = replace(
        SMALL,
        strategy="S5",
        outage_s=600,
        arrival_rate_per_s=2.0,
        arrivals_after_recovery_s=0,
        capacity_per_s=1.0,
        max_receive_count=1000,
    )
    result = run(scenario)

    # Then all were delivered, one per second at most (one token may be in the bucket at recovery)
    assert result.delivered == result.messages > 1_000
    assert result.drain_s >= result.delivered - 1
    # ...and the offered load was above the capacity at its peak: the downstream refused calls
    assert result.peak_over_capacity > 1.0


def test_outage_fails_without_retry_after_and_overload_answers_with_it() -> None:
    # Given a strategy that records what it is told, a small capacity and a backlog
    retry_afters: list[int | None] = []
    scenario = replace(SMALL, strategy="REC", capacity_per_s=0.5, arrival_rate_per_s=1.0)

    def record(_: int, __: str, retry_after: int | None, ___: random.Random) -> int:
        retry_afters.append(retry_after)
        return 30

    result = simulate(scenario, Strategy("REC", "recording", record))

    # Then every failure during the outage came without Retry-After, every refusal after it
    # with one of at least a second
    refusals = [seconds for seconds in retry_afters if seconds is not None]
    assert len(retry_afters) - len(refusals) == result.calls_during_outage > 0
    assert refusals
    assert min(refusals) >= 1


def test_a_scenario_is_a_pure_function_of_its_seed() -> None:
    # Given the same scenario twice and once with another seed, When each runs
    first = run(replace(SMALL, strategy="S2"))
    again = run(replace(SMALL, strategy="S2"))
    other = run(replace(SMALL, strategy="S2", seed=2))
    # Then the same seed gives the same result and another seed a different one
    assert first == again
    assert first.calls_per_minute != other.calls_per_minute


def test_every_strategy_sees_the_same_arrivals() -> None:
    # Given three strategies on the same scenario, When each runs
    # Then all saw the same number of messages
    assert len({run(replace(SMALL, strategy=key)).messages for key in ("S0", "S2", "S5")}) == 1


def test_the_strategy_must_match_the_scenario() -> None:
    # Given a scenario for S0, When S1 is simulated on it, Then that is refused
    with pytest.raises(ValueError, match="scenario is for S0"):
        simulate(SMALL, strategies(BackoffPolicy())["S1"])


def test_a_burst_is_enqueued_at_the_outages_start_on_top_of_the_arrivals() -> None:
    # Given 500 messages enqueued at once when the outage begins
    plain = run(replace(SMALL, strategy="S1"))
    burst = run(replace(SMALL, strategy="S1", burst_messages=500))

    # Then they are stranded with the others and all resolved
    assert burst.messages == plain.messages + 500
    assert burst.messages_during_outage == plain.messages_during_outage + 500
    assert burst.delivered + burst.dead_lettered + burst.expired == burst.messages
    # ...and without jitter they retry in lockstep: the busiest minute after recovery is far
    # above what the same arrivals produce without the burst
    assert burst.peak_over_capacity > 2 * plain.peak_over_capacity


def test_the_breaker_stops_receiving_during_an_outage_and_probes_once_a_minute() -> None:
    # Given a 10-hour outage with maxReceiveCount 3, per-message backoff and the breaker
    scenario = replace(SMALL, outage_s=36_000, max_receive_count=3)
    per_message = run(scenario)
    breaker = run(replace(scenario, strategy="CB"))

    # Then per-message backoff dead-letters most of the stranded messages...
    assert per_message.stranded_dead_lettered > 0.9 * per_message.messages_during_outage
    # ...and the breaker at most 0.1 % (the few received before it opened have spent up to 3
    # receives): it opened once, and spent one probe a minute plus the calls that opened it
    assert breaker.stranded_dead_lettered <= 0.001 * breaker.messages_during_outage
    assert breaker.delivered + breaker.dead_lettered == breaker.messages
    assert breaker.breaker_trips == 1
    assert breaker.breaker_probes == pytest.approx(600, abs=2)
    assert breaker.calls_during_outage - breaker.breaker_probes <= 20
    assert breaker.breaker_open_s == pytest.approx(36_000, abs=120)


def test_after_an_outage_the_breaker_drains_within_twice_the_capacity() -> None:
    # Given a backlog of about 7,000 messages (2/s for an hour) and a downstream of 5/s
    scenario = replace(SMALL, strategy="CB", outage_s=3_600, arrival_rate_per_s=2.0)

    # When the breaker half-opens after the outage
    result = run(scenario)

    # Then no minute after recovery saw more than twice the capacity, and the backlog drained
    # at no less than 80 % of what the capacity leaves beside the arrivals (2/s of 5/s)
    assert result.peak_over_capacity <= 2.0
    spare_per_s = scenario.capacity_per_s - scenario.arrival_rate_per_s
    assert result.drain_s <= result.messages_during_outage / spare_per_s / 0.8
    assert result.dead_lettered == 0
    assert result.breaker_half_open_s > 0


def test_a_partial_outage_does_not_trip_the_breaker() -> None:
    # Given half of the calls failing for an hour
    scenario = replace(SMALL, outage_s=3_600, failure_rate=0.5)
    breaker = run(replace(scenario, strategy="CB"))
    per_message = run(scenario)

    # Then the breaker never opened, and the healthy half flowed as without it
    assert breaker.breaker_trips == 0
    assert breaker.breaker_open_s == 0
    assert breaker.calls_during_outage == pytest.approx(per_message.calls_during_outage, rel=0.1)
    assert breaker.delivered == per_message.delivered == breaker.messages
    # ...and the failures really happened: about half of the calls in the outage failed
    assert per_message.calls_during_outage > 1.5 * per_message.messages_during_outage


def test_a_mapping_slow_to_follow_the_breaker_costs_receives_not_calls() -> None:
    # Given the breaker through a 10-hour outage, with its changes to the mapping taking effect
    # two minutes after it decides
    scenario = replace(SMALL, strategy="CB", outage_s=36_000)
    prompt = run(scenario)
    slow = run(replace(scenario, breaker_actuation_delay_s=120))

    # Then the pollers went on receiving for those minutes, and the function failed those
    # records without calling the downstream: the same calls, nothing dead-lettered
    assert prompt.short_circuited == 0
    assert slow.short_circuited > 0
    assert slow.calls_during_outage == prompt.calls_during_outage
    assert slow.stranded_dead_lettered == 0
    # ...and half-open waited for the mapping to poll before closing: no wave after recovery
    assert slow.peak_over_capacity <= 2.0
    assert slow.delivered == slow.messages


def test_one_controller_spends_at_most_one_control_plane_request_a_second() -> None:
    # Given the breaker through a 10-hour outage, with its changes taking a minute to land
    scenario = replace(SMALL, strategy="CB", outage_s=36_000, breaker_actuation_delay_s=60)
    result = run(scenario)
    # Then every request was one of: an update of the mapping, its confirming read once it
    # landed, or a probe minute's read; never more than one in any second, none refused
    assert result.mapping_updates > 0
    assert result.control_plane_requests == 2 * result.mapping_updates + result.breaker_probes
    assert result.control_plane_peak_per_s == 1
    assert result.control_plane_throttled == 0
    assert result.stranded_dead_lettered == 0


def test_an_account_short_of_control_plane_budget_delays_the_breaker_not_the_messages() -> None:
    # Given the account's other callers using 14.99 of its 15 requests a second (less is
    # left than the one a probe minute the open breaker reads)
    scenario = replace(SMALL, strategy="CB", outage_s=3_600, breaker_actuation_delay_s=60)
    calm = run(scenario)
    crowded = run(replace(scenario, control_plane_background_rps=14.99))
    # Then some of the controller's requests were refused (TooManyRequestsException) and
    # retried, each retry counted, and still nothing was dead-lettered
    assert calm.control_plane_throttled == 0
    assert crowded.control_plane_throttled > 0
    assert crowded.control_plane_requests == (
        2 * crowded.mapping_updates + crowded.breaker_probes + crowded.control_plane_throttled
    )
    assert crowded.stranded_dead_lettered == 0
    assert crowded.delivered == crowded.messages
