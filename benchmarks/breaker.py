"""A circuit breaker for the event source mapping, as the study models it.

It sees only what the consumer sees: each downstream call's outcome (success, a failure without
Retry-After, or an overload answer with Retry-After), each invocation's whole-batch failure,
and the clock. It decides what the mapping does:

- closed: the mapping polls at its MaximumConcurrency, nothing is paced (today's behaviour).
- open: the mapping is disabled (no receives, so the receive counts of waiting messages do not
  grow); one probe call every `probe_interval_s` tests the downstream. A probe that succeeds
  moves to half-open.
- half-open: the mapping polls again at a low concurrency and the calls are paced to a rate
  that rises while the downstream keeps up and falls when it answers with Retry-After
  (additive-increase / multiplicative-decrease, here multiplicative both ways so that it finds
  the capacity in a minute or two). The concurrency follows the rate, so that a batch is
  delivered well inside the function's timeout. When the pace has not held anything back for
  `close_after_s` of calls (the backlog is gone), the breaker closes.

Trip rule (closed or half-open -> open): within the last `window_s`, at least
`trip_whole_batch_failures` whole-batch failures and `trip_min_failures` failed calls, with
failures (without Retry-After) at least `trip_failure_ratio` of the calls. Overload answers
(Retry-After) never trip it: they mean the downstream is up and asks to slow down. A partial
outage (10 % or 50 % of calls failing) stays far below the ratio, so healthy traffic keeps
flowing while the per-message backoff handles the failures.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from enum import StrEnum


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


@dataclass(frozen=True)
class BreakerPolicy:
    window_s: float = 60.0
    trip_failure_ratio: float = 0.9
    trip_min_failures: int = 10
    trip_whole_batch_failures: int = 3
    probe_interval_s: float = 60.0
    # Low enough to be harmless to a downstream that is barely back (3 pollers at first), high
    # enough that a 1-minute outage drains as fast as the best per-message strategy.
    half_open_rate_per_s: float = 3.0
    # The function's timeout is 60 s: at the lowest pace and concurrency, two batches of 10
    # must still fit (2 x 10 / 0.5 = 40 s).
    min_rate_per_s: float = 0.5
    # Chosen by the study (make bench-backoff): x1.1 up and x0.9 down every 10 s drains a
    # backlog at about 94 % of the capacity with the busiest minute near 1.2 x the capacity.
    increase_factor: float = 1.1
    decrease_factor: float = 0.9
    adjust_every_s: float = 10.0
    close_after_s: float = 60.0
    # Concurrency while half-open: enough pollers to keep `horizon_s` of paced calls reserved
    # (one poller per call per second with batches of 10).
    horizon_s: float = 10.0
    # ScalingConfig.MaximumConcurrency cannot be set below 2.
    min_concurrency: int = 2


@dataclass
class BreakerCounters:
    trips: int = 0
    probes: int = 0
    open_s: float = 0.0
    half_open_s: float = 0.0


class Breaker:
    def __init__(self, policy: BreakerPolicy, max_concurrency: int, batch_size: int) -> None:
        self.policy = policy
        self.max_concurrency = max_concurrency
        self.batch_size = batch_size
        self.state = BreakerState.CLOSED
        self.state_since = 0.0
        self.rate_per_s = math.inf
        self.next_slot_s = 0.0
        self.counters = BreakerCounters()
        # (time, failed without Retry-After) per call, and the times of whole-batch failures.
        self._calls: deque[tuple[float, bool]] = deque()
        self._failures_in_window = 0
        self._whole_batch_failures: deque[float] = deque()
        self._next_adjust_s = 0.0
        self._held_back_since_adjust = False
        self._overloaded_since_adjust = False
        self._last_held_back_s = 0.0
        self._last_overload_s = 0.0
        # The first call of the current half-open: until the mapping polls, nothing is known.
        self._first_call_s = math.inf

    # What the mapping may do --------------------------------------------------------------

    @property
    def enabled(self) -> bool:
        return self.state is not BreakerState.OPEN

    def concurrency(self) -> int:
        if self.state is BreakerState.OPEN:
            return 0
        if self.state is BreakerState.CLOSED:
            return self.max_concurrency
        wanted = int(self.rate_per_s * self.policy.horizon_s / self.batch_size)
        return max(self.policy.min_concurrency, min(self.max_concurrency, wanted))

    def reserve_call(self, earliest_s: float) -> float:
        """When a call that could go at `earliest_s` may go under the pace (half-open only)."""
        if self.state is not BreakerState.HALF_OPEN:
            return earliest_s
        at = max(earliest_s, self.next_slot_s)
        self._first_call_s = min(self._first_call_s, at)
        if at > earliest_s:
            self._held_back_since_adjust = True
            self._last_held_back_s = at
        self.next_slot_s = at + 1.0 / self.rate_per_s
        return at

    # What the consumer observed -------------------------------------------------------------

    def record_call(self, at: float, failed: bool, retry_after_s: int | None) -> None:
        if failed and retry_after_s is not None:
            # The downstream is up and asks for a pause: no call before it ends.
            self._overloaded_since_adjust = True
            self._last_overload_s = at
            if self.state is BreakerState.HALF_OPEN:
                self.next_slot_s = max(self.next_slot_s, at + retry_after_s)
            return
        self._calls.append((at, failed))
        self._failures_in_window += failed

    def record_invocation(self, at: float, calls: int, failures_without_retry_after: int) -> None:
        """After each invocation; a whole-batch failure is one where every call failed that way."""
        if calls and failures_without_retry_after == calls:
            self._whole_batch_failures.append(at)
        self.tick(at)
        if self.state is not BreakerState.OPEN and self._should_trip(at):
            self._enter(BreakerState.OPEN, at)
            self.counters.trips += 1

    def probe(self, at: float, succeeded: bool) -> None:
        self.counters.probes += 1
        if succeeded and self.state is BreakerState.OPEN:
            self._enter(BreakerState.HALF_OPEN, at)
            self.rate_per_s = self.policy.half_open_rate_per_s
            self.next_slot_s = at
            self._next_adjust_s = at + self.policy.adjust_every_s
            self._last_held_back_s = at
            self._last_overload_s = at

    def tick(self, now: float) -> bool:
        """Adjusts the pace and closes when due; True when the concurrency may have grown."""
        if self.state is not BreakerState.HALF_OPEN:
            return False
        policy = self.policy
        grew = False
        while now >= self._next_adjust_s:
            if self._overloaded_since_adjust:
                self.rate_per_s = max(
                    policy.min_rate_per_s, self.rate_per_s * policy.decrease_factor
                )
            elif self._held_back_since_adjust:
                self.rate_per_s *= policy.increase_factor
                grew = True
            self._overloaded_since_adjust = False
            self._held_back_since_adjust = False
            self._next_adjust_s += policy.adjust_every_s
        # A minute of calls that the pace did not hold back, not merely a minute: the mapping may
        # take a while to start polling after the probe.
        quiet_since = max(self._last_held_back_s, self._last_overload_s, self._first_call_s)
        if now - quiet_since >= policy.close_after_s:
            self._enter(BreakerState.CLOSED, now)
            self.rate_per_s = math.inf
            grew = True
        return grew

    def finish(self, at: float) -> None:
        """Counts the time spent in the current state up to the end of the run."""
        self._enter(self.state, at)

    # Internals -----------------------------------------------------------------------------

    def _should_trip(self, now: float) -> bool:
        policy = self.policy
        horizon = now - policy.window_s
        calls = self._calls
        while calls and calls[0][0] < horizon:
            self._failures_in_window -= calls.popleft()[1]
        batches = self._whole_batch_failures
        while batches and batches[0] < horizon:
            batches.popleft()
        failures = self._failures_in_window
        return (
            len(batches) >= policy.trip_whole_batch_failures
            and failures >= policy.trip_min_failures
            and failures >= policy.trip_failure_ratio * len(calls)
        )

    def _enter(self, state: BreakerState, at: float) -> None:
        spent = max(0.0, at - self.state_since)
        if self.state is BreakerState.OPEN:
            self.counters.open_s += spent
        elif self.state is BreakerState.HALF_OPEN:
            self.counters.half_open_s += spent
        self.state = state
        self.state_since = at
        self._first_call_s = math.inf
        self._calls.clear()
        self._failures_in_window = 0
        self._whole_batch_failures.clear()
