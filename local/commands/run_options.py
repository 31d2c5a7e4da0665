"""What a local run is asked to do (RunOptions, with the demo's defaults) and what it gives back
(Ready once it is up, RunResult at the end): the contract between the commands and system.py."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local.aws.control_plane import DEFAULT_TRANSITION_SECONDS
from local.aws.deploy import DeployedStack
from local.aws.emulator import Emulator
from local.aws.samconfig import AppliedOverrides
from local.aws.stack_updates import AppliedUpdate, StackUpdate
from local.aws.template import BUILD_DIR
from local.checks.function_calls import FunctionCalls
from local.checks.mapping_timeline import Transition
from local.checks.reconciliation import DeadLetter, Reconciliation
from local.commands.send import generated_bodies
from local.downstream.demo_downstream import Call
from local.downstream.faults import FaultLog, FaultPlan
from local.lambda_service.event_source_mapping import BatchReport, MappingState, Receive
from local.lambda_service.scheduler import ScheduledInvocation
from local.shared.paths import ROOT

STACK_NAME = "sqs-backoff-consumer"
WORK_DIR = ROOT / ".aws-sam" / "local-run"
# RunOptions field -> the template parameter it sets (DownstreamUrl is always the downstream's).
FIELD_PARAMETERS = {
    "downstream_timeout_seconds": "DownstreamTimeoutSeconds",
    "max_receive_count": "MaxReceiveCount",
    "backoff_base_seconds": "BackoffBaseSeconds",
    "backoff_jitter_seconds": "BackoffJitterSeconds",
    "queue_type": "QueueType",
    "idempotent_delivery": "IdempotentDelivery",
}
# The demo downstream's health path: the breaker's probe URL in a local run.
PROBE_PATH = "/health"
# --probe-fault values: the probe URL answers 404 for ever, or the Scheduler schedule never fires
# (the EventBridge backstop rule still does).
PROBE_FAULTS = ("404", "never")


@dataclass(frozen=True)
class RunOptions:
    """The demo's defaults: about half a minute of retries, recoveries and dead letters."""

    messages: int = 20
    failure_rate: float = 0.4
    outage_seconds: float = 3.0
    latency_ms: int = 20
    max_receive_count: int = 4
    backoff_base_seconds: int = 1
    backoff_jitter_seconds: int = 3
    # With these defaults seed 1 makes every call for one message fail, whatever the timing.
    seed: str = "1"
    # Template parameter DownstreamTimeoutSeconds: the function's read timeout.
    downstream_timeout_seconds: int = 10
    # Messages sent per second; 0 sends them all at once.
    send_rate: float = 0.0
    # With a send rate: hold the send while more than this many messages wait visible (0: never).
    # A producer that outruns the pollers only grows a backlog, which slows the emulator (its
    # operations walk the whole queue) and so the run, without showing anything new.
    max_visible_backlog: int = 0
    # Fraction of the messages whose body is not JSON (poison: dead-lettered by the function).
    poison_fraction: float = 0.0
    # Overrides the source queue's VisibilityTimeout after the deploy (None: the template's).
    visibility_timeout_seconds: int | None = None
    faults: FaultPlan = field(default_factory=FaultPlan)
    # Template parameter QueueType; a FIFO run spreads its messages over `fifo_groups` groups.
    queue_type: str = "standard"
    fifo_groups: int = 4
    # Template parameter IdempotentDelivery (Enabled or Disabled).
    idempotent_delivery: str = "Disabled"
    # Template parameter CircuitBreaker (Enabled or Disabled); None: the template's default.
    circuit_breaker: str | None = None
    # After the send, while the circuit breaker is open or half-open, one more message every
    # this many seconds (0: none): the breaker closes on traffic (60 s of calls in half-open
    # without holding any back), which a producer that stopped sending never gives it.
    trickle_seconds: float = 0.0
    # Values of template parameters the run has no field for (samconfig ENV's overrides).
    template_parameters: Mapping[str, str] = field(default_factory=dict)
    # What samconfig ENV contributed, printed before the deploy (None: no ENV was asked for).
    config_env: AppliedOverrides | None = None
    build_dir: Path = BUILD_DIR
    work_dir: Path = WORK_DIR
    stack_name: str = STACK_NAME
    # The emulator's port (0: a free one); `make up` serves on a fixed one.
    port: int = 0
    # The user's own downstream instead of the demo one (whose answers the run then cannot
    # see: a message counts as delivered when the function reported it done, not dead-lettered).
    downstream_url: str | None = None
    # Stay up after the send until interrupted (`make up`) instead of ending when idle.
    until_interrupted: bool = False
    # Template parameter SourceQueueRetentionSeconds (None: the template's); the emulator
    # expires messages at it.
    source_retention_seconds: int | None = None
    # "404": the probe URL answers 404 whatever the outage; "never": no schedule fires.
    probe_fault: str | None = None
    # How long the emulated event source mapping stays Disabling, Enabling or Updating.
    mapping_transition_seconds: float = DEFAULT_TRANSITION_SECONDS
    # Stack updates applied mid-run, each once its number of messages was delivered.
    stack_updates: tuple[StackUpdate, ...] = ()

    def parameter_overrides(
        self, downstream_url: str, probe_url: str | None = None
    ) -> dict[str, Any]:
        """The template parameters of the run; `probe_url` (the demo downstream's health path)
        becomes BreakerProbeUrl unless samconfig's ENV set one."""
        return (
            {
                **self.template_parameters,
                "DownstreamUrl": downstream_url,
                **{name: getattr(self, field) for field, name in FIELD_PARAMETERS.items()},
            }
            | ({"CircuitBreaker": self.circuit_breaker} if self.circuit_breaker else {})
            | (
                {"SourceQueueRetentionSeconds": self.source_retention_seconds}
                if self.source_retention_seconds is not None
                else {}
            )
            | (
                {"BreakerProbeUrl": probe_url}
                if probe_url and not self.template_parameters.get("BreakerProbeUrl")
                else {}
            )
        )

    def bodies(self) -> list[str]:
        """The generated bodies, a seeded `poison_fraction` of them not JSON."""
        draws = random.Random(f"{self.seed}|poison")
        return [
            f"not json: {body}" if draws.random() < self.poison_fraction else body
            for body in generated_bodies(self.messages)
        ]


@dataclass(frozen=True)
class Ready:
    """What a client outside the process needs to talk to the running system."""

    emulator: Emulator
    deployed: DeployedStack
    downstream_url: str
    log_dir: Path


@dataclass
class RunResult:
    reconciliation: Reconciliation
    # message id -> body, for every message sent.
    sent: dict[str, str]
    calls: list[Call]
    dead_letters: list[DeadLetter]
    batches: list[BatchReport]
    deployed: DeployedStack
    environments_started: int
    elapsed_seconds: float
    deadline_reached: bool
    # From the first send to the end of the last invocation: the messages' own time, without
    # the deploy before it and the reconciliation after it.
    moving_seconds: float = 0.0
    # CPU of this process (emulator, pollers, demo downstream), not of the execution
    # environments: the local system's own cost, in all and in the moving phase (moving_seconds).
    cpu_seconds: float = 0.0
    moving_cpu_seconds: float = 0.0
    # Every delivery to the mapping, the faults injected, the visibility changes made.
    receives: list[Receive] = field(default_factory=list)
    fault_log: FaultLog = field(default_factory=FaultLog)
    queue_visibility_timeout_seconds: float = 0.0
    # (monotonic seconds, visible messages on the source queue), sampled by the progress loop.
    queue_samples: list[tuple[float, int]] = field(default_factory=list)
    # Receipt handle -> when the emulator handed it out (monotonic seconds): where the queue's
    # visibility timeout started. Carried in the result because the checks may judge it in
    # another process (the end-to-end soak runs in a spawned one), where the emulator's own
    # record is empty.
    handed_out: dict[str, float] = field(default_factory=dict)
    # The run's function logs (options.work_dir / "logs"), for checks made from the result
    # alone, with other options than the run's (the end-to-end soak's).
    log_dir: Path | None = None
    notes: list[str] = field(default_factory=list)
    # With IdempotentDelivery=Enabled: the outcomes the function recorded in its table.
    recorded_outcomes: int | None = None
    # A FIFO run: (message id, group) in send order, and the delivered messages out of order.
    groups: list[tuple[str, str]] = field(default_factory=list)
    out_of_order: tuple[str, ...] = ()
    # Stopped by Ctrl-C (SIGINT) rather than by an idle queue or the deadline.
    interrupted: bool = False
    # Messages removed from the DLQ while the system was up (make redrive ENV=local).
    removed_from_dlq: int = 0
    # False with the user's own downstream: delivered means reported done by the function.
    downstream_observed: bool = True
    # The breaker's transitions as the mapping's state showed them, how long the mapping was
    # disabled, and the invocations of the emulated schedules (the breaker's probes).
    transitions: list[Transition] = field(default_factory=list)
    mapping_disabled_seconds: float = 0.0
    scheduled_invocations: list[ScheduledInvocation] = field(default_factory=list)
    # (monotonic seconds, status) of the breaker's HEAD probes the downstream answered.
    probes: list[tuple[float, int]] = field(default_factory=list)
    # (monotonic seconds, state) of the mapping from the start, as the pollers followed it.
    mapping_states: list[tuple[float, MappingState]] = field(default_factory=list)
    # The account's requests to Lambda's control plane (the summary's control_plane_calls), how
    # many of them were throttled, the most in one second, and the local system's own reads
    # (spending no budget).
    control_plane_calls: int = 0
    control_plane_throttled: int = 0
    control_plane_peak_per_second: int = 0
    bookkeeping_calls: int = 0
    # Messages the source queue expired at its retention (gone: lost).
    expired: tuple[str, ...] = ()
    # Asynchronous invocations of each function other than the consumer, by logical id.
    other_invocations: dict[str, int] = field(default_factory=dict)
    # With the user's own downstream: the calls and probes the function's logs report.
    reported_calls: FunctionCalls | None = None
    # The stack updates of the run (--stack-update), applied or refused, in order.
    stack_updates: list[AppliedUpdate] = field(default_factory=list)

    @property
    def lost(self) -> int:
        return len(self.reconciliation.lost)

    @property
    def unfinished(self) -> int:
        return len(self.reconciliation.unfinished)
