"""Stack updates in the middle of a local run: `make run RUN_ARGS="--stack-update 10:BatchSize=5"`
updates the deployed stack once 10 messages were delivered, as `make deploy` would update it in
AWS (UpdateStack, the other parameters keeping their values), and the running system follows:

- the event source mapping's pollers read the mapping every second, and take its new BatchSize,
  batching window, state and MaximumConcurrency from there
  (local.lambda_service.event_source_mapping);
- a changed function configuration (environment, timeout, memory) reaches new invocations:
  idle execution environments of the old one are shut down, busy ones when they finish, as
  Lambda starts new environments after UpdateFunctionConfiguration;
- the EventBridge Scheduler schedules and scheduled EventBridge rules are read again: one the
  update removed stops firing, one it added starts, a changed one restarts with its new
  settings, and the other functions' configurations are followed as the consumer's;
- an update that would replace the source queue (a QueueType switch) is refused before the
  emulator is asked (local.aws.queue_replacement), and the run carries on as it was.

An update is due once N messages were delivered (`N:Key=Value`), or once the circuit breaker
is in a state (`open:Key=Value`, `half-open:Key=Value`): an outage delivers nothing, so only
the breaker's state can place an update inside one.

Each update prints one line (`update     ...`) and is kept in the run's result. Whatever the
update does to the messages, the reconciliation at the end judges: nothing may be lost.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from local.aws.deploy import DeployedStack, DeployError, UpdateRefused, update
from local.aws.emulator import Emulator
from local.aws.samconfig import SamconfigError, check_names, describe, parse_parameter_overrides
from local.aws.template import SOURCE_TEMPLATE, ParameterError, load_template

# The breaker states an update can wait for (local.checks.mapping_timeline's names).
BREAKER_TRIGGERS = ("open", "half-open")


@dataclass(frozen=True)
class StackUpdate:
    """Template parameters to change once `after_delivered` messages were delivered, or, with
    `when_breaker`, once the circuit breaker is in that state."""

    after_delivered: int
    overrides: Mapping[str, str]
    when_breaker: str | None = None

    @classmethod
    def parse(cls, text: str) -> StackUpdate:
        """`N:Key=Value Key2=Value2` (or `open:...`, `half-open:...`), the pairs as the SAM
        CLI's --parameter-overrides reads them; ValueError saying what is wrong."""
        trigger, separator, pairs = text.partition(":")
        trigger = trigger.strip()
        if not separator or not (trigger.isdigit() or trigger in BREAKER_TRIGGERS):
            raise ValueError(
                f"{text!r}: expected N:Key=Value ..., N the messages delivered before the "
                f"update, or {' or '.join(BREAKER_TRIGGERS)} instead of N: once the circuit "
                "breaker is in that state"
            )
        try:
            overrides = parse_parameter_overrides(pairs.strip() or None)
        except SamconfigError as error:
            raise ValueError(f"{text!r}: {error}") from None
        if not overrides:
            raise ValueError(f"{text!r}: no Key=Value pair to update")
        try:
            check_names(overrides, load_template(SOURCE_TEMPLATE)["Parameters"], "--stack-update")
        except SamconfigError as error:
            raise ValueError(str(error)) from None
        if trigger in BREAKER_TRIGGERS:
            return cls(0, overrides, when_breaker=trigger)
        return cls(int(trigger), overrides)

    def due(self, delivered: int, breaker: str) -> bool:
        if self.when_breaker is not None:
            return breaker == self.when_breaker
        return self.after_delivered <= delivered

    def render(self) -> str:
        when = (
            f"once the breaker is {self.when_breaker}"
            if self.when_breaker is not None
            else f"after {self.after_delivered} delivered"
        )
        return f"{when}: {describe(self.overrides)}"


@dataclass(frozen=True)
class AppliedUpdate:
    update: StackUpdate
    # "UPDATE_COMPLETE", "no change", "refused" (before the emulator was asked) or "failed".
    status: str
    detail: str = ""
    # Monotonic seconds when it ended.
    at: float = 0.0
    # What the running system changed to follow it (functions, schedules), one line each.
    followed: tuple[str, ...] = ()


@dataclass
class StackUpdater:
    """Applies the run's updates in order as they come due. `on_updated` is given each updated
    stack (the run follows it: functions, schedules) and says what it changed."""

    emulator: Emulator
    build_dir: Path
    deployed: DeployedStack
    pending: list[StackUpdate]
    on_updated: Callable[[DeployedStack, DeployedStack], list[str]]
    applied: list[AppliedUpdate] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def apply_due(self, delivered: int, breaker: str = "closed") -> list[AppliedUpdate]:
        """Apply, in order, the updates due with `delivered` messages delivered and the breaker
        in `breaker`; what each did."""
        done: list[AppliedUpdate] = []
        with self._lock:
            while self.pending and self.pending[0].due(delivered, breaker):
                done.append(self._apply(self.pending.pop(0)))
            self.applied.extend(done)
        return done

    def _apply(self, stack_update: StackUpdate) -> AppliedUpdate:
        before = self.deployed
        try:
            after = update(self.emulator, self.build_dir, before, stack_update.overrides)
        except (UpdateRefused, ParameterError) as error:
            # Refused before the emulator was asked: the stack and the run are as they were.
            return AppliedUpdate(stack_update, "refused", str(error), time.monotonic())
        except (DeployError, BotoCoreError, ClientError) as error:
            # The emulator failed the update: the run goes on with what the stack became, and
            # its reconciliation still judges every message.
            return AppliedUpdate(stack_update, "failed", str(error), time.monotonic())
        if after is before:
            return AppliedUpdate(stack_update, "no change", "", time.monotonic())
        self.deployed = after
        followed = self.on_updated(before, after)
        return AppliedUpdate(
            stack_update,
            "UPDATE_COMPLETE",
            _changes(before, after),
            time.monotonic(),
            tuple(followed),
        )


def _changes(before: DeployedStack, after: DeployedStack) -> str:
    changed = {
        name: value
        for name, value in after.parameters.items()
        if before.parameters.get(name) != value
    }
    return describe(changed)


def function_changed(before: Mapping[str, Any], after: Mapping[str, Any]) -> bool:
    """Whether the function's configuration changed in what an execution environment uses."""
    keys = ("Environment", "Timeout", "MemorySize", "Handler", "Runtime", "Layers")
    return any(before.get(key) != after.get(key) for key in keys)
