"""`make bench-inflight`: SQS's in-flight limit at 1M and 10M messages a day, through 24 hours of
partial and full outages, with the event source mapping's scaling.

A message waiting out its backoff is in flight: received, neither deleted nor visible again. SQS
allows 120,000 in flight per standard queue (20,000 per FIFO queue); beyond that ReceiveMessage
fails with OverLimit, and the pollers try again later. This model tracks counts, not messages
(benchmarks.sqs_outage follows each message, too slow for 10 million a day), in steps of one
second:
- arrivals at a constant rate for `hours` hours, while a fraction `failure_rate` of the
  downstream's calls fail (1.0: a full outage); then the downstream is healthy and the backlog
  drains;
- the queue's messages by receive count; a receive takes from every count alike; a message
  received MaxReceiveCount times goes to the dead-letter queue at its next receive;
- a failed delivery waits out the function's backoff (shared.backoff: 2^n + base + a
  uniform jitter, capped), spread evenly over its jitter; the final attempt's is 0;
- the event source mapping: MaximumConcurrency invocations at most (and Lambda's 1,250),
  starting at 5 and adding up to 300 a minute while messages wait, each invocation taking
  BatchSize records, DeliveryConcurrency at a time, `call_s` per call;
- the circuit breaker (on by default): a failure ratio of at least its trip ratio (0.9) disables
  the mapping `breaker_trip_s` after the outage begins (its minute of evidence and the time the
  disable takes to reach the pollers) until a probe finds the downstream back; a partial outage
  never trips it;
- receives that would take the in-flight count past the limit fail (OverLimit events, 10
  messages a receive, at most one per poller per `over_limit_retry_s`, when it tries again).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict, dataclass, replace

import numpy as np

from benchmarks.breaker import BreakerPolicy
from shared.backoff import BackoffPolicy, delay_range_seconds, is_final_attempt

DAY_S = 86_400
STANDARD_INFLIGHT_LIMIT = 120_000
FIFO_INFLIGHT_LIMIT = 20_000
# Lambda's SQS scaling: 5 concurrent invocations at first, up to 300 more a minute, 1,250 at most.
INITIAL_CONCURRENCY = 5
SCALE_UP_PER_S = 300 / 60
LAMBDA_MAX_CONCURRENCY = 1_250
# The circuit breaker trips at this share of failed calls.
BREAKER_TRIP_RATIO = BreakerPolicy().trip_failure_ratio


@dataclass(frozen=True)
class Scenario:
    messages_per_day: int
    failure_rate: float
    hours: float = 24.0
    breaker: bool = True
    # The template's defaults (a standard queue's BatchSize auto: tests hold them together).
    maximum_concurrency: int = 10
    batch_size: int = 100
    delivery_concurrency: int = 50
    max_receive_count: int = 10
    backoff_base_s: int = 30
    backoff_jitter_s: int = 60
    backoff_max_s: int = 43_200
    call_s: float = 0.1
    invocation_overhead_s: float = 0.02
    inflight_limit: int = STANDARD_INFLIGHT_LIMIT
    over_limit_retry_s: float = 10.0
    breaker_trip_s: float = 120.0
    breaker_probe_s: float = 60.0
    # How long after the arrivals end the run may go on draining.
    drain_limit_s: float = DAY_S

    @property
    def policy(self) -> BackoffPolicy:
        return BackoffPolicy(
            base_seconds=self.backoff_base_s,
            jitter_seconds=self.backoff_jitter_s,
            max_seconds=self.backoff_max_s,
            max_receive_count=self.max_receive_count,
        )


@dataclass(frozen=True)
class Result:
    scenario: Scenario
    peak_inflight: int
    peak_inflight_at_h: float
    over_limit_events: int
    delivered: int
    dead_lettered: int
    left_on_queue: int
    peak_concurrency: int


def simulate(scenario: Scenario) -> Result:
    """Run the scenario until the backlog has drained, or `drain_limit_s` after the arrivals."""
    return _Run(scenario).run()


class _Run:
    def __init__(self, scenario: Scenario) -> None:
        s = self.s = scenario
        policy = s.policy
        m = s.max_receive_count
        self.arrivals_end = int(s.hours * 3600)
        # Each count's delay range, and whether its failure is the final attempt.
        self.ranges = [delay_range_seconds(n, policy) for n in range(m + 1)]
        self.final = [is_final_attempt(n, policy) for n in range(m + 1)]
        self.horizon = max(high for _, high in self.ranges) + 2
        # visible[n]: visible messages received n times; returning[n, t % horizon]: messages
        # received n times that become visible again at second t.
        self.visible = np.zeros(m + 1)
        self.returning = np.zeros((m + 1, self.horizon))
        self.rate_per_s = s.messages_per_day / DAY_S
        self.batch_s = (
            s.invocation_overhead_s + math.ceil(s.batch_size / s.delivery_concurrency) * s.call_s
        )
        self.cap = min(s.maximum_concurrency, LAMBDA_MAX_CONCURRENCY)
        self.concurrency = float(min(INITIAL_CONCURRENCY, self.cap))
        self.peak_concurrency = self.concurrency
        self.breaker_trips = s.breaker and s.failure_rate >= BREAKER_TRIP_RATIO
        self.waiting = 0.0
        self.over_limit = 0.0
        self.delivered = 0.0
        self.dead_lettered = 0.0

    def run(self) -> Result:
        s = self.s
        peak_inflight, peak_at = 0.0, 0
        for t in range(self.arrivals_end + int(s.drain_limit_s)):
            inflight = self._step(t)
            if inflight > peak_inflight:
                peak_inflight, peak_at = inflight, t
            if t >= self.arrivals_end and self.visible.sum() < 0.5 and self.waiting < 0.5:
                break
        return Result(
            scenario=s,
            peak_inflight=round(peak_inflight),
            peak_inflight_at_h=round(peak_at / 3600, 2),
            over_limit_events=round(self.over_limit),
            delivered=round(self.delivered),
            dead_lettered=round(self.dead_lettered),
            left_on_queue=round(self.visible.sum() + self.waiting),
            peak_concurrency=round(self.peak_concurrency),
        )

    def _step(self, t: int) -> float:
        """One second: returns, arrivals, receives; the in-flight count at its end."""
        slot = t % self.horizon
        back = self.returning[:, slot]
        self.visible += back
        self.waiting -= back.sum()
        self.returning[:, slot] = 0.0
        if t < self.arrivals_end:
            self.visible[0] += self.rate_per_s
        backlog = self.visible.sum()
        if backlog <= 1e-9:
            self.concurrency = float(min(INITIAL_CONCURRENCY, self.cap))
            return self.waiting
        if self.breaker_trips and self.s.breaker_trip_s <= t < self._breaker_closes_at():
            return self.waiting
        return self.waiting + self._receive(t, backlog) * self.batch_s

    def _breaker_closes_at(self) -> float:
        # The first probe after the outage finds the downstream back.
        return self.arrivals_end + self.s.breaker_probe_s

    def _receive(self, t: int, backlog: float) -> float:
        """The pollers' receives of this second; returns how many messages they took."""
        s = self.s
        capacity = self.concurrency * s.batch_size / self.batch_s
        if backlog > capacity:
            self.concurrency = min(self.cap, self.concurrency + SCALE_UP_PER_S)
        self.peak_concurrency = max(self.peak_concurrency, self.concurrency)
        room = max(0.0, s.inflight_limit - self.waiting)
        wanted = min(backlog, capacity)
        if wanted > room + 0.5:
            # The receives beyond the limit are refused (10 messages a receive), the pollers'
            # refused receives at most once per retry interval each.
            self.over_limit += min(
                (wanted - room) / min(10, s.batch_size),
                self.concurrency / s.over_limit_retry_s,
            )
        if room < 0.5:
            return 0.0
        received = min(wanted, room)
        taken = self.visible * (received / backlog)
        self.visible -= taken
        m = s.max_receive_count
        self.dead_lettered += taken[m]
        failing = s.failure_rate if t < self.arrivals_end else 0.0
        for n in range(m):
            self.delivered += taken[n] * (1 - failing)
            failed = taken[n] * failing
            if failed > 0:
                self._fail(n + 1, failed, t)
        return received

    def _fail(self, attempt: int, failed: float, t: int) -> None:
        """The failed messages of this attempt wait out its backoff, spread over its jitter."""
        if self.final[attempt]:
            self.visible[attempt] += failed
            return
        low, high = self.ranges[attempt]
        width = high - low + 1
        start = (t + low) % self.horizon
        stop = start + width
        share = failed / width
        row = self.returning[attempt]
        if stop <= self.horizon:
            row[start:stop] += share
        else:
            row[start:] += share
            row[: stop - self.horizon] += share
        self.waiting += failed


def inflight_seconds_per_message(failure_rate: float, policy: BackoffPolicy) -> float:
    """A message's expected time in flight waiting out backoffs, when each attempt fails with
    probability `failure_rate`: the sum over attempts of P(reaching and failing it) x its mean
    delay (the final attempt's delay is 0)."""
    total = 0.0
    for attempt in range(1, policy.max_receive_count + 1):
        if is_final_attempt(attempt, policy):
            break
        low, high = delay_range_seconds(attempt, policy)
        total += failure_rate**attempt * (low + high) / 2
    return total


def limit_messages_per_day(failure_rate: float, policy: BackoffPolicy, limit: int) -> float:
    """The daily volume at which the messages waiting out backoffs fill the in-flight limit
    (Little's law: in flight = arrival rate x time in flight)."""
    seconds = inflight_seconds_per_message(failure_rate, policy)
    return math.inf if seconds == 0 else limit / seconds * DAY_S


SCENARIOS = [
    Scenario(messages_per_day=volume, failure_rate=rate, breaker=breaker)
    for volume in (1_000_000, 10_000_000)
    for rate, breaker in ((0.1, True), (0.5, True), (1.0, True), (1.0, False))
]


def table(results: list[Result]) -> str:
    lines = [
        "| messages a day | outage (24 h) | breaker | peak in flight | at, h | OverLimit events "
        "| delivered | dead-lettered | left | peak concurrency |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        s = r.scenario
        outage = "full" if s.failure_rate >= 1 else f"{s.failure_rate:.0%} of calls failing"
        lines.append(
            f"| {s.messages_per_day:,} | {outage} | {'on' if s.breaker else 'off'} "
            f"| {r.peak_inflight:,} | {r.peak_inflight_at_h} | {r.over_limit_events:,} "
            f"| {r.delivered:,} | {r.dead_lettered:,} | {r.left_on_queue:,} "
            f"| {r.peak_concurrency} |"
        )
    policy = SCENARIOS[0].policy
    lines += [
        "",
        "Where the limit lies (defaults: MaxReceiveCount 10, backoff 2^n + 30 + [0, 59] s): the "
        "daily volume at which messages waiting out backoffs reach the in-flight limit",
        "",
        "| calls failing | s in flight per message | standard (120,000) | FIFO (20,000) |",
        "|---|---|---|---|",
    ]
    for rate in (0.1, 0.5, 0.9, 1.0):
        seconds = inflight_seconds_per_message(rate, policy)
        lines.append(
            f"| {rate:.0%} | {seconds:,.0f} "
            f"| {limit_messages_per_day(rate, policy, STANDARD_INFLIGHT_LIMIT):,.0f} a day "
            f"| {limit_messages_per_day(rate, policy, FIFO_INFLIGHT_LIMIT):,.0f} a day |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    parser.add_argument(
        "--maximum-concurrency", type=int, default=10, help="ScalingConfig (default 10)"
    )
    args = parser.parse_args(argv)
    results = []
    for default in SCENARIOS:
        scenario = replace(default, maximum_concurrency=args.maximum_concurrency)
        print(
            f"inflight: {scenario.messages_per_day:,} a day, {scenario.failure_rate:.0%} failing, "
            f"breaker {'on' if scenario.breaker else 'off'}",
            file=sys.stderr,
            flush=True,
        )
        results.append(simulate(scenario))
    print(table(results))
    if args.json:
        print(json.dumps([asdict(result) for result in results], separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
