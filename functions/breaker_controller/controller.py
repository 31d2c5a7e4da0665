"""The controller's decisions: what each scheduled tick and each report does to the mapping.

The mapping's state is the breaker's state:

- closed: enabled at the configured MaximumConcurrency;
- open: Disabled (or Disabling): nothing is received, so no receive count grows;
- half-open: enabled below the configured MaximumConcurrency (ControllerPolicy.half_open).

Transitions, each one UpdateEventSourceMapping (plus a GetEventSourceMapping when the
controller has no fresh reading of its own):

- closed or half-open -> open: a report whose counts the rules judge trip or pause;
- open -> half-open: the tick's probe finds the downstream up;
- open -> half-open (expiry sweep): open for max_open_seconds(retention); trip reports are
  ignored until the source queue shows no visible message (every waiting message was received
  once, so the consumer's would-expire rule saw each), then the probe decides;
- half-open -> closed: close_after_s since the half-open began without a trip report;
- half-open -> closed (poison flood): flap_retrips trips in a row of a half-open mapping that a
  passing probe opened: the downstream is up and the failures are the messages' own. Trips are
  ignored for trust_probe_s, and the poison messages go to the dead-letter queue by their own
  backoff instead of holding the good ones back.

A valid trip that arrives while the mapping is changing (Enabling, Updating: most often the
controller's own half-opening) is not answered with another update, which would be refused; it
is kept, and the next tick acts on it with the reading it makes anyway.

Each tick reads the mapping once (1 control-plane request a minute) and publishes BreakerState
(or BreakerStateUnknown when it cannot read it). With CircuitBreaker=Disabled the tick only
restores the mapping: enabled at the configured MaximumConcurrency.

State of the controller's own (its last reading, when the half-open began, the last trip) lives
in its warm execution environment: reserved concurrency 1 makes it the only one. A cold start
loses it, and the decisions fall back to what the mapping itself says (LastModified).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from breaker_controller.errors import MappingUnavailable, QueueUnavailable
from breaker_controller.mapping import MappingView
from breaker_controller.probe import ProbeOutcome
from shared.breaker_policy.report import BreakerReport
from shared.breaker_policy.rules import TripRules, Verdict
from shared.breaker_policy.state import STATE_GAUGE, BreakerState
from shared.breaker_policy.timing import ControllerPolicy, max_open_seconds
from shared.observability import Metric, count, logger, publish_gauge


class MappingPort(Protocol):
    requests: int

    def read(self) -> MappingView: ...

    def disable(self) -> MappingView: ...

    def enable(self, maximum_concurrency: int) -> MappingView: ...


class ProbePort(Protocol):
    def __call__(self) -> ProbeOutcome: ...


class VisibleCountPort(Protocol):
    def __call__(self) -> int: ...


@dataclass(frozen=True)
class ControllerSettings:
    enabled: bool
    configured_concurrency: int
    retention_seconds: int
    rules: TripRules = field(default_factory=TripRules)
    policy: ControllerPolicy = field(default_factory=ControllerPolicy)

    @property
    def max_open_s(self) -> int:
        return max_open_seconds(self.retention_seconds)


@dataclass
class Memory:
    """What the controller remembers between invocations of its warm environment."""

    view: MappingView | None = None
    read_at: float = float("-inf")
    # When the current half-open began, and whether a passing probe began it.
    half_open_at: float | None = None
    half_opened_by_probe: bool = False
    last_trip_at: float = float("-inf")
    # Trips in a row of a half-open mapping a passing probe had opened (poison-flood guard).
    retrips: int = 0
    trust_probe_until: float = float("-inf")
    sweeping: bool = False
    # A valid trip that came while the mapping was changing: the next tick acts on it.
    deferred_trip: BreakerReport | None = None


class Controller:
    def __init__(
        self,
        settings: ControllerSettings,
        mapping: MappingPort,
        visible_messages: VisibleCountPort,
        *,
        clock: Callable[[], float] = time.time,
        memory: Memory | None = None,
    ) -> None:
        self.settings = settings
        self.mapping = mapping
        self.visible_messages = visible_messages
        self.clock = clock
        self.memory = memory or Memory()

    # The schedule's tick, once a minute ------------------------------------------------------

    def tick(self, probe: ProbePort) -> dict[str, Any]:
        now = self.clock()
        try:
            view = self._read(now)
        except MappingUnavailable as exc:
            logger.error("breaker tick: could not read the event source mapping", error=str(exc))
            self._publish(BreakerState.UNKNOWN)
            return {"breaker": str(BreakerState.UNKNOWN), "error": str(exc)}
        if not self.settings.enabled:
            return self._restore(view)
        state = view.breaker_state(self.settings.configured_concurrency)
        report: dict[str, Any] = {"breaker": str(state), "mappingState": view.state}
        deferred = self._deferred_trip(now)
        if view.in_transition:
            # Disabling, Enabling, Updating...: the change in progress lands first.
            report["action"] = "none: a transition is in progress"
        elif deferred is not None and state is not BreakerState.OPEN and not self.memory.sweeping:
            report["action"] = self._act_on_trip(view, now, deferred)
            state = self._state_after(state, report["action"])
        elif state is BreakerState.OPEN:
            state = self._tick_open(view, now, report, probe)
        elif state is BreakerState.HALF_OPEN:
            state = self._tick_half_open(view, now, report, probe)
        else:
            self._forget_half_open()
        report["breaker"] = str(state)
        self._publish(state)
        return report

    def _deferred_trip(self, now: float) -> BreakerReport | None:
        deferred = self.memory.deferred_trip
        policy = self.settings.policy
        if deferred is None or now < self.memory.trust_probe_until:
            return None
        if now - deferred.observed_at > policy.report_max_age_s + policy.probe_interval_s:
            # Kept through more than one tick (the mapping stayed in transition): stale now.
            self.memory.deferred_trip = None
            return None
        return deferred

    @staticmethod
    def _state_after(state: BreakerState, action: str) -> BreakerState:
        if action == "opened":
            return BreakerState.OPEN
        if action.startswith("closed"):
            return BreakerState.CLOSED
        return state

    def _tick_open(
        self, view: MappingView, now: float, report: dict[str, Any], probe: ProbePort
    ) -> BreakerState:
        opened_at = view.last_modified if view.last_modified is not None else now
        open_for = now - opened_at
        report["openSeconds"] = round(open_for)
        if open_for >= self.settings.max_open_s:
            why = (
                f"open for {open_for:.0f}s, the most the source queue's retention "
                f"({self.settings.retention_seconds}s) allows: expiry sweep"
            )
            if self._half_open(view, now, why, by_probe=False):
                self.memory.sweeping = True
                report["action"] = "expiry sweep"
                return BreakerState.HALF_OPEN
            return BreakerState.OPEN
        outcome = probe()
        report.update(probe="up" if outcome.up else "down", detail=outcome.detail)
        logger.info("breaker probe", up=outcome.up, detail=outcome.detail)
        if outcome.up and self._half_open(
            view, now, f"the probe found the downstream up ({outcome.detail})", by_probe=True
        ):
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    def _tick_half_open(
        self, view: MappingView, now: float, report: dict[str, Any], probe: ProbePort
    ) -> BreakerState:
        memory = self.memory
        if memory.sweeping:
            return self._tick_sweep(view, now, report, probe)
        began = memory.half_open_at
        if began is None:
            # A cold controller: the mapping's last change is the half-open's start.
            began = view.last_modified if view.last_modified is not None else now
            memory.half_open_at = began
        # LastModified moves when the state changes too ("last updated or that its state
        # changed"): an enable that took long to land counts from its landing.
        landed = view.last_modified if view.last_modified is not None else began
        quiet_since = max(began, landed, memory.last_trip_at)
        if now - quiet_since < self.settings.policy.close_after_s:
            report["action"] = f"half-open, quiet for {now - quiet_since:.0f}s"
            return BreakerState.HALF_OPEN
        if self._close(view, f"{now - quiet_since:.0f}s half-open without a trip report"):
            memory.retrips = 0
            return BreakerState.CLOSED
        return BreakerState.HALF_OPEN

    def _tick_sweep(
        self, view: MappingView, now: float, report: dict[str, Any], probe: ProbePort
    ) -> BreakerState:
        """The expiry sweep lasts until no message is visible; then the probe decides."""
        try:
            visible = self.visible_messages()
        except QueueUnavailable as exc:
            report["action"] = f"sweeping: {exc}"
            return BreakerState.HALF_OPEN
        if visible > 0:
            report["action"] = f"sweeping: {visible} visible"
            return BreakerState.HALF_OPEN
        self.memory.sweeping = False
        outcome = probe()
        report.update(probe="up" if outcome.up else "down", detail=outcome.detail)
        if outcome.up:
            self.memory.half_open_at, self.memory.half_opened_by_probe = now, True
            return BreakerState.HALF_OPEN
        return self._open(view, now, f"expiry sweep done; the probe: {outcome.detail}")

    # A consumer environment's report ---------------------------------------------------------

    def on_report(self, report: BreakerReport) -> dict[str, Any]:
        now = self.clock()
        verdict = self.settings.rules.verdict(report.counts)
        ignored = self._ignored(report, verdict, now)
        if ignored is not None:
            return {"verdict": str(verdict), "action": f"none: {ignored}"}
        try:
            view = self._fresh_view(now)
        except MappingUnavailable as exc:
            logger.error("breaker report: could not read the mapping", error=str(exc))
            return {"verdict": str(verdict), "action": f"none: {exc}"}
        state = view.breaker_state(self.settings.configured_concurrency)
        if state is BreakerState.OPEN:
            # Coalesced: the many reports of one outage cost no request once it is open.
            return {"verdict": str(verdict), "action": f"none: mapping {view.state}"}
        if view.in_transition:
            # Enabling or Updating (the controller's own half-opening or closing, most often):
            # another update now would be refused. The next tick acts on it once it landed.
            self.memory.deferred_trip = report
            return {"verdict": str(verdict), "action": f"deferred: mapping {view.state}"}
        return {"verdict": str(verdict), "action": self._act_on_trip(view, now, report)}

    def _act_on_trip(self, view: MappingView, now: float, report: BreakerReport) -> str:
        """A trip or pause judged valid, on a closed or half-open mapping that is not changing."""
        self.memory.deferred_trip = None
        state = view.breaker_state(self.settings.configured_concurrency)
        verdict = self.settings.rules.verdict(report.counts)
        why = (
            f"{verdict} reported by environment {report.environment or '?'}: "
            f"{report.counts.failures} of {report.counts.calls} calls failed "
            f"({report.counts.auth_failures} auth), "
            f"{report.counts.whole_batch_failures} whole-batch failures"
        )
        if state is BreakerState.HALF_OPEN and self.memory.half_opened_by_probe:
            if self._poison_flood(view, now):
                return "closed: poison-flood guard"
        elif state is BreakerState.CLOSED:
            self.memory.retrips = 0
        self._open(view, now, why)
        return "opened"

    def _ignored(self, report: BreakerReport, verdict: Verdict, now: float) -> str | None:
        """Why the report changes nothing, or None when it may open the breaker."""
        memory, policy = self.memory, self.settings.policy
        if not self.settings.enabled:
            return "the circuit breaker is off"
        if verdict is Verdict.NONE:
            return "the rules do not trip on these counts"
        age_s = now - report.observed_at
        if age_s > policy.report_max_age_s:
            return f"stale ({age_s:.0f}s old)"
        memory.last_trip_at = max(memory.last_trip_at, report.observed_at)
        if memory.sweeping:
            return "expiry sweep in progress"
        if now < memory.trust_probe_until:
            return "poison-flood guard (the probe finds the downstream up)"
        return None

    def _poison_flood(self, view: MappingView, now: float) -> bool:
        """One more re-trip of a half-open mapping a passing probe opened; True when that makes
        a poison flood and the mapping closed."""
        memory, policy = self.memory, self.settings.policy
        memory.retrips += 1
        if memory.retrips < policy.flap_retrips:
            return False
        memory.trust_probe_until = now + policy.trust_probe_s
        logger.warning(
            "poison flood: the probe finds the downstream up but messages keep failing; "
            "closing and ignoring trips for a while",
            retrips=memory.retrips,
            trust_probe_s=policy.trust_probe_s,
        )
        count(Metric.BREAKER_POISON_FLOOD)
        if self._close(view, f"poison flood after {memory.retrips} re-trips"):
            memory.retrips = 0
            return True
        return False

    # Transitions -------------------------------------------------------------------------------

    def _restore(self, view: MappingView) -> dict[str, Any]:
        """CircuitBreaker=Disabled: the mapping enabled at the configured concurrency, whatever
        the breaker left it as (issue 22: turning the breaker off must not leave it open)."""
        configured = self.settings.configured_concurrency
        report: dict[str, Any] = {"breaker": "off", "mappingState": view.state}
        if view.in_transition:
            report["action"] = "none: a transition is in progress"
        elif view.state != "Enabled" or view.maximum_concurrency != configured:
            try:
                self.memory.view = self.mapping.enable(configured)
            except MappingUnavailable as exc:
                logger.error("could not restore the event source mapping", error=str(exc))
                report["error"] = str(exc)
            else:
                logger.warning(
                    "circuit breaker off: mapping restored",
                    from_state=view.state,
                    from_concurrency=view.maximum_concurrency,
                    to_concurrency=configured,
                )
                report["action"] = f"restored: enabled at MaximumConcurrency {configured}"
        self._forget_half_open()
        self.memory.sweeping = False
        return report

    def _open(self, view: MappingView, now: float, why: str) -> BreakerState:
        before = view.breaker_state(self.settings.configured_concurrency)
        try:
            self.memory.view = self.mapping.disable()
        except MappingUnavailable as exc:
            logger.error("the breaker should open but the mapping refused", error=str(exc))
            return before
        self.memory.read_at = now
        self.memory.deferred_trip = None
        self._forget_half_open()
        _log_transition(before, BreakerState.OPEN, why)
        return BreakerState.OPEN

    def _half_open(self, view: MappingView, now: float, why: str, *, by_probe: bool) -> bool:
        concurrency = self.settings.policy.half_open(self.settings.configured_concurrency)
        try:
            self.memory.view = self.mapping.enable(concurrency)
        except MappingUnavailable as exc:
            logger.error("the breaker should half-open but the mapping refused", error=str(exc))
            return False
        self.memory.read_at = now
        self.memory.half_open_at, self.memory.half_opened_by_probe = now, by_probe
        _log_transition(
            BreakerState.OPEN, BreakerState.HALF_OPEN, f"{why}; MaximumConcurrency {concurrency}"
        )
        return True

    def _close(self, view: MappingView, why: str) -> bool:
        configured = self.settings.configured_concurrency
        try:
            self.memory.view = self.mapping.enable(configured)
        except MappingUnavailable as exc:
            logger.error("the breaker should close but the mapping refused", error=str(exc))
            return False
        self.memory.read_at = self.clock()
        self._forget_half_open()
        _log_transition(
            BreakerState.HALF_OPEN, BreakerState.CLOSED, f"{why}; MaximumConcurrency {configured}"
        )
        return True

    def _forget_half_open(self) -> None:
        self.memory.half_open_at = None
        self.memory.half_opened_by_probe = False

    # Reading -------------------------------------------------------------------------------------

    def _read(self, now: float) -> MappingView:
        view = self.mapping.read()
        self.memory.view, self.memory.read_at = view, now
        return view

    def _fresh_view(self, now: float) -> MappingView:
        memory = self.memory
        if memory.view is not None and now - memory.read_at <= self.settings.policy.view_fresh_s:
            return memory.view
        return self._read(now)

    def _publish(self, state: BreakerState) -> None:
        if state is BreakerState.UNKNOWN:
            publish_gauge(Metric.BREAKER_STATE_UNKNOWN, 1)
        else:
            publish_gauge(Metric.BREAKER_STATE, STATE_GAUGE[state])


def _log_transition(from_state: BreakerState, to_state: BreakerState, why: str) -> None:
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
