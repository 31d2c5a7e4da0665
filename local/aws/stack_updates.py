"""Stack updates in the middle of a local run: `make run RUN_ARGS="--stack-update 10:BatchSize=5"`
updates the deployed stack once 10 messages were delivered, as `make deploy` would update it in
AWS (UpdateStack, the other parameters keeping their values), and the running system follows:

- the event source mapping's pollers read the mapping every second, and take its new BatchSize,
  batching window, state and MaximumConcurrency from there
  (local.lambda_service.event_source_mapping);
- a changed function configuration (environment, timeout, memory) reaches new invocations:
  idle execution environments of the old one are shut down, busy ones when they finish, as
  Lambda starts new environments after UpdateFunctionConfiguration;
- an update that would replace the source queue (a QueueType switch) is refused before the
  emulator is asked (local.aws.queue_replacement), and the run carries on as it was.

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


@dataclass(frozen=True)
class StackUpdate:
    """Template parameters to change once `after_delivered` messages were delivered."""

    after_delivered: int
    overrides: Mapping[str, str]

    @classmethod
    def parse(cls, text: str) -> StackUpdate:
        """`N:Key=Value Key2=Value2`, the pairs as the SAM CLI's --parameter-overrides reads
        them; ValueError saying what is wrong."""
        count, separator, pairs = text.partition(":")
        if not separator or not count.strip().isdigit():
            raise ValueError(
                f"{text!r}: expected N:Key=Value ..., N the messages delivered before the update"
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
        return cls(int(count), overrides)

    def render(self) -> str:
        return f"after {self.after_delivered} delivered: {describe(self.overrides)}"


@dataclass(frozen=True)
class AppliedUpdate:
    update: StackUpdate
    # "UPDATE_COMPLETE", "no change", "refused" (before the emulator was asked) or "failed".
    status: str
    detail: str = ""
    # Monotonic seconds when it ended.
    at: float = 0.0


@dataclass
class StackUpdater:
    """Applies the run's updates in order as deliveries reach their thresholds. `on_updated` is
    given each updated stack (the run re-points what follows the function's configuration)."""

    emulator: Emulator
    build_dir: Path
    deployed: DeployedStack
    pending: list[StackUpdate]
    on_updated: Callable[[DeployedStack, DeployedStack], None]
    applied: list[AppliedUpdate] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def apply_due(self, delivered: int) -> list[AppliedUpdate]:
        """Apply the updates whose threshold `delivered` reached; what each did."""
        done: list[AppliedUpdate] = []
        with self._lock:
            while self.pending and self.pending[0].after_delivered <= delivered:
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
        self.on_updated(before, after)
        return AppliedUpdate(
            stack_update, "UPDATE_COMPLETE", _changes(before, after), time.monotonic()
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
