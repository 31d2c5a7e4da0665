"""SQS + Lambda's event source mapping + a downstream that fails for a while, on the DES core.

Model, per scenario (every number a field of Scenario):
- Arrivals: a Poisson process at `arrival_rate_per_s` from t = 0 (the outage's start) until
  `arrivals_after_recovery_s` after the outage ends, plus `burst_messages` enqueued at t = 0.
  Each message expires `retention_s` after it was first enqueued, wherever it is (SQS counts
  retention from the original enqueue time).
- The queue hands out visible messages oldest first. A message received `max_receive_count`
  times already is moved to the dead-letter queue by its next receive instead of being delivered
  (SQS's redrive policy). Received and not yet deleted means in flight, also while waiting out a
  visibility timeout; at `inflight_limit` (120,000 for a standard queue) ReceiveMessage is
  refused (a breach) and the poller retries after `over_limit_retry_s`.
- The event source mapping: `concurrency` pollers (ScalingConfig.MaximumConcurrency), each
  receiving up to `batch_size` visible messages (no batching window) and invoking the function,
  which calls the downstream once per record, one after another, `call_s` each, after
  `invocation_overhead_s`. A poller with nothing to receive waits (long polling) and is woken by
  the next visible message. Lambda's scaling of pollers up and down is not modelled: the
  concurrency is always available, the worst case for the downstream.
- The downstream: during the outage [0, outage_s) every call fails (503, no Retry-After), or
  a fraction `failure_rate` of them (a partial outage). Then, and for the calls a partial
  outage lets through, it serves `capacity_per_s` calls per second (a token bucket holding one
  second's worth) and answers 429 with Retry-After (the seconds until its next token, at least
  1) beyond that.
- A failed record gets the strategy's visibility timeout, set right after its call
  (ChangeMessageVisibility, which also limits it to 12 hours after the receive); a strategy
  without one (S5) leaves the queue's `queue_visibility_timeout_s`, counted from the receive.
  Successes are deleted with one DeleteMessageBatch per invocation.
- A strategy with the circuit breaker (benchmarks.breaker) adds the mapping-level policy: while
  it is open no poller receives (a probe call per minute, counted as a downstream call); while
  it is half-open the pollers are limited to its concurrency and every call waits for its paced
  slot (the function waiting, inside its 60 s timeout: a record whose slot falls beyond 57 s
  after the receive is failed without a call, as the function's deadline rule does). The
  breaker learns an invocation's outcomes when it ends. Its decisions about the mapping (enabled
  or not, its concurrency) take effect `breaker_actuation_delay_s` later: the time an
  UpdateEventSourceMapping takes to reach the pollers; the pace acts at once (it is the
  function's own code).
- Lambda's control plane, as one controller outside the data path spends it: every change of
  the mapping is one UpdateEventSourceMapping and, when it has landed, one
  GetEventSourceMapping to confirm it; every probe while open reads the mapping once. The
  account shares `control_plane_budget_per_s` (15, Lambda's quota) with its other callers,
  who use `control_plane_background_rps` of it; a refused request (TooManyRequestsException)
  is retried after a jittered 1-2 s, and the actuation delay counts from the accepted one. An
  update while the last one has not landed would be refused (ResourceConflictException): the
  controller waits for it to land, then sends the latest decision. The controller paces itself
  to one request a second (a request waits for the next second of the clock it has not used).
- SQS API calls, the cost proxy: SendMessage per arrival, ReceiveMessage per receive (including
  idle long polls, one per poller per 20 s), ChangeMessageVisibility per failed record,
  DeleteMessageBatch per invocation with a success.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from benchmarks.breaker import Breaker, BreakerPolicy, BreakerState
from benchmarks.des import Progress, Simulation
from benchmarks.strategies import Strategy

DAY_S = 86_400
# SQS refuses to keep a message invisible longer than this after its receive.
_MAX_VISIBILITY_S = 43_200
_LONG_POLL_S = 20.0
# The function's timeout (60 s) less the 3 s it keeps in reserve: the last moment a call starts.
_INVOCATION_DEADLINE_S = 57.0

_PENDING, _DELIVERED, _DEAD_LETTERED, _EXPIRED = range(4)


@dataclass(frozen=True)
class Scenario:
    strategy: str
    outage_s: float
    max_receive_count: int = 10
    retention_s: float = 4 * DAY_S
    # 100,000 messages a day: a 24-hour outage strands 100,000 of them.
    arrival_rate_per_s: float = 100_000 / DAY_S
    arrivals_after_recovery_s: float = 3_600.0
    # Messages enqueued all at once when the outage begins (a batch job, a replay), on top of
    # the Poisson arrivals: they fail together, the case where jitter should matter most.
    burst_messages: int = 0
    # The fraction of calls that fail during the outage: 1.0 is a full outage.
    failure_rate: float = 1.0
    # How long the breaker's changes to the mapping take to reach its pollers.
    breaker_actuation_delay_s: float = 0.0
    # Lambda's control-plane quota for the account, and what its other callers use of it.
    control_plane_budget_per_s: float = 15.0
    control_plane_background_rps: float = 0.0
    capacity_per_s: float = 5.0
    concurrency: int = 10
    batch_size: int = 10
    call_s: float = 0.05
    invocation_overhead_s: float = 0.01
    queue_visibility_timeout_s: float = 360.0
    inflight_limit: int = 120_000
    over_limit_retry_s: float = 10.0
    seed: int = 1


@dataclass(frozen=True)
class Result:
    scenario: Scenario
    messages: int
    messages_during_outage: int
    calls: int
    calls_during_outage: int
    calls_per_minute: list[int]
    delivered: int
    dead_lettered: int
    # Of the messages enqueued during the outage.
    stranded_dead_lettered: int
    expired: int
    inflight_breaches: int
    peak_inflight: int
    sqs_api_calls: int
    drain_s: float
    # Time from enqueue to delivery of the messages enqueued during the outage, sorted.
    added_latencies_s: list[float]
    breaker_trips: int = 0
    breaker_probes: int = 0
    breaker_open_s: float = 0.0
    breaker_half_open_s: float = 0.0
    deadline_skips: int = 0
    short_circuited: int = 0
    # The controller's requests to Lambda's control plane: all, refused, the most in a second.
    control_plane_requests: int = 0
    control_plane_throttled: int = 0
    control_plane_peak_per_s: int = 0
    # UpdateEventSourceMapping requests accepted: the mapping's changes.
    mapping_updates: int = 0

    @property
    def calls_per_message(self) -> float:
        return self.calls / self.messages if self.messages else 0.0

    @property
    def calls_per_message_during_outage(self) -> float:
        stranded = self.messages_during_outage
        return self.calls_during_outage / stranded if stranded else 0.0

    @property
    def peak_over_capacity(self) -> float:
        """The busiest minute after recovery, in calls, over what the downstream can serve."""
        first_minute = int(self.scenario.outage_s // 60)
        after = self.calls_per_minute[first_minute:]
        return max(after, default=0) / (self.scenario.capacity_per_s * 60)

    @property
    def stranded_dead_lettered_fraction(self) -> float:
        stranded = self.messages_during_outage
        return self.stranded_dead_lettered / stranded if stranded else 0.0

    @property
    def calls_per_outage_minute(self) -> float:
        minutes = self.scenario.outage_s / 60
        return self.calls_during_outage / minutes if minutes else 0.0

    def added_latency_quantile_s(self, quantile: float) -> float:
        latencies = self.added_latencies_s
        if not latencies:
            return 0.0
        return latencies[min(len(latencies) - 1, int(quantile * len(latencies)))]


class _OutageRun:
    def __init__(self, scenario: Scenario, strategy: Strategy) -> None:
        self.s = scenario
        self.visibility = strategy.visibility
        self.sim = Simulation()
        self.rng = random.Random(f"{scenario.seed}-{scenario.strategy}")
        # Failures draw from their own source too: a partial outage fails the same calls (by order)
        # whatever the strategy.
        self.failure_rng = random.Random(f"{scenario.seed}-failures")
        self.breaker = (
            Breaker(BreakerPolicy(), scenario.concurrency, scenario.batch_size)
            if strategy.breaker
            else None
        )
        self.deadline_skips = 0
        self.short_circuited = 0
        self.control_plane = _ControlPlane(
            scenario.control_plane_budget_per_s - scenario.control_plane_background_rps,
            scenario.control_plane_budget_per_s,
            random.Random(f"{scenario.seed}-control-plane"),
        )
        # When the mapping's last update lands; a decision before then waits for it.
        self.update_lands_at = 0.0
        self.update_waiting = False
        self.mapping_updates = 0
        # (effective from, concurrency) of the mapping as the breaker set it, oldest first.
        self.mapping_concurrency: deque[tuple[float, int]] = deque([(0.0, scenario.concurrency)])
        self.decided_concurrency = scenario.concurrency
        # Arrivals have their own source, so every strategy sees the same messages.
        self.arrival_rng = random.Random(f"{scenario.seed}-arrivals")
        self.arrivals_end_s = scenario.outage_s + scenario.arrivals_after_recovery_s
        self.enqueued_at: list[float] = []
        self.receive_counts: list[int] = []
        self.fates = bytearray()
        self.resolved_at: list[float] = []
        self.visible: deque[int] = deque()
        # Pollers with nothing to do: long-polling an empty queue, or held back by the breaker.
        self.idle_pollers = scenario.concurrency
        self.idle_poller_s = 0.0
        self.idle_accounted_at = 0.0
        self.inflight = 0
        self.peak_inflight = 0
        self.inflight_breaches = 0
        self.tokens = scenario.capacity_per_s
        # From 0, not from recovery: a partial outage lets calls through to the same capacity.
        self.tokens_at = 0.0
        self.calls_per_minute: list[int] = []
        self.calls_during_outage = 0
        self.receives = 0
        self.visibility_changes = 0
        self.delete_batches = 0

    def run(self, progress: Progress | None) -> Result:
        for _ in range(self.s.burst_messages):
            self.sim.schedule(0.0, self._enqueue)
        self.sim.schedule(self.arrival_rng.expovariate(self.s.arrival_rate_per_s), self._arrive)
        end_s = self.sim.run(progress)
        self._account_idle(end_s)
        if self.breaker is not None:
            self.breaker.finish(end_s)
        return self._result()

    def _account_idle(self, now: float) -> None:
        # Idle pollers long-poll (one ReceiveMessage per 20 s) only while the mapping is enabled.
        if self.breaker is None or self._mapping_allows(now) > 0:
            self.idle_poller_s += self.idle_pollers * (now - self.idle_accounted_at)
        self.idle_accounted_at = now

    def _allowed_pollers(self) -> int:
        return self.s.concurrency if self.breaker is None else self._mapping_allows(self.sim.now)

    def _mapping_allows(self, now: float) -> int:
        """The mapping's concurrency in force at `now`: the breaker's, once it has taken effect."""
        history = self.mapping_concurrency
        while len(history) > 1 and history[1][0] <= now:
            history.popleft()
        return history[0][1]

    def _breaker_decided(self, now: float) -> None:
        """Hands the breaker's concurrency to the mapping through the control plane: one
        UpdateEventSourceMapping once accepted (the quota) and once the last update has landed
        (no conflict), effective after the actuation delay, then one read to confirm it."""
        assert self.breaker is not None
        wanted = self.breaker.concurrency()
        if wanted == self.decided_concurrency:
            return
        if now < self.update_lands_at:
            if not self.update_waiting:
                self.update_waiting = True
                self.sim.schedule(self.update_lands_at, self._update_landed)
            return
        accepted_at = self.control_plane.request(now)
        self.mapping_updates += 1
        self.decided_concurrency = wanted
        delay_s = self.s.breaker_actuation_delay_s
        self._account_idle(now)
        effective_at = accepted_at + delay_s
        self.update_lands_at = effective_at
        self.mapping_concurrency.append((effective_at, wanted))
        # The controller reads the mapping when the change has landed.
        self.control_plane.request(effective_at)
        if effective_at > now:
            self.sim.schedule(effective_at, self._wake_pollers)
        else:
            self._wake_pollers()

    def _update_landed(self, _: None) -> None:
        """The update in progress has landed: the latest decision goes out now, if it differs."""
        self.update_waiting = False
        if self.breaker is not None:
            self._breaker_decided(self.sim.now)

    # Events -------------------------------------------------------------------------------

    def _arrive(self, _: None) -> None:
        self._enqueue(None)
        following = self.sim.now + self.arrival_rng.expovariate(self.s.arrival_rate_per_s)
        if following < self.arrivals_end_s:
            self.sim.schedule(following, self._arrive)

    def _enqueue(self, _: None) -> None:
        self.enqueued_at.append(self.sim.now)
        self.receive_counts.append(0)
        self.fates.append(_PENDING)
        self.resolved_at.append(math.inf)
        self._make_visible(len(self.enqueued_at) - 1)

    def _reappear(self, message: int) -> None:
        self.inflight -= 1
        if self.sim.now >= self.enqueued_at[message] + self.s.retention_s:
            self._resolve(message, _EXPIRED, self.sim.now)
        else:
            self._make_visible(message)

    def _make_visible(self, message: int) -> None:
        self.visible.append(message)
        if self.idle_pollers and (
            self.breaker is None
            or self.s.concurrency - self.idle_pollers < self._mapping_allows(self.sim.now)
        ):
            self._account_idle(self.sim.now)
            self.idle_pollers -= 1
            self.sim.schedule(self.sim.now, self._poll)

    def _wake_pollers(self, _: object = None) -> None:
        allowed = self._allowed_pollers()
        woken = min(
            self.idle_pollers,
            len(self.visible),
            allowed - (self.s.concurrency - self.idle_pollers),
        )
        if woken > 0:
            self._account_idle(self.sim.now)
            self.idle_pollers -= woken
            for _ in range(woken):
                self.sim.schedule(self.sim.now, self._poll)

    def _idle(self) -> None:
        self._account_idle(self.sim.now)
        self.idle_pollers += 1

    def _poll(self, _: object = None) -> None:
        s = self.s
        now = self.sim.now
        breaker = self.breaker
        if not self.visible or (breaker is not None and not self._breaker_lets_poll(now)):
            self._idle()
            return
        if self.inflight >= s.inflight_limit:
            self.inflight_breaches += 1
            self.sim.schedule(now + s.over_limit_retry_s, self._poll)
            return
        self.receives += 1
        call_at = now + s.invocation_overhead_s
        delivered = 0
        taken = 0
        # Locals: this loop runs once per receive of every message, millions of times a run.
        visible = self.visible
        enqueued_at = self.enqueued_at
        receive_counts = self.receive_counts
        retention_s = s.retention_s
        max_receive_count = s.max_receive_count
        batch_size = s.batch_size
        room = s.inflight_limit - self.inflight
        outcomes: list[tuple[float, int | None]] = []
        while visible and taken < batch_size and taken < room:
            message = visible.popleft()
            if now >= enqueued_at[message] + retention_s:
                self._resolve(message, _EXPIRED, now)
                continue
            if receive_counts[message] >= max_receive_count:
                self._resolve(message, _DEAD_LETTERED, now)
                continue
            receive_counts[message] += 1
            taken += 1
            if breaker is not None:
                slot = self._paced_slot(message, now, call_at)
                if slot is None:
                    continue
                call_at = slot
            retry_after = self._call(call_at)
            call_at += s.call_s
            outcomes.append((call_at, retry_after))
            if retry_after == 0:
                delivered += 1
                self._resolve(message, _DELIVERED, call_at)
            else:
                self.inflight += 1
                self._reschedule(message, now, call_at, retry_after)
        self.peak_inflight = max(self.peak_inflight, self.inflight)
        if delivered:
            self.delete_batches += 1
        # The breaker learns the invocation's outcomes when it ends; without one they are unused.
        after = self._poll if breaker is None else self._finish_invocation
        self.sim.schedule(call_at, after, outcomes)

    def _breaker_lets_poll(self, now: float) -> bool:
        breaker = self.breaker
        assert breaker is not None
        breaker.tick(now)
        self._breaker_decided(now)
        return self.s.concurrency - self.idle_pollers <= self._mapping_allows(now)

    def _paced_slot(self, message: int, received_at: float, earliest_s: float) -> float | None:
        """The call's time under the breaker's pace, or None when it falls past the deadline."""
        breaker = self.breaker
        assert breaker is not None
        if breaker.state is BreakerState.OPEN:
            # Open, but the mapping has not stopped yet: the function knows (the mapping's
            # State reads Disabling) and fails the record without calling the downstream.
            self.short_circuited += 1
        else:
            slot = breaker.reserve_call(earliest_s)
            if slot + self.s.call_s <= received_at + _INVOCATION_DEADLINE_S:
                return slot
            # The function's deadline rule: failed without a call, rescheduled by the strategy.
            self.deadline_skips += 1
        self.inflight += 1
        self._reschedule(message, received_at, earliest_s, None)
        return None

    def _finish_invocation(self, outcomes: list[tuple[float, int | None]]) -> None:
        """The breaker learns the invocation's outcomes when it ends, then the poller goes on."""
        breaker = self.breaker
        assert breaker is not None
        now = self.sim.now
        failures = 0
        for at, retry_after in outcomes:
            breaker.record_call(at, retry_after != 0, retry_after or None)
            failures += retry_after is None
        was_open = breaker.state is BreakerState.OPEN
        self._account_idle(now)
        breaker.record_invocation(now, len(outcomes), failures)
        self._breaker_decided(now)
        if not was_open and breaker.state is BreakerState.OPEN:
            self.sim.schedule(now + breaker.policy.probe_interval_s, self._probe)
        self._poll(None)

    def _probe(self, _: None) -> None:
        breaker = self.breaker
        assert breaker is not None
        now = self.sim.now
        if breaker.state is not BreakerState.OPEN:
            return
        succeeded = self._call(now) == 0
        # The probe reads the mapping's state: one control-plane request a probe minute.
        self.control_plane.request(now)
        self._account_idle(now)
        breaker.probe(now, succeeded)
        self._breaker_decided(now)
        if not succeeded:
            self.sim.schedule(now + breaker.policy.probe_interval_s, self._probe)

    # The downstream and the consumer ---------------------------------------------------------

    def _call(self, at: float) -> int | None:
        """One downstream call: 0 on success, else the Retry-After (None when there is none)."""
        minute = int(at // 60)
        per_minute = self.calls_per_minute
        if minute >= len(per_minute):
            per_minute.extend([0] * (minute + 1 - len(per_minute)))
        per_minute[minute] += 1
        s = self.s
        if at < s.outage_s:
            self.calls_during_outage += 1
            if s.failure_rate >= 1.0 or self.failure_rng.random() < s.failure_rate:
                return None
        if at > self.tokens_at:
            self.tokens = min(
                s.capacity_per_s, self.tokens + (at - self.tokens_at) * s.capacity_per_s
            )
            self.tokens_at = at
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0
        return max(1, math.ceil((1.0 - self.tokens) / s.capacity_per_s))

    def _reschedule(
        self, message: int, received_at: float, failed_at: float, retry_after: int | None
    ) -> None:
        visibility = self.visibility(
            self.receive_counts[message], f"{self.s.seed}-{message}", retry_after, self.rng
        )
        if visibility is None:
            visible_at = received_at + self.s.queue_visibility_timeout_s
        else:
            self.visibility_changes += 1
            visible_at = failed_at + min(visibility, _MAX_VISIBILITY_S - (failed_at - received_at))
        expires_at = self.enqueued_at[message] + self.s.retention_s
        self.sim.schedule(max(min(visible_at, expires_at), self.sim.now), self._reappear, message)

    def _resolve(self, message: int, fate: int, at: float) -> None:
        self.fates[message] = fate
        self.resolved_at[message] = at

    # Metrics ------------------------------------------------------------------------------

    def _result(self) -> Result:
        s = self.s
        stranded = [i for i, enqueued in enumerate(self.enqueued_at) if enqueued < s.outage_s]
        last_resolved = max((self.resolved_at[i] for i in stranded), default=s.outage_s)
        latencies = sorted(
            self.resolved_at[i] - self.enqueued_at[i]
            for i in stranded
            if self.fates[i] == _DELIVERED
        )
        idle_long_polls = int(self.idle_poller_s / _LONG_POLL_S)
        return Result(
            scenario=s,
            messages=len(self.enqueued_at),
            messages_during_outage=len(stranded),
            calls=sum(self.calls_per_minute),
            calls_during_outage=self.calls_during_outage,
            calls_per_minute=self.calls_per_minute,
            delivered=self.fates.count(_DELIVERED),
            dead_lettered=self.fates.count(_DEAD_LETTERED),
            stranded_dead_lettered=sum(1 for i in stranded if self.fates[i] == _DEAD_LETTERED),
            expired=self.fates.count(_EXPIRED),
            inflight_breaches=self.inflight_breaches,
            peak_inflight=self.peak_inflight,
            sqs_api_calls=len(self.enqueued_at)
            + self.receives
            + self.inflight_breaches
            + idle_long_polls
            + self.visibility_changes
            + self.delete_batches,
            drain_s=max(0.0, last_resolved - s.outage_s),
            added_latencies_s=latencies,
            **self._breaker_fields(),
        )

    def _breaker_fields(self) -> dict[str, Any]:
        breaker = self.breaker
        if breaker is None:
            return {}
        counters = breaker.counters
        return {
            "breaker_trips": counters.trips,
            "breaker_probes": counters.probes,
            "breaker_open_s": counters.open_s,
            "breaker_half_open_s": counters.half_open_s,
            "deadline_skips": self.deadline_skips,
            "short_circuited": self.short_circuited,
            "control_plane_requests": self.control_plane.requests,
            "control_plane_throttled": self.control_plane.throttled,
            "control_plane_peak_per_s": self.control_plane.peak_per_s,
            "mapping_updates": self.mapping_updates,
        }


class _ControlPlane:
    """The account's control-plane budget as the controller meets it: a token bucket refilled
    at what the other callers leave (`rate_per_s`), holding `capacity` tokens. Requests are
    made in time order per caller but may be booked a little ahead (a confirmation read when an
    update lands): the bucket is drawn on at each request's own time."""

    def __init__(self, rate_per_s: float, capacity: float, rng: random.Random) -> None:
        self.rate_per_s = max(0.0, rate_per_s)
        self.capacity = capacity
        self.rng = rng
        self.tokens = capacity
        self.at = 0.0
        self.requests = 0
        self.throttled = 0
        self.per_second: dict[int, int] = {}

    @property
    def peak_per_s(self) -> int:
        return max(self.per_second.values(), default=0)

    def request(self, at: float) -> float:
        """Send one request at `at` or, the controller pacing itself to one request a second
        of the clock, at the start of its next free second; retried while refused; when it
        was accepted."""
        while True:
            second = int(at)
            while second in self.per_second:
                second += 1
            at = max(at, float(second))
            self.requests += 1
            self.per_second[second] = 1
            if at > self.at:
                self.tokens = min(self.capacity, self.tokens + (at - self.at) * self.rate_per_s)
                self.at = at
            if self.tokens >= 1.0:
                self.tokens -= 1.0
                return at
            self.throttled += 1
            if self.rate_per_s <= 0:
                raise RuntimeError("the account's other callers use all of its control plane")
            # TooManyRequestsException: retried after a jittered 1-2 s.
            at += 1.0 + self.rng.random()


def simulate(
    scenario: Scenario, strategy: Strategy, progress: Callable[[float], None] | None = None
) -> Result:
    """Run one scenario to the end: every message delivered, dead-lettered or expired."""
    if scenario.strategy != strategy.key:
        raise ValueError(f"scenario is for {scenario.strategy}, strategy is {strategy.key}")
    return _OutageRun(scenario, strategy).run(progress)
