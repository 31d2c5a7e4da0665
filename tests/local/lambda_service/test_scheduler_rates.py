"""The emulated EventBridge Scheduler and EventBridge rule schedules: rate expressions, and
invocations at the rate with the schedule's Input, on a clock the test moves."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local.commands.system import fires
from local.lambda_service.execution_environment import Invocation
from local.lambda_service.invoke_router import InvokeRouter, LocalFunction
from local.lambda_service.scheduler import (
    ScheduledInvocation,
    ScheduledTarget,
    ScheduleError,
    SchedulerEmulator,
    rate_seconds,
    rule_targets_of,
)

DEADLINE = 10.0


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [
        ("rate(1 minute)", 60),
        ("rate(5 minutes)", 300),
        ("rate(1 hour)", 3600),
        ("rate(2 days)", 172_800),
    ],
)
def test_rate_expressions_as_eventbridge_documents_them(expression: str, seconds: float) -> None:
    assert rate_seconds(expression) == seconds


@pytest.mark.parametrize(
    ("expression", "complaint"),
    [
        ("cron(0 20 * * ? *)", "not emulated locally"),
        ("at(2026-01-01T00:00:00)", "not emulated locally"),
        ("rate(1 minutes)", "singular unit for 1"),
        ("rate(5 minute)", "singular unit for 1"),
        ("rate(0 minutes)", "positive whole number"),
        ("rate(30 seconds)", "positive whole number"),
        ("rate(1.5 hours)", "not emulated locally"),
    ],
)
def test_other_expressions_are_refused_clearly(expression: str, complaint: str) -> None:
    with pytest.raises(ScheduleError, match=complaint):
        rate_seconds(expression)


def test_an_input_that_is_not_json_is_refused() -> None:
    schedule = {
        "Name": "probe",
        "ScheduleExpression": "rate(1 minute)",
        "Target": {"Arn": "arn", "Input": "{not json"},
    }
    with pytest.raises(ScheduleError, match="Input is not JSON"):
        ScheduledTarget.from_schedule(schedule)


class FakeClock:
    """Time moves only when the test says; waiters are counted so the test knows the scheduler
    is parked on its next due time."""

    def __init__(self) -> None:
        self._now = 1000.0
        self._changed = threading.Condition()
        self.waiting_for: list[float] = []

    def now(self) -> float:
        with self._changed:
            return self._now

    def wait_until(self, at: float, stopping: threading.Event) -> bool:
        with self._changed:
            self.waiting_for.append(at)
            self._changed.notify_all()
            while self._now < at and not stopping.is_set():
                self._changed.wait(0.05)
            self.waiting_for.remove(at)
            return stopping.is_set()

    def advance_to(self, at: float) -> None:
        with self._changed:
            self._now = at
            self._changed.notify_all()

    def wait_parked_at(self, at: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: at in self.waiting_for, DEADLINE)


class Pool:
    def __init__(self) -> None:
        self.events: list[Any] = []
        self.done = threading.Condition()

    @contextmanager
    def environment(self) -> Iterator[Pool]:
        yield self

    def invoke(self, event: Any, request_id: str | None = None) -> Invocation:
        with self.done:
            self.events.append(event)
        return Invocation("r", "response", 0.01, False, response={"state": "closed"})


def test_the_target_is_invoked_at_its_rate_with_its_input() -> None:
    # Given a schedule rate(1 minute) with the breaker probe's Input, started at t=1000
    clock, pool = FakeClock(), Pool()
    done: list[ScheduledInvocation] = []
    arrived = threading.Condition()

    def on_invocation(invocation: ScheduledInvocation) -> None:
        with arrived:
            done.append(invocation)
            arrived.notify_all()

    target = ScheduledTarget("probe", "rate(1 minute)", 60.0, {"breakerProbe": {}})
    scheduler = SchedulerEmulator([target], pool, clock=clock, on_invocation=on_invocation)
    scheduler.start()
    try:
        # When 59 s pass, Then nothing is invoked: the scheduler waits for t=1060
        assert clock.wait_parked_at(1060)
        clock.advance_to(1059)
        assert clock.wait_parked_at(1060)
        assert pool.events == []

        # When the minute is up, and then another, Then it is invoked once each time
        clock.advance_to(1060)
        assert clock.wait_parked_at(1120)
        clock.advance_to(1120)
        assert clock.wait_parked_at(1180)
        with arrived:
            assert arrived.wait_for(lambda: len(done) == 2, DEADLINE)
    finally:
        scheduler.stop()

    # ...with the schedule's Input as the event, due on the minute grid
    assert pool.events == [{"breakerProbe": {}}, {"breakerProbe": {}}]
    assert sorted(d.due_at for d in done) == [1060, 1120]
    assert all(d.invocation.succeeded for d in done)


def test_a_late_clock_fires_each_missed_tick_and_keeps_the_grid() -> None:
    # Given a schedule every 5 minutes
    clock, pool = FakeClock(), Pool()
    target = ScheduledTarget("every5", "rate(5 minutes)", 300.0, {})
    scheduler = SchedulerEmulator([target], pool, clock=clock)
    scheduler.start()
    try:
        assert clock.wait_parked_at(1300)
        # When the clock jumps past two due times at once
        clock.advance_to(1650)
        # Then the scheduler next waits on the grid (t=1900), not 5 minutes after the jump
        assert clock.wait_parked_at(1900)
    finally:
        scheduler.stop()


class Invoker:
    """Lambda's asynchronous Invoke, as the Invoke router takes it: by the target's function."""

    def __init__(self, known: str) -> None:
        self.known = known
        self.submitted: list[tuple[str, Any]] = []

    def submit(
        self, function: str, event: Any, on_first_attempt: Callable[[Invocation], None]
    ) -> bool:
        if function != self.known:
            return False
        self.submitted.append((function, event))
        on_first_attempt(Invocation("r", "response", 0.01, False, response=None))
        return True


def test_each_target_reaches_the_function_it_names_through_the_invoker() -> None:
    # Given the probe's schedule targeting the controller, and an invoker that runs it
    controller = "arn:aws:lambda:us-east-1:123456789012:function:controller"
    clock, pool, invoker = FakeClock(), Pool(), Invoker(controller)
    done: list[ScheduledInvocation] = []
    arrived = threading.Condition()

    def on_invocation(invocation: ScheduledInvocation) -> None:
        with arrived:
            done.append(invocation)
            arrived.notify_all()

    target = ScheduledTarget("probe", "rate(1 minute)", 60.0, {"breakerProbe": {}}, controller)
    scheduler = SchedulerEmulator(
        [target], pool, clock=clock, on_invocation=on_invocation, invoker=invoker
    )
    scheduler.start()
    try:
        # When its minute comes
        assert clock.wait_parked_at(1060)
        clock.advance_to(1060)
        with arrived:
            assert arrived.wait_for(lambda: len(done) == 1, DEADLINE)
    finally:
        scheduler.stop()
    # Then the controller got the event through the invoker, and the consumer's pool nothing
    assert invoker.submitted == [(controller, {"breakerProbe": {}})]
    assert pool.events == []
    assert done[0].due_at == 1060


CONTROLLER_ARN = "arn:aws:lambda:us-east-1:123456789012:function:controller"
BACKSTOP_INPUT = {"breakerProbe": {"trigger": "backstop"}}


def _deployed_rules() -> list[ScheduledTarget]:
    """The rules as the stack deploys them (the backstop) among others that must not fire."""
    events = boto3.client("events", region_name="us-east-1")
    events.put_rule(Name="backstop", ScheduleExpression="rate(5 minutes)", State="ENABLED")
    events.put_targets(
        Rule="backstop",
        Targets=[{"Id": "c", "Arn": CONTROLLER_ARN, "Input": json.dumps(BACKSTOP_INPUT)}],
    )
    # A disabled rule, a rule for another function, and an event-pattern rule: none fires.
    events.put_rule(Name="off", ScheduleExpression="rate(1 minute)", State="DISABLED")
    events.put_targets(Rule="off", Targets=[{"Id": "c", "Arn": CONTROLLER_ARN}])
    events.put_rule(Name="other", ScheduleExpression="rate(1 minute)", State="ENABLED")
    events.put_targets(
        Rule="other", Targets=[{"Id": "o", "Arn": CONTROLLER_ARN.replace("controller", "x")}]
    )
    events.put_rule(Name="pattern", EventPattern=json.dumps({"source": ["aws.s3"]}))
    events.put_targets(Rule="pattern", Targets=[{"Id": "c", "Arn": CONTROLLER_ARN}])
    return rule_targets_of(events, [CONTROLLER_ARN])


@mock_aws
def test_an_eventbridge_rule_schedule_fires_through_the_invoke_router() -> None:
    # Given the backstop rule deployed in the emulator's events API, among rules that must not
    # fire, and the controller registered with the Invoke router (reserved concurrency 1)
    [target] = _deployed_rules()
    assert (target.name, target.period_seconds, target.source) == ("backstop", 300.0, "events-rule")
    assert target.event == BACKSTOP_INPUT
    router = InvokeRouter(clock=lambda: 0.0)
    environments = Pool()
    router.register(
        LocalFunction("controller", CONTROLLER_ARN, environments, reserved_concurrency=1)
    )
    clock = FakeClock()
    done: list[ScheduledInvocation] = []
    arrived = threading.Condition()

    def on_invocation(invocation: ScheduledInvocation) -> None:
        with arrived:
            done.append(invocation)
            arrived.notify_all()

    scheduler = SchedulerEmulator(
        [target], Pool(), clock=clock, on_invocation=on_invocation, invoker=router
    )
    scheduler.start()
    try:
        # When its 5 minutes come
        assert clock.wait_parked_at(1300)
        clock.advance_to(1300)
        with arrived:
            assert arrived.wait_for(lambda: len(done) == 1, DEADLINE)
    finally:
        scheduler.stop()
        router.stop()
    # Then the controller's environments ran the rule's Input, through the router, once
    assert environments.events == [BACKSTOP_INPUT]
    assert done[0].due_at == 1300
    assert done[0].invocation.succeeded


def test_probe_fault_never_silences_the_scheduler_schedule_not_the_backstop_rule() -> None:
    # Given the Scheduler schedule and the EventBridge backstop rule, both for the controller
    schedule = ScheduledTarget("probe", "rate(1 minute)", 60.0, {"breakerProbe": {}})
    backstop = ScheduledTarget(
        "backstop", "rate(5 minutes)", 300.0, BACKSTOP_INPUT, CONTROLLER_ARN, "events-rule"
    )
    # Then --probe-fault never silences the schedule only; without it, both fire
    assert [fires(t, "never") for t in (schedule, backstop)] == [False, True]
    assert [fires(t, None) for t in (schedule, backstop)] == [True, True]


def test_following_an_update_stops_removed_schedules_and_starts_added_ones() -> None:
    # Given the probe's schedule (every minute) and the backstop rule (every 5 minutes), running
    # since t=1000
    clock, pool = FakeClock(), Pool()
    done: list[ScheduledInvocation] = []
    arrived = threading.Condition()

    def on_invocation(invocation: ScheduledInvocation) -> None:
        with arrived:
            done.append(invocation)
            arrived.notify_all()

    probe = ScheduledTarget("probe", "rate(1 minute)", 60.0, {"breakerProbe": {}})
    backstop = ScheduledTarget(
        "backstop", "rate(5 minutes)", 300.0, BACKSTOP_INPUT, CONTROLLER_ARN, "events-rule"
    )
    scheduler = SchedulerEmulator([probe, backstop], pool, clock=clock, on_invocation=on_invocation)
    scheduler.start()
    try:
        assert clock.wait_parked_at(1060)
        assert clock.wait_parked_at(1300)

        # When a stack update at t=1030 removed the backstop and added a schedule every 2 minutes
        clock.advance_to(1030)
        added = ScheduledTarget("added", "rate(2 minutes)", 120.0, {"added": 1})
        followed = scheduler.follow([probe, added])

        # Then the backstop stopped and the new schedule started, its rate counted from the update
        assert (followed.stopped, followed.started) == ([backstop], [added])
        assert clock.wait_parked_at(1150)
        with clock._changed:
            assert clock._changed.wait_for(lambda: 1300 not in clock.waiting_for, DEADLINE)
        # ...while the unchanged probe kept its grid
        assert 1060 in clock.waiting_for

        # When the clock reaches t=1300, the backstop's due time
        clock.advance_to(1300)
        with arrived:
            assert arrived.wait_for(lambda: len(done) == 5 + 2, DEADLINE)
    finally:
        scheduler.stop()
    # Then the probe fired on its minutes, the added schedule on its own, the backstop never
    fired = sorted((d.schedule, d.due_at) for d in done)
    assert fired == [
        ("added", 1150), ("added", 1270),
        ("probe", 1060), ("probe", 1120), ("probe", 1180), ("probe", 1240), ("probe", 1300),
    ]  # fmt: skip
    assert BACKSTOP_INPUT not in pool.events


def test_a_schedule_an_update_changed_restarts_with_its_new_input() -> None:
    # Given the probe's schedule running since t=1000
    clock, pool = FakeClock(), Pool()
    probe = ScheduledTarget("probe", "rate(1 minute)", 60.0, {"breakerProbe": {}})
    scheduler = SchedulerEmulator([probe], pool, clock=clock)
    scheduler.start()
    try:
        assert clock.wait_parked_at(1060)
        # When an update at t=1010 changed its Input, and a second follow saw nothing new
        clock.advance_to(1010)
        changed = ScheduledTarget("probe", "rate(1 minute)", 60.0, {"breakerProbe": {"v": 2}})
        first = scheduler.follow([changed])
        again = scheduler.follow([changed])
        # Then the old one stopped and the new one started from the update; then nothing moved
        assert (first.stopped, first.started) == ([probe], [changed])
        assert (again.stopped, again.started) == ([], [])
        assert clock.wait_parked_at(1070)
    finally:
        scheduler.stop()
