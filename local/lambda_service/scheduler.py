"""EventBridge Scheduler and EventBridge rule schedules, emulated for those that target the
function.

The deployed schedules are read from the emulator's Scheduler API (ListSchedules, GetSchedule):
those ENABLED whose target is the function are invoked at their rate with their Input, in the
same execution environments as everything else. EventBridge Scheduler's Lambda target is the
templated target Lambda Invoke ("Using templated targets in EventBridge Scheduler"), which
invokes the function asynchronously: nobody waits for the answer, so each invocation runs on a
thread of its own and the next one comes at its time whatever the last one did.

Only rate expressions are emulated, as EventBridge documents them: `rate(value unit)`, value a
positive whole number, unit minute | minutes | hour | hours | day | days, singular for 1 and
plural above ("Rate expressions reference"). A cron or at expression is refused, not guessed.
A rate schedule's first invocation comes one period after it starts (Scheduler's own precision
is 60 s: "Schedule types in EventBridge Scheduler").

The local system hands each invocation to the Invoke router
(local.lambda_service.invoke_router), so the schedule reaches whichever function its target
names, in that function's own environments, with its reserved concurrency and Lambda's retries
of a failed asynchronous invocation.

EventBridge rules with a ScheduleExpression (the breaker's backstop, issue 17) are read from the
emulator's events API (ListRules, ListTargetsByRule) and run the same way: EventBridge invokes a
Lambda target asynchronously too, with the target's Input as the event.

Not emulated: FlexibleTimeWindow (the template's is OFF) and the target's RetryPolicy (the
template's allows no retry).
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Collection
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from local.lambda_service.execution_environment import Invocation, PoolClosedError

logger = logging.getLogger(__name__)

_RATE = re.compile(r"rate\((?P<value>[0-9]+) (?P<unit>[a-z]+)\)")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86_400}


class ScheduleError(ValueError):
    """A schedule the local emulation cannot run (or EventBridge Scheduler would refuse)."""


def rate_seconds(expression: str) -> float:
    """The period of a `rate(...)` expression, in seconds; ScheduleError for anything else."""
    match = _RATE.fullmatch(expression.strip())
    if match is None:
        raise ScheduleError(
            f"schedule expression {expression!r} is not emulated locally: only "
            "rate(value unit) is, with unit minute(s), hour(s) or day(s)"
        )
    value = int(match["value"])
    unit = match["unit"]
    singular = unit.removesuffix("s")
    if value < 1 or singular not in _UNIT_SECONDS:
        raise ScheduleError(
            f"{expression!r}: the value must be a positive whole number and the unit one of "
            "minute, minutes, hour, hours, day, days"
        )
    if (value == 1) != (unit == singular):
        raise ScheduleError(
            f"{expression!r}: EventBridge wants a singular unit for 1 and a plural one above "
            "(rate(1 minute), rate(5 minutes))"
        )
    return float(value * _UNIT_SECONDS[singular])


@dataclass(frozen=True)
class ScheduledTarget:
    """One deployed schedule that invokes the function."""

    name: str
    expression: str
    period_seconds: float
    # The event the function receives: the target's Input, parsed as JSON (Lambda's Invoke takes
    # a JSON payload), or {} without one.
    event: Any
    # The function the schedule invokes (its ARN); "" where one function is all there is.
    function_arn: str = ""
    # Who fires it: EventBridge Scheduler, or an EventBridge rule's schedule.
    source: str = "scheduler"

    @classmethod
    def from_schedule(
        cls, schedule: dict[str, Any], *, source: str = "scheduler"
    ) -> ScheduledTarget:
        text = schedule["Target"].get("Input")
        try:
            event = json.loads(text) if text is not None else {}
        except json.JSONDecodeError as error:
            raise ScheduleError(
                f"schedule {schedule['Name']}: its Input is not JSON, which Lambda's Invoke "
                f"refuses: {error}"
            ) from None
        return cls(
            name=str(schedule["Name"]),
            expression=str(schedule["ScheduleExpression"]),
            period_seconds=rate_seconds(str(schedule["ScheduleExpression"])),
            event=event,
            function_arn=str(schedule["Target"]["Arn"]),
            source=source,
        )


def rule_targets_of(events: Any, function_arns: Collection[str]) -> list[ScheduledTarget]:
    """The ENABLED scheduled EventBridge rules' targets that are one of the functions (by ARN)."""
    wanted = set(function_arns)
    targets: list[ScheduledTarget] = []
    for page in events.get_paginator("list_rules").paginate():
        for rule in page["Rules"]:
            expression = rule.get("ScheduleExpression")
            if not expression or rule.get("State", "ENABLED") != "ENABLED":
                continue
            listed = events.list_targets_by_rule(
                Rule=rule["Name"], EventBusName=rule.get("EventBusName", "default")
            )
            for target in listed["Targets"]:
                if target["Arn"] not in wanted:
                    continue
                targets.append(
                    ScheduledTarget.from_schedule(
                        {
                            "Name": rule["Name"],
                            "ScheduleExpression": expression,
                            "Target": target,
                        },
                        source="events-rule",
                    )
                )
    return targets


def targets_of(scheduler: Any, function_arns: str | Collection[str]) -> list[ScheduledTarget]:
    """The ENABLED schedules of every group whose target is one of the functions (by ARN)."""
    wanted = {function_arns} if isinstance(function_arns, str) else set(function_arns)
    targets: list[ScheduledTarget] = []
    for page in scheduler.get_paginator("list_schedules").paginate():
        for summary in page["Schedules"]:
            schedule = scheduler.get_schedule(
                Name=summary["Name"], GroupName=summary.get("GroupName", "default")
            )
            if schedule.get("State", "ENABLED") != "ENABLED":
                continue
            if schedule["Target"]["Arn"] not in wanted:
                continue
            targets.append(ScheduledTarget.from_schedule(schedule))
    return targets


class Invokable(Protocol):
    def invoke(self, event: Any, request_id: str | None = None) -> Invocation: ...


class Environments(Protocol):
    def environment(self) -> AbstractContextManager[Invokable]: ...


class AsyncInvoker(Protocol):
    """Lambda's asynchronous Invoke (local.lambda_service.invoke_router.InvokeRouter.submit)."""

    def submit(
        self, function: str, event: Any, on_first_attempt: Callable[[Invocation], None]
    ) -> bool:
        """Queue the event for `function`; False if no such function runs here."""
        ...


class Clock(Protocol):
    """Monotonic time and a wait that a stop (or, in tests, the test) can cut short."""

    def now(self) -> float: ...

    def wait_until(self, at: float, stopping: threading.Event) -> bool:
        """Wait until `at`; True if `stopping` was set first."""
        ...


class MonotonicClock:
    def now(self) -> float:
        return time.monotonic()

    def wait_until(self, at: float, stopping: threading.Event) -> bool:
        return stopping.wait(max(0.0, at - time.monotonic()))


@dataclass(frozen=True)
class ScheduledInvocation:
    schedule: str
    # Clock time the invocation was due.
    due_at: float
    invocation: Invocation


@dataclass(frozen=True)
class Followed:
    """What re-reading the schedules changed (SchedulerEmulator.follow)."""

    stopped: list[ScheduledTarget]
    started: list[ScheduledTarget]


class SchedulerEmulator:
    """Invokes each target at its rate until stopped; `follow` takes the deployed schedules as
    a stack update left them."""

    def __init__(
        self,
        targets: list[ScheduledTarget],
        pool: Environments,
        *,
        clock: Clock | None = None,
        on_invocation: Callable[[ScheduledInvocation], None] = lambda done: None,
        invoker: AsyncInvoker | None = None,
    ) -> None:
        self.targets = list(targets)
        self.pool = pool
        # With an invoker, each target's function gets the event through Lambda's asynchronous
        # Invoke (its own environments, reserved concurrency and retries); without, `pool` runs it.
        self.invoker = invoker
        self.clock = clock or MonotonicClock()
        self.on_invocation = on_invocation
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        # Each running target's own stop: a schedule a stack update removed stops alone.
        self._running: dict[tuple[str, str, str], tuple[ScheduledTarget, threading.Event]] = {}
        self.invocations: list[ScheduledInvocation] = []

    def start(self) -> None:
        with self._lock:
            for target in self.targets:
                self._start(target)

    def follow(self, targets: list[ScheduledTarget]) -> Followed:
        """The schedules as deployed now, as CloudFormation leaves them after an update: a
        schedule no longer there stops (no invocation starts after this), a new one starts its
        rate from now, a changed one (expression, input or target) stops and starts again, and
        an unchanged one keeps its grid."""
        wanted = {_key(target): target for target in targets}
        stopped: list[ScheduledTarget] = []
        started: list[ScheduledTarget] = []
        with self._lock:
            for key, (target, stop) in list(self._running.items()):
                if wanted.get(key) != target:
                    stop.set()
                    del self._running[key]
                    stopped.append(target)
            self.targets = list(targets)
            if self._stopping.is_set():
                return Followed(stopped, started)
            for key, target in wanted.items():
                if key not in self._running:
                    self._start(target)
                    started.append(target)
        return Followed(stopped, started)

    def _start(self, target: ScheduledTarget) -> None:
        stop = threading.Event()
        self._running[_key(target)] = (target, stop)
        thread = threading.Thread(
            target=self._run,
            args=(target, self.clock.now(), stop),
            name=f"schedule-{target.name}",
            daemon=True,
        )
        thread.start()
        self._threads.append(thread)

    def stop(self, wait_seconds: float = 1.0) -> None:
        """No invocation starts after this; one in progress ends with the pool's shutdown."""
        self._stopping.set()
        with self._lock:
            for _, stop in self._running.values():
                stop.set()
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout=wait_seconds)

    def _run(self, target: ScheduledTarget, started: float, stop: threading.Event) -> None:
        due = started + target.period_seconds
        while not self.clock.wait_until(due, stop):
            # Asynchronous, as Scheduler's Lambda Invoke: the schedule does not wait for it.
            threading.Thread(
                target=self._invoke,
                args=(target, due, stop),
                name=f"scheduled-{target.name}",
                daemon=True,
            ).start()
            # A rate schedule keeps its grid: a late tick does not shift the next ones.
            due += target.period_seconds

    def _invoke(self, target: ScheduledTarget, due: float, stop: threading.Event) -> None:
        # A schedule stopped (or removed by an update) after its tick came invokes nothing.
        if stop.is_set():
            return
        if self.invoker is not None and self.invoker.submit(
            target.function_arn,
            target.event,
            lambda invocation: self._done(target, due, invocation),
        ):
            return
        try:
            with self.pool.environment() as environment:
                invocation = environment.invoke(target.event)
        except PoolClosedError:
            return
        self._done(target, due, invocation)

    def _done(self, target: ScheduledTarget, due: float, invocation: Invocation) -> None:
        done = ScheduledInvocation(target.name, due, invocation)
        with self._lock:
            self.invocations.append(done)
        if not invocation.succeeded:
            # Lambda would retry an asynchronous invocation as the function's
            # EventInvokeConfig says and then send it to its OnFailure destination: neither is
            # emulated here, so the failure is said.
            logger.error(
                "scheduled invocation failed",
                extra={
                    "fields": {
                        "schedule": target.name,
                        "outcome": invocation.outcome,
                        "error": invocation.error,
                    }
                },
            )
        self.on_invocation(done)


def _key(target: ScheduledTarget) -> tuple[str, str, str]:
    """A schedule's identity: a Scheduler schedule and an EventBridge rule may share a name,
    and one rule may have several targets."""
    return (target.source, target.name, target.function_arn)
