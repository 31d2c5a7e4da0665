"""The circuit breaker on the function's own event source mapping (the study's policy, in the
product).

The breaker's state is the mapping's, shared by every execution environment:

- closed: the mapping is enabled with its configured MaximumConcurrency; nothing is paced.
- open: the mapping is disabled (State Disabled or Disabling): no receives, so the receive
  counts of waiting messages do not grow. Records received before the pollers stopped are
  failed without a call, with the usual backoff. The scheduled probe ({"breakerProbe": {}},
  consumer.breaker_probe) tests the downstream once a minute and, when it answers, moves to
  half-open.
- half-open: enabled with a lower MaximumConcurrency. Each environment paces its calls
  (`BreakerPolicy.horizon_s` of calls per batch: one call a second with batches of 10), never
  calls before a Retry-After ends, and every `adjust_every_s` raises the mapping's rate x1.1
  when it held calls back or lowers it x0.9 when it saw Retry-After. An environment that made
  calls for `close_after_s` without holding any back closes the breaker.

Each environment trips it from its own observations (closed or half-open -> open): within
`window_s`, at least `trip_whole_batch_failures` batches whose every call failed, at least
`trip_min_failures` failed calls, failures at least `trip_failure_ratio` of the calls. An
answer with Retry-After never counts: the downstream is up and asks for a pause.

Nothing here may stop deliveries by itself failing: an error of the Lambda API is logged and the
breaker is closed as far as this environment is concerned (fail open). The numbers are the
study's (benchmarks/breaker.py, which the function package must not import); a test holds the
two policies equal.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Protocol

from consumer.deadline import MIN_CALL_SECONDS, RESERVE_SECONDS, Deadline
from consumer.errors import BreakerOpen, DeadlineExceeded, DownstreamFailure, MappingUnavailable
from consumer.observability import Metric, count, logger


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


# The BreakerState metric's value for each state: the alarm fires on 2 (open) held long enough.
STATE_GAUGE = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}


@dataclass(frozen=True)
class BreakerPolicy:
    """The study's constants (benchmarks/breaker.py), same names, same values."""

    window_s: float = 60.0
    trip_failure_ratio: float = 0.9
    trip_min_failures: int = 10
    trip_whole_batch_failures: int = 3
    probe_interval_s: float = 60.0
    half_open_rate_per_s: float = 3.0
    min_rate_per_s: float = 0.5
    increase_factor: float = 1.1
    decrease_factor: float = 0.9
    adjust_every_s: float = 10.0
    close_after_s: float = 60.0
    horizon_s: float = 10.0
    min_concurrency: int = 2

    def half_open_concurrency(self, configured: int, batch_size: int = 10) -> int:
        """The mapping's MaximumConcurrency when half-open begins: one poller per call a second
        of the starting pace (3 with batches of 10), below the configured value (else it would
        read as closed), and never below the mapping's minimum of 2."""
        wanted = int(self.half_open_rate_per_s * self.horizon_s / batch_size)
        return max(self.min_concurrency, min(wanted, configured - 1))


# GetEventSourceMapping is read at most this often per environment while batches keep coming.
MAPPING_CACHE_SECONDS = 5.0
# Lambda's control plane accepts 15 requests a second per account and Region (Lambda quotas,
# "Lambda API requests"; GetEventSourceMapping and UpdateEventSourceMapping are among them).
# Every environment reads the mapping: with many of them the cache is longer, so that the
# mapping's environments together stay near this many reads a second.
MAPPING_READS_PER_SECOND = 10.0

# The mapping's State values (GetEventSourceMapping): Creating, Enabling, Enabled, Disabling,
# Disabled, Updating, Deleting. A disabled mapping stops polling (UpdateEventSourceMapping:
# "If you disable the event source mapping, Lambda stops polling"), how soon is not documented.
_OPEN_STATES = frozenset({"Disabled", "Disabling"})


def mapping_cache_seconds(configured_concurrency: int) -> float:
    return max(MAPPING_CACHE_SECONDS, configured_concurrency / MAPPING_READS_PER_SECOND)


@dataclass(frozen=True)
class MappingView:
    """What the breaker reads of its event source mapping."""

    uuid: str
    state: str
    # ScalingConfig.MaximumConcurrency; None when the mapping has no ScalingConfig.
    maximum_concurrency: int | None
    batch_size: int = 10

    def breaker_state(self, configured_concurrency: int) -> BreakerState:
        if self.state in _OPEN_STATES:
            return BreakerState.OPEN
        # Enabled, or on its way (Enabling, Updating, Creating): the concurrency tells.
        if self.maximum_concurrency is not None and (
            self.maximum_concurrency < configured_concurrency
        ):
            return BreakerState.HALF_OPEN
        return BreakerState.CLOSED


class MappingPort(Protocol):
    """The function's own event source mapping (consumer.event_source_mapping). Each method
    raises MappingUnavailable when the Lambda API fails."""

    def read(self) -> MappingView | None:
        """The mapping, or None when the function has no mapping on its source queue."""
        ...

    def disable(self, uuid: str) -> None: ...

    def set_concurrency(self, uuid: str, maximum_concurrency: int, *, enable: bool) -> None: ...


def log_transition(from_state: BreakerState, to_state: BreakerState, why: str) -> None:
    """One structured line and one metric per transition, whoever makes it."""
    logger.warning(
        "circuit breaker transition",
        breaker_from=str(from_state),
        breaker_to=str(to_state),
        why=why,
    )
    count(
        {
            BreakerState.OPEN: Metric.BREAKER_OPENED,
            BreakerState.HALF_OPEN: Metric.BREAKER_HALF_OPENED,
            BreakerState.CLOSED: Metric.BREAKER_CLOSED,
        }[to_state]
    )


def indicates_down(failure: DownstreamFailure) -> bool:
    """A failure that says the downstream is down or overloaded without guidance: no answer, a
    timeout, 5xx or 429. Any other status (3xx, 4xx) came from a service that is up."""
    code = failure.status_code
    return code is None or code >= 500 or code == 429


class BatchCalls:
    """One batch's calls: asks the breaker before each call and tells it each outcome. Shared by
    the threads that deliver the batch's records."""

    def __init__(self, breaker: CircuitBreaker) -> None:
        self._breaker = breaker
        self._lock = threading.Lock()
        self.calls = 0
        self.failures = 0

    def before_call(self, deadline: Deadline) -> None:
        """Returns when the call may go; raises BreakerOpen or DeadlineExceeded (no call)."""
        self._breaker.admit(deadline)

    def after_call(self, failure: DownstreamFailure | None) -> None:
        retry_after = None if failure is None else failure.retry_after_seconds
        failed = failure is not None and retry_after is None and indicates_down(failure)
        with self._lock:
            self.calls += 1
            self.failures += failed
        self._breaker.record_call(failed, retry_after)


class CircuitBreaker:
    """One execution environment's part of the mapping-wide breaker. Thread-safe: the records
    of a batch ask it and report to it from the delivery pool's threads.

    start_batch and finish_batch run on the invocation's own thread, before and after the
    batch; they are the only ones that call the Lambda API, so the delivery path costs a lock
    and no call while the breaker is closed.
    """

    def __init__(
        self,
        mapping: MappingPort,
        configured_concurrency: int,
        *,
        policy: BreakerPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        cache_seconds: float | None = None,
    ) -> None:
        self.policy = policy or BreakerPolicy()
        self.configured_concurrency = configured_concurrency
        self.mapping = mapping
        self._clock = clock
        self.sleep = sleep
        self._cache_seconds = (
            mapping_cache_seconds(configured_concurrency)
            if cache_seconds is None
            else cache_seconds
        )
        self._lock = threading.Lock()
        self._view: MappingView | None = None
        self._read_at = -math.inf
        # False once the function is known to have no mapping: the breaker is off for good.
        self._has_mapping = True
        self.state = BreakerState.CLOSED
        # The trip rule's window: (time, failed) per call, and the times of whole-batch failures.
        self._calls: deque[tuple[float, bool]] = deque()
        self._failures_in_window = 0
        self._whole_batch_failures: deque[float] = deque()
        # Half-open pacing.
        self.pace_per_s = math.inf
        self._next_slot = 0.0
        self._next_adjust = 0.0
        self._held_back_since_adjust = False
        self._overloaded_since_adjust = False
        self._last_held_back = 0.0
        self._last_overload = 0.0
        self._first_call = math.inf

    # The invocation's thread --------------------------------------------------------------

    def start_batch(self) -> BatchCalls:
        """Reads the mapping when the cached view is stale; returns the batch's gate."""
        now = self._clock()
        if self._has_mapping and now - self._read_at >= self._cache_seconds:
            self._refresh(now)
        return BatchCalls(self)

    def forget_mapping(self) -> None:
        """The next batch reads the mapping again (the probe just changed it)."""
        with self._lock:
            self._read_at = -math.inf

    def finish_batch(self, calls: BatchCalls) -> None:
        """After the batch: a whole-batch failure is counted, half-open adjusts the pace or
        closes, and the trip rule may open the breaker."""
        with self._lock:
            now = self._clock()
            if calls.calls and calls.failures == calls.calls:
                self._whole_batch_failures.append(now)
            if self.state is BreakerState.HALF_OPEN:
                self._tick(now)
            if self.state is not BreakerState.OPEN and self._should_trip(now):
                self._trip(now)

    # The delivery threads ------------------------------------------------------------------

    def admit(self, deadline: Deadline) -> None:
        """Returns when a call may go now; raises BreakerOpen (open: no call) or
        DeadlineExceeded (its paced slot comes too late for the invocation)."""
        with self._lock:
            state = self.state
            if state is BreakerState.CLOSED:
                return
            if state is BreakerState.OPEN:
                raise BreakerOpen(
                    "the circuit breaker is open (the downstream is judged down): "
                    "not calling the downstream"
                )
            now = self._clock()
            at = max(now, self._next_slot)
            wait_s = at - now
            # The call needs its own time after the wait, and the batch its reserve.
            if wait_s > deadline.remaining_seconds() - RESERVE_SECONDS - MIN_CALL_SECONDS:
                raise DeadlineExceeded(
                    f"the half-open pace gives this call a slot in {wait_s:.1f}s, too late for "
                    "the invocation: not calling the downstream"
                )
            self._first_call = min(self._first_call, at)
            if wait_s > 0:
                self._held_back_since_adjust = True
                self._last_held_back = at
            self._next_slot = at + 1.0 / self.pace_per_s
        if wait_s > 0:
            # The pace itself, not a synchronisation: the call may not go before its slot.
            self.sleep(wait_s)

    def record_call(self, failed: bool, retry_after_s: int | None) -> None:
        with self._lock:
            now = self._clock()
            if retry_after_s is not None:
                # The downstream is up and asks for a pause: no call here before it ends.
                self._overloaded_since_adjust = True
                self._last_overload = now
                if self.state is BreakerState.HALF_OPEN:
                    self._next_slot = max(self._next_slot, now + retry_after_s)
                return
            self._calls.append((now, failed))
            self._failures_in_window += failed

    # Internals (under the lock, or on the invocation's thread) -----------------------------

    def _refresh(self, now: float) -> None:
        self._read_at = now
        try:
            view = self.mapping.read()
        except MappingUnavailable as exc:
            # Fail open: deliveries go on as if the breaker were closed.
            logger.warning(
                "could not read the event source mapping; the breaker stays closed here",
                error=str(exc),
            )
            view = None
        else:
            if view is None:
                logger.info("no event source mapping on the source queue; the breaker is off")
                self._has_mapping = False
        with self._lock:
            self._view = view
            seen = (
                BreakerState.CLOSED
                if view is None
                else view.breaker_state(self.configured_concurrency)
            )
            if view is not None and view.state == "Updating" and self.state is BreakerState.OPEN:
                # A change in progress (this environment's own disabling, as the service may
                # show it) does not reopen the mapping: enabling it again reads Enabling.
                seen = BreakerState.OPEN
            if seen is not self.state:
                self._enter(seen, now)

    def _enter(self, state: BreakerState, now: float) -> None:
        self.state = state
        self._calls.clear()
        self._failures_in_window = 0
        self._whole_batch_failures.clear()
        self._first_call = math.inf
        if state is BreakerState.HALF_OPEN:
            batch_size = 10 if self._view is None else max(1, self._view.batch_size)
            # One batch's calls over the horizon: one call a second with batches of 10.
            self.pace_per_s = batch_size / self.policy.horizon_s
            self._next_slot = now
            self._next_adjust = now + self.policy.adjust_every_s
            self._held_back_since_adjust = False
            self._overloaded_since_adjust = False
            self._last_held_back = now
            self._last_overload = now
        else:
            self.pace_per_s = math.inf

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

    def _trip(self, now: float) -> None:
        view = self._view
        if view is None:
            return
        why = (
            f"{len(self._whole_batch_failures)} whole-batch failures and "
            f"{self._failures_in_window} of {len(self._calls)} calls failed within "
            f"{self.policy.window_s:g}s"
        )
        try:
            self.mapping.disable(view.uuid)
        except MappingUnavailable as exc:
            logger.error(
                "the breaker should open but the mapping could not be disabled; deliveries go on",
                error=str(exc),
                why=why,
            )
            return
        log_transition(self.state, BreakerState.OPEN, why)
        self._view = replace(view, state="Disabling")
        self._enter(BreakerState.OPEN, now)

    def _tick(self, now: float) -> None:
        """Half-open: adjust the rate every adjust_every_s, and close when quiet long enough."""
        policy = self.policy
        overloaded = held_back = False
        while now >= self._next_adjust:
            overloaded = overloaded or self._overloaded_since_adjust
            held_back = held_back or self._held_back_since_adjust
            self._overloaded_since_adjust = False
            self._held_back_since_adjust = False
            self._next_adjust += policy.adjust_every_s
        if overloaded:
            self._slow_down()
        elif held_back:
            self._speed_up()
        quiet_since = max(self._last_held_back, self._last_overload, self._first_call)
        if now - quiet_since >= policy.close_after_s:
            self._close(now, quiet_since)

    def _speed_up(self) -> None:
        """x1.1 for the mapping's rate: more pollers while half-open allows them, then a faster
        pace in each environment."""
        view = self._view
        if view is None or view.maximum_concurrency is None:
            return
        current = view.maximum_concurrency
        ceiling = self.configured_concurrency - 1
        if current < ceiling:
            wanted = min(ceiling, max(current + 1, round(current * self.policy.increase_factor)))
            self._set_concurrency(view, wanted, "held calls back")
        else:
            self.pace_per_s *= self.policy.increase_factor

    def _slow_down(self) -> None:
        """x0.9 for the mapping's rate: a slower pace here first, down to the starting one,
        then fewer pollers (at least the mapping's minimum of 2)."""
        view = self._view
        if view is None or view.maximum_concurrency is None:
            return
        base = max(1, view.batch_size) / self.policy.horizon_s
        if self.pace_per_s > base:
            self.pace_per_s = max(base, self.pace_per_s * self.policy.decrease_factor)
            return
        current = view.maximum_concurrency
        wanted = max(self.policy.min_concurrency, math.floor(current * self.policy.decrease_factor))
        if wanted < current:
            self._set_concurrency(view, wanted, "the downstream answered with Retry-After")

    def _set_concurrency(self, view: MappingView, wanted: int, why: str) -> None:
        try:
            self.mapping.set_concurrency(view.uuid, wanted, enable=False)
        except MappingUnavailable as exc:
            logger.warning("could not change the mapping's concurrency", error=str(exc))
            return
        logger.info(
            "half-open concurrency changed",
            from_concurrency=view.maximum_concurrency,
            to_concurrency=wanted,
            why=why,
        )
        self._view = replace(view, maximum_concurrency=wanted)

    def _close(self, now: float, quiet_since: float) -> None:
        view = self._view
        if view is None:
            return
        try:
            self.mapping.set_concurrency(view.uuid, self.configured_concurrency, enable=False)
        except MappingUnavailable as exc:
            logger.warning("the breaker should close but the mapping refused", error=str(exc))
            return
        log_transition(
            BreakerState.HALF_OPEN,
            BreakerState.CLOSED,
            f"{now - quiet_since:.0f}s of calls without holding any back or a Retry-After",
        )
        self._view = replace(view, maximum_concurrency=self.configured_concurrency)
        self._enter(BreakerState.CLOSED, now)
