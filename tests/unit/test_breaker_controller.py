"""The breaker controller's decisions on an injected clock, a fake mapping that counts its
control-plane requests, and a scripted probe: coalescing reports, the transitions, states in
transition, the maximum time open (expiry sweep), the poison-flood guard, the state published
on every tick, and restoring the mapping when the breaker is off. Against moto and a real
downstream: tests/integration/test_circuit_breaker.py."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from breaker_controller import app
from breaker_controller.controller import Controller, ControllerSettings, Memory
from breaker_controller.errors import MappingUnavailable
from breaker_controller.mapping import MappingView
from breaker_controller.probe import ProbeOutcome
from shared.breaker_policy.report import BreakerReport
from shared.breaker_policy.rules import TripRules, Verdict, WindowCounts
from shared.breaker_policy.timing import ControllerPolicy, max_open_seconds
from shared.observability import metrics

CONFIGURED = 10
RETENTION = 345_600
TRIP_COUNTS = WindowCounts(calls=15, down_failures=15, whole_batch_failures=3)


class FakeMapping:
    """The event source mapping as GetEventSourceMapping shows it; every request counted."""

    def __init__(self, clock: FakeClock, state: str = "Enabled", concurrency: int = 10) -> None:
        self.clock = clock
        self.state = state
        self.concurrency: int | None = concurrency
        self.last_modified = clock.now
        self.requests = 0
        self.updates: list[tuple[str, int | None]] = []
        self.fail = False
        # The state an update answers with, as UpdateEventSourceMapping's response shows it
        # while the change lands (None: landed at once).
        self.answer_state: str | None = None

    def _view(self) -> MappingView:
        return MappingView("uuid-1", self.state, self.concurrency, self.last_modified)

    def read(self) -> MappingView:
        self.requests += 1
        if self.fail:
            raise MappingUnavailable("GetEventSourceMapping failed: TooManyRequestsException")
        return self._view()

    def disable(self) -> MappingView:
        self.requests += 1
        if self.fail:
            raise MappingUnavailable("UpdateEventSourceMapping failed: AccessDenied")
        self.state, self.last_modified = "Disabled", self.clock.now
        self.updates.append(("disable", None))
        return self._answer()

    def enable(self, maximum_concurrency: int) -> MappingView:
        self.requests += 1
        if self.fail:
            raise MappingUnavailable("UpdateEventSourceMapping failed: AccessDenied")
        self.state, self.concurrency = "Enabled", maximum_concurrency
        self.last_modified = self.clock.now
        self.updates.append(("enable", maximum_concurrency))
        return self._answer()

    def _answer(self) -> MappingView:
        view = self._view()
        if self.answer_state is None:
            return view
        return MappingView(view.uuid, self.answer_state, view.maximum_concurrency)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class ScriptedProbe:
    def __init__(self, up: bool = False) -> None:
        self.up = up
        self.calls = 0

    def __call__(self) -> ProbeOutcome:
        self.calls += 1
        return ProbeOutcome(self.up, "GET /health answered " + ("200" if self.up else "503"))


class Visible:
    def __init__(self, count: int = 0) -> None:
        self.count = count

    def __call__(self) -> int:
        return self.count


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def mapping(clock: FakeClock) -> FakeMapping:
    return FakeMapping(clock)


@pytest.fixture
def visible() -> Visible:
    return Visible()


def controller_for(
    mapping: FakeMapping,
    clock: FakeClock,
    visible: Visible | None = None,
    *,
    enabled: bool = True,
    retention: int = RETENTION,
) -> Controller:
    settings = ControllerSettings(
        enabled=enabled, configured_concurrency=CONFIGURED, retention_seconds=retention
    )
    return Controller(settings, mapping, visible or Visible(), clock=clock, memory=Memory())


@pytest.fixture
def controller(mapping: FakeMapping, clock: FakeClock, visible: Visible) -> Controller:
    return controller_for(mapping, clock, visible)


def last_update(mapping: FakeMapping) -> tuple[str, int | None]:
    return mapping.updates[-1]


def trip(clock: FakeClock, counts: WindowCounts = TRIP_COUNTS, env: str = "e1") -> BreakerReport:
    return BreakerReport(Verdict.TRIP, counts, clock.now, env)


@pytest.fixture(autouse=True)
def published() -> Iterator[list[dict[str, Any]]]:
    """The metrics each test published (Powertools' buffer), cleared afterwards."""
    values: list[dict[str, Any]] = []
    yield values
    metrics.clear_metrics()


def state_values() -> list[float]:
    return list(metrics.metric_set.get("BreakerState", {}).get("Value", []))


# Reports: coalesced, at most 2 requests per transition -------------------------------------


def test_a_thousand_environments_reporting_cost_one_transition(
    controller: Controller, mapping: FakeMapping, clock: FakeClock
) -> None:
    # Given a closed mapping the controller has not read yet
    # When 1,000 environments report a trip within a few seconds
    for index in range(1000):
        controller.on_report(trip(clock, env=f"e{index}"))
        clock.advance(0.005)
    # Then the mapping was disabled once, with one read and one update: 2 requests in all
    assert mapping.updates == [("disable", None)]
    assert mapping.requests == 2


def test_a_fresh_reading_of_its_own_saves_the_read(
    controller: Controller, mapping: FakeMapping, clock: FakeClock
) -> None:
    # Given the tick read the mapping (closed) 30 s ago
    controller.tick(ScriptedProbe())
    clock.advance(30)
    requests = mapping.requests
    # When a trip is reported
    controller.on_report(trip(clock))
    # Then the transition costs the update only
    assert mapping.requests - requests == 1
    assert mapping.state == "Disabled"


def test_the_controller_judges_the_counts_itself(
    controller: Controller, mapping: FakeMapping, clock: FakeClock
) -> None:
    # Given a report that claims a trip with counts the rules do not trip on (50 % failed)
    counts = WindowCounts(calls=40, down_failures=20, whole_batch_failures=4)
    answer = controller.on_report(BreakerReport(Verdict.TRIP, counts, clock.now, "e1"))
    # Then nothing happens, and no request is made
    assert answer["verdict"] == "none"
    assert mapping.requests == 0


def test_a_stale_report_is_ignored(
    controller: Controller, mapping: FakeMapping, clock: FakeClock
) -> None:
    # Given a report observed 2 minutes ago (queued while the controller was busy)
    report = trip(clock)
    clock.advance(120)
    # When it arrives, Then it changes nothing and costs nothing
    assert "stale" in controller.on_report(report)["action"]
    assert mapping.requests == 0


def test_a_pause_report_opens_it(
    controller: Controller, mapping: FakeMapping, clock: FakeClock
) -> None:
    # Given a report of credential failures
    counts = WindowCounts(calls=15, auth_failures=15, whole_batch_failures=3)
    controller.on_report(BreakerReport(Verdict.PAUSE, counts, clock.now, "e1"))
    # Then the mapping is disabled: the backlog waits for the credentials
    assert mapping.updates == [("disable", None)]


@pytest.mark.parametrize("state", ["Disabling", "Enabling", "Updating", "Creating"])
def test_a_transition_in_progress_is_not_updated_again(
    controller: Controller, mapping: FakeMapping, clock: FakeClock, state: str
) -> None:
    # Given the mapping on its way somewhere (a half-open concurrency while Enabling)
    mapping.state, mapping.concurrency = state, 3
    # When a trip is reported and the tick runs
    controller.on_report(trip(clock))
    controller.tick(ScriptedProbe(up=True))
    # Then no update was asked: the change in progress lands first
    assert mapping.updates == []


def test_an_update_refused_leaves_the_state_as_it_was(
    controller: Controller, mapping: FakeMapping, clock: FakeClock
) -> None:
    # Given the Lambda API refusing every request (after the adapter's retries)
    mapping.fail = True
    # When a trip is reported
    answer = controller.on_report(trip(clock))
    # Then nothing raised, and the answer says why nothing changed
    assert "TooManyRequestsException" in answer["action"]


# Ticks: probe, half-open, close ------------------------------------------------------------


def test_each_tick_reads_once_and_probes_an_open_mapping(
    controller: Controller, mapping: FakeMapping, clock: FakeClock
) -> None:
    # Given an open mapping and a downstream still down
    mapping.state = "Disabled"
    probe = ScriptedProbe(up=False)
    # When three ticks run a minute apart
    for _ in range(3):
        controller.tick(probe)
        clock.advance(60)
    # Then each read the mapping once and probed once, and it stayed open
    assert (mapping.requests, probe.calls) == (3, 3)
    assert mapping.updates == []
    assert state_values() == [2, 2, 2]


def test_a_passing_probe_half_opens_it(
    controller: Controller, mapping: FakeMapping, clock: FakeClock
) -> None:
    # Given an open mapping
    mapping.state = "Disabled"
    # When the probe finds the downstream up
    answer = controller.tick(ScriptedProbe(up=True))
    # Then the mapping is enabled at the half-open concurrency: 2 requests for the transition
    assert mapping.updates == [("enable", ControllerPolicy().half_open(CONFIGURED))]
    assert mapping.requests == 2
    assert answer["breaker"] == "half-open"
    assert state_values() == [1]


def test_half_open_closes_after_a_quiet_minute(
    controller: Controller, mapping: FakeMapping, clock: FakeClock
) -> None:
    # Given a mapping half-opened by a passing probe
    mapping.state = "Disabled"
    controller.tick(ScriptedProbe(up=True))
    # When the next tick comes 30 s later, Then it is still half-open
    clock.advance(30)
    controller.tick(ScriptedProbe())
    assert mapping.concurrency == 3
    # When a minute has passed without a trip report, Then it closes
    clock.advance(30)
    controller.tick(ScriptedProbe())
    assert mapping.updates[-1] == ("enable", CONFIGURED)
    assert state_values()[-1] == 0


def test_a_trip_while_half_open_opens_it_again(
    controller: Controller, mapping: FakeMapping, clock: FakeClock
) -> None:
    # Given a half-open mapping
    mapping.state = "Disabled"
    controller.tick(ScriptedProbe(up=True))
    # When a trip is reported
    clock.advance(10)
    controller.on_report(trip(clock))
    # Then it is open again
    assert mapping.updates[-1] == ("disable", None)


# Never stuck: the maximum time open --------------------------------------------------------


def test_open_for_the_maximum_time_sweeps_the_queue_without_a_probe(
    mapping: FakeMapping, clock: FakeClock, visible: Visible
) -> None:
    # Given a 600 s retention (150 s the most the breaker may hold), a mapping open since now,
    # a probe that never passes (a 404 health check) and 40 messages visible
    controller = controller_for(mapping, clock, visible, retention=600)
    mapping.state, mapping.last_modified = "Disabled", clock.now
    visible.count = 40
    never = ScriptedProbe(up=False)
    # When the ticks run a minute apart until it has been open 150 s
    controller.tick(never)
    clock.advance(60)
    controller.tick(never)
    assert mapping.updates == []
    clock.advance(max_open_seconds(600) - 60)
    answer = controller.tick(never)
    # Then it half-opens without asking the probe: the expiry sweep
    assert answer["action"] == "expiry sweep"
    assert mapping.updates == [("enable", 3)]
    assert never.calls == 2


def test_trips_are_ignored_while_sweeping_then_the_probe_decides(
    mapping: FakeMapping, clock: FakeClock, visible: Visible
) -> None:
    # Given a sweep in progress with messages still visible
    controller = controller_for(mapping, clock, visible, retention=600)
    mapping.state, mapping.last_modified = "Disabled", clock.now - 150
    visible.count = 40
    controller.tick(ScriptedProbe())
    # When environments report trips (the downstream is still down)
    controller.on_report(trip(clock))
    clock.advance(60)
    controller.tick(ScriptedProbe())
    # Then the sweep goes on: every waiting message gets a receive (and its would-expire rule)
    assert mapping.updates == [("enable", 3)]
    # When no message is visible any more and the probe still fails
    visible.count = 0
    clock.advance(60)
    controller.tick(ScriptedProbe(up=False))
    # Then the mapping is open again, for at most another quarter of the retention
    assert mapping.updates[-1] == ("disable", None)


def test_without_a_sweep_a_probe_that_never_passes_would_keep_it_open(
    mapping: FakeMapping, clock: FakeClock
) -> None:
    # Given an open mapping short of its maximum time open
    controller = controller_for(mapping, clock, retention=600)
    mapping.state, mapping.last_modified = "Disabled", clock.now - 149
    # When the tick runs with a failing probe, Then it stays open (the bound is not reached)
    controller.tick(ScriptedProbe(up=False))
    assert mapping.updates == []


# Poison flood ------------------------------------------------------------------------------


def test_a_poison_flood_closes_it_after_three_retrips(
    controller: Controller, mapping: FakeMapping, clock: FakeClock
) -> None:
    # Given a downstream that is up (the probe passes) while most messages fail with 500
    up = ScriptedProbe(up=True)
    controller.on_report(trip(clock))
    for _ in range(3):
        clock.advance(60)
        controller.tick(up)  # open -> half-open
        clock.advance(5)
        controller.on_report(trip(clock))  # the poison trips it again at once
    # Then the third re-trip closes it, and trips are ignored for a while
    assert mapping.updates[-1] == ("enable", CONFIGURED)
    clock.advance(60)
    assert "poison-flood" in controller.on_report(trip(clock))["action"]
    assert mapping.updates[-1] == ("enable", CONFIGURED)
    # And after trust_probe_s, a trip opens it again
    clock.advance(ControllerPolicy().trust_probe_s)
    controller.on_report(trip(clock))
    assert last_update(mapping) == ("disable", None)


# The state on every tick -------------------------------------------------------------------


def test_an_unreadable_mapping_publishes_unknown(
    controller: Controller, mapping: FakeMapping
) -> None:
    # Given the Lambda API refusing the read
    mapping.fail = True
    # When the tick runs
    answer = controller.tick(ScriptedProbe())
    # Then the state is unknown, published as BreakerStateUnknown (no BreakerState: the alarm
    # treats the missing BreakerState as breaching)
    assert answer["breaker"] == "unknown"
    assert metrics.metric_set["BreakerStateUnknown"]["Value"] == [1]
    assert state_values() == []


# CircuitBreaker=Disabled: restore ----------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "concurrency"), [("Disabled", 10), ("Enabled", 3), ("Disabled", 3)]
)
def test_turned_off_the_controller_restores_the_mapping(
    mapping: FakeMapping, clock: FakeClock, state: str, concurrency: int
) -> None:
    # Given the breaker turned off while it held the mapping open or half-open
    controller = controller_for(mapping, clock, enabled=False)
    mapping.state, mapping.concurrency = state, concurrency
    # When the tick runs
    controller.tick(ScriptedProbe())
    # Then the mapping is enabled at the configured concurrency, and reports change nothing
    assert mapping.updates == [("enable", CONFIGURED)]
    controller.on_report(trip(clock))
    assert mapping.updates == [("enable", CONFIGURED)]


def test_turned_off_a_closed_mapping_is_left_alone(mapping: FakeMapping, clock: FakeClock) -> None:
    # Given the breaker off and the mapping as configured
    controller = controller_for(mapping, clock, enabled=False)
    # When the tick runs, Then it reads and changes nothing
    controller.tick(ScriptedProbe())
    assert (mapping.requests, mapping.updates) == (1, [])


def test_the_rules_are_shared(controller: Controller) -> None:
    # Given the controller's rules, Then they are the consumer's defaults (one copy)
    assert controller.settings.rules == TripRules()


def test_a_trip_during_the_controllers_own_transition_waits_for_the_next_tick(
    controller: Controller, mapping: FakeMapping, clock: FakeClock
) -> None:
    # Given a half-open the controller just asked for, still Enabling
    mapping.state, mapping.answer_state = "Disabled", "Enabling"
    controller.tick(ScriptedProbe(up=True))
    updates = list(mapping.updates)
    # When a trip is reported, Then no update is asked (it would be refused) ...
    clock.advance(5)
    assert controller.on_report(trip(clock))["action"] == "deferred: mapping Enabling"
    assert mapping.updates == updates
    # ...and once the half-open landed, the next tick opens it
    clock.advance(55)
    controller.tick(ScriptedProbe(up=True))
    assert last_update(mapping) == ("disable", None)


def test_a_slow_half_open_counts_from_its_landing(
    controller: Controller, mapping: FakeMapping, clock: FakeClock
) -> None:
    # Given a half-open asked for 60 s ago that landed only now (LastModified moved)
    mapping.state = "Disabled"
    controller.tick(ScriptedProbe(up=True))
    clock.advance(60)
    mapping.last_modified = clock.now
    # When the tick runs, Then it is not closed yet: it has not been half-open a minute
    controller.tick(ScriptedProbe())
    assert last_update(mapping) == ("enable", 3)


class LambdaContextStub:
    """What Powertools and the handler read from Lambda's context object."""

    function_name = "breaker-controller"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:breaker-controller"
    aws_request_id = "backstop-1"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 30_000


def test_a_backstop_tick_sweeps_a_mapping_open_past_the_maximum_time(
    mapping: FakeMapping, clock: FakeClock, visible: Visible, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a 600 s retention (150 s the most the breaker may hold), a mapping disabled 300 s
    # ago, and no Scheduler tick since (its schedule never fired: issue 17)
    controller = controller_for(mapping, clock, visible, retention=600)
    mapping.state, mapping.last_modified = "Disabled", clock.now - 300
    visible.count = 40
    probe = ScriptedProbe(up=False)
    monkeypatch.setattr(app, "get_wiring", lambda: (controller, lambda deadline: probe()))
    # When the EventBridge backstop rule's event reaches the controller's handler
    answer = app.lambda_handler(
        {"breakerProbe": {"trigger": "backstop"}},
        LambdaContextStub(),
    )
    # Then it is a tick: the expiry sweep half-opens the mapping without asking the probe
    assert answer["trigger"] == "backstop"
    assert answer["action"] == "expiry sweep"
    assert mapping.updates == [("enable", 3)]
    assert probe.calls == 0


def test_an_unknown_probe_event_is_refused_not_taken_for_a_tick(
    mapping: FakeMapping, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a mapping disabled past the maximum time open
    controller = controller_for(mapping, clock, retention=600)
    mapping.state, mapping.last_modified = "Disabled", clock.now - 300
    monkeypatch.setattr(app, "get_wiring", lambda: (controller, lambda deadline: ScriptedProbe()()))
    # When an event that is neither the schedule's nor the backstop's arrives
    answer = app.lambda_handler(
        {"breakerProbe": {"trigger": "someone"}},
        LambdaContextStub(),
    )
    # Then it is refused, saying so, and the mapping is untouched
    assert "error" in answer
    assert mapping.requests == 0
