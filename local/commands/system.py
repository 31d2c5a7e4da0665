"""The whole system, locally: deploy, start the demo downstream, send, poll, watch, reconcile."""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, TextIO

from local.aws.control_plane import LambdaControlPlane
from local.aws.deploy import DeployedFunction, DeployedStack, DeployError, deploy
from local.aws.emulator import Emulator, expired_message_ids, received_at, running_emulator
from local.aws.stack_updates import StackUpdater, function_changed
from local.aws.template import ParameterError
from local.checks.enqueued import EnqueuedMessages, Removals, recording, removals
from local.checks.function_calls import FunctionCalls, function_calls
from local.checks.mapping_timeline import MappingTimeline
from local.checks.reconciliation import (
    MOVED_BY_SQS,
    REDRIVEN,
    DeadLetter,
    Reconciliation,
    out_of_group_order,
    reconcile,
)
from local.commands.run_options import PROBE_PATH, Ready, RunOptions, RunResult
from local.commands.run_report import (
    fault_settings,
    print_deployment,
    print_downstream,
    print_estimate,
    print_poller,
    print_reconciliation,
    print_start,
    update_line,
)
from local.commands.send import SendReport, fifo_group, send_bodies
from local.downstream.demo_downstream import Call, DemoDownstream, FailurePlan, SlowAnswers
from local.downstream.faults import (
    EnvironmentFaults,
    FaultLog,
    FaultPlan,
    SqsFaults,
)
from local.lambda_service.event_source_mapping import (
    BatchReport,
    MappingSettings,
    MappingWatcher,
    SqsEventSourceMapping,
)
from local.lambda_service.execution_environment import EnvironmentPool, FunctionSpec, Setup
from local.lambda_service.function_code import install_code, install_function_code
from local.lambda_service.invoke_router import AsyncSettings, InvokeRouter, LocalFunction
from local.lambda_service.scheduler import (
    ScheduledTarget,
    ScheduleError,
    SchedulerEmulator,
    rule_targets_of,
    targets_of,
)
from local.shared.progress import ProgressDisplay, Snapshot
from local.shared.run_deadline import (
    HALF_OPEN_SECONDS,
    RunWork,
    deadline_seconds,
    policy_from_parameters,
)

logger = logging.getLogger(__name__)

# A function without reserved concurrency runs this many asynchronous events at once locally.
ASYNC_WORKERS = 4


def run_local_system(
    options: RunOptions, out: TextIO, on_ready: Callable[[Ready], None] = lambda ready: None
) -> RunResult:
    """Deploy, send `options.messages`, deliver, and reconcile every message that entered the
    source queue, the run's own and any sent from outside. `on_ready` is called once the
    system is up, before the send. Ctrl-C (SIGINT) ends the watch early: the reconciliation
    then follows as at any other end, with what is still queued counted as unfinished."""
    started, cpu_started = time.monotonic(), time.process_time()
    if options.work_dir.exists():
        shutil.rmtree(options.work_dir)
    fault_log = FaultLog()
    downstream = _demo_downstream(options, fault_log)
    sqs_faults, control_plane = _emulator_layers(options, fault_log)
    print_start(options, out)
    with running_emulator(port=options.port, layer=_layers(sqs_faults, control_plane)) as emulator:
        print(f"emulator   {emulator.endpoint_url} (moto, region {emulator.region})", file=out)
        deployed = deploy(
            emulator,
            options.build_dir,
            options.stack_name,
            options.parameter_overrides(
                options.downstream_url or downstream.url,
                None if options.downstream_url else downstream.probe_url,
            ),
        )
        print_deployment(deployed, out)
        function = FunctionSpec.from_configuration(deployed.function)
        [mapping] = deployed.event_source_mappings
        settings = MappingSettings.from_mapping(mapping, deployed.outputs["SourceQueueUrl"])
        sqs = emulator.client("sqs")
        visibility_timeout = _set_visibility_timeout(sqs, settings.queue_url, options, function)
        print_poller(settings, function, visibility_timeout, out, logs=options.work_dir / "logs")
        following = _Following.of(
            emulator, deployed, mapping, settings, started=started, out=out, options=options
        )
        routing = _router(
            emulator,
            deployed,
            control_plane,
            consumer_pollers=settings.maximum_concurrency,
            targets=following.targets,
            options=options,
            out=out,
        )
        pool = routing.consumer_pool
        environment_faults = _wire_faults(options.faults, sqs_faults, deployed, downstream, out)
        downstream.slow = SlowAnswers(options.downstream_timeout_seconds, function.timeout_seconds)
        batches = _Batches()
        mapping_poller = SqsEventSourceMapping(
            sqs,
            settings,
            pool,
            on_batch=batches,
            faults=environment_faults,
            watcher=following.watcher,
        )
        scheduler = SchedulerEmulator(
            [t for t in following.targets if fires(t, options.probe_fault)],
            pool,
            invoker=routing.router,
        )
        # `make up` has no work to finish: it runs until interrupted, with no deadline.
        work = (
            None
            if options.until_interrupted
            else _work(
                options, deployed, function, settings, visibility_timeout, targets=following.targets
            )
        )
        sender = _Sender(
            sqs,
            settings.queue_url,
            options.bodies(),
            options.send_rate,
            options.max_visible_backlog,
            groups=options.fifo_groups,
            trickle=_Trickle.of(options, following, started),
        )
        with (
            recording(settings.queue_url) as enqueued,
            removals(deployed.outputs["DeadLetterQueueUrl"]) as removed_from_dlq,
            downstream.serving() if options.downstream_url is None else contextlib.nullcontext(),
            _interruptible() as interrupted,
        ):
            print_downstream(options, downstream, out)
            print_estimate(options, work, settings, deployed, out)
            mapping_poller.start()
            scheduler.start()
            try:
                on_ready(
                    Ready(
                        emulator,
                        deployed,
                        options.downstream_url or downstream.url,
                        options.work_dir / "logs",
                    )
                )
                sender.start()
                queue_samples: list[tuple[float, int]] = []
                deadline_reached = _watch(
                    emulator,
                    deployed,
                    mapping_poller,
                    downstream if options.downstream_url is None else None,
                    sender=sender,
                    enqueued=enqueued,
                    batches=batches.reports,
                    started=started,
                    work=work,
                    interrupted=interrupted,
                    out=out,
                    samples=queue_samples,
                    timeline=following.timeline,
                    updater=(
                        updater := _updater(
                            options,
                            emulator,
                            deployed,
                            routing=routing,
                            scheduler=scheduler,
                            out=out,
                        )
                    ),
                )
            finally:
                _shut_down(sender, scheduler, mapping_poller, pool, routing)
            redriven, dead_letters = _dead_letters(sqs, deployed, removed_from_dlq)
            on_source_queue, expired = (
                emulator.message_ids_on_queue(settings.queue_url),
                tuple(expired_message_ids()),
            )
            recorded_outcomes = _recorded_outcomes(emulator, deployed)
    elapsed = time.monotonic() - started
    calls = downstream.calls()
    sent = _every_message_sent(sender.sent(), enqueued)
    reconciliation, reported = _reconciled(
        options, sent, calls, dead_letters, on_source_queue=on_source_queue, batches=batches.reports
    )
    result = RunResult(
        reconciliation=reconciliation,
        sent=sent,
        calls=calls,
        dead_letters=dead_letters,
        batches=batches.reports,
        deployed=updater.deployed,
        environments_started=pool.started,
        elapsed_seconds=elapsed,
        moving_seconds=max(0.0, (batches.last_ended or 0.0) - sender.started_at),
        cpu_seconds=time.process_time() - cpu_started,
        moving_cpu_seconds=max(0.0, batches.last_ended_cpu - sender.started_cpu),
        deadline_reached=deadline_reached,
        receives=(receives := list(mapping_poller.receives)),
        fault_log=fault_log,
        queue_visibility_timeout_seconds=visibility_timeout,
        queue_samples=queue_samples,
        handed_out={
            r.receipt_handle: at
            for r in receives
            if (at := received_at(r.receipt_handle)) is not None
        },
        log_dir=options.work_dir / "logs",
        groups=(groups := _groups(options, sent)),
        out_of_order=out_of_group_order(groups, calls),
        recorded_outcomes=recorded_outcomes,
        interrupted=interrupted.is_set(),
        removed_from_dlq=redriven,
        downstream_observed=options.downstream_url is None,
        transitions=following.timeline.transitions(),
        mapping_disabled_seconds=following.timeline.seconds_in("open", started + elapsed),
        scheduled_invocations=list(scheduler.invocations),
        probes=downstream.probes(),
        mapping_states=following.timeline.states(),
        control_plane_calls=control_plane.calls,
        control_plane_throttled=control_plane.throttled,
        control_plane_peak_per_second=control_plane.peak_per_second(),
        bookkeeping_calls=control_plane.bookkeeping_calls,
        expired=expired,
        other_invocations=_other_invocations(routing),
        reported_calls=reported,
        stack_updates=list(updater.applied),
    )
    print_reconciliation(result, out)
    return result


def _demo_downstream(options: RunOptions, fault_log: FaultLog) -> DemoDownstream:
    return DemoDownstream(
        FailurePlan(
            failure_rate=options.failure_rate,
            outage_seconds=options.outage_seconds,
            latency_ms=options.latency_ms,
            seed=options.seed,
        ),
        faults=options.faults,
        fault_log=fault_log,
        probe_path=PROBE_PATH,
        probe_fault_status=404 if options.probe_fault == "404" else None,
    )


def _emulator_layers(
    options: RunOptions, fault_log: FaultLog
) -> tuple[SqsFaults | None, LambdaControlPlane]:
    """The SQS faults (when injected) and Lambda's control plane, layered over moto."""
    return (
        SqsFaults(options.faults, fault_log) if options.faults.any else None,
        LambdaControlPlane(transition_seconds=options.mapping_transition_seconds),
    )


def _layers(sqs_faults: SqsFaults | None, control_plane: LambdaControlPlane) -> Any:
    """The emulator's WSGI layers: Lambda's control plane, and the SQS faults when injected."""
    if sqs_faults is None:
        return control_plane.wrap
    return lambda app: control_plane.wrap(sqs_faults.wrap(app))


def _dead_letters(
    sqs: Any, deployed: DeployedStack, removed: Removals
) -> tuple[int, list[DeadLetter]]:
    """How many messages left the DLQ while up (make redrive), and every dead letter: those
    first (recorded before the drain, which itself deletes from a FIFO DLQ), then the DLQ's."""
    redriven = [DeadLetter(m, reason=REDRIVEN) for m in removed.original_ids()]
    return len(redriven), redriven + _drain(sqs, deployed.outputs["DeadLetterQueueUrl"])


def _groups(options: RunOptions, sent: dict[str, str]) -> list[tuple[str, str]]:
    """A FIFO run's (message id, group) in the order the queue took them."""
    if options.queue_type != "fifo":
        return []
    return [(m, fifo_group(body, options.fifo_groups)) for m, body in sent.items()]


def _reconciled(
    options: RunOptions,
    sent: dict[str, str],
    calls: list[Call],
    dead_letters: list[DeadLetter],
    *,
    on_source_queue: Collection[str],
    batches: list[BatchReport],
) -> tuple[Reconciliation, FunctionCalls | None]:
    """The reconciliation, and with your own downstream the calls the function reported: its
    calls are not seen here, the function's own account of them is."""
    reconciliation = reconcile(
        list(sent), calls, dead_letters, on_source_queue, _acknowledged(options, batches)
    )
    if options.downstream_url is None:
        return reconciliation, None
    reported = function_calls(options.work_dir / "logs")
    return replace(reconciliation, downstream_calls=reported.calls), reported


def _acknowledged(options: RunOptions, batches: list[BatchReport]) -> list[str] | None:
    """With the user's own downstream (its answers unseen): every message the function reported
    done, once per report; None with the demo downstream, whose calls tell."""
    if options.downstream_url is None:
        return None
    return [message_id for batch in batches for message_id in batch.outcome.delete]


class _Batches:
    """The mapping's batch reports, and when the last one came: the end of the messages' time."""

    def __init__(self) -> None:
        self.reports: list[BatchReport] = []
        self.last_ended: float | None = None
        # This process's CPU seconds at that moment.
        self.last_ended_cpu = 0.0

    def __call__(self, report: BatchReport) -> None:
        self.reports.append(report)
        self.last_ended, self.last_ended_cpu = time.monotonic(), time.process_time()


def _every_message_sent(own: dict[str, str], enqueued: EnqueuedMessages) -> dict[str, str]:
    """The run's own messages and every other message that entered the source queue (sent from
    outside while the system was up), in the order the queue took them."""
    return {**enqueued.messages(), **{m: b for m, b in own.items()}}


@contextlib.contextmanager
def _interruptible() -> Iterator[threading.Event]:
    """An event set by Ctrl-C (SIGINT) instead of a KeyboardInterrupt, so that the run stops
    where it chooses and still reconciles. Only the main thread can take signals; elsewhere
    (a test driving the system on a thread) the event is only set by whoever holds it."""
    interrupted = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield interrupted
        return

    def on_sigint(signum: int, frame: object) -> None:
        if interrupted.is_set():
            print("still stopping: the reconciliation follows", file=sys.stderr, flush=True)
        interrupted.set()

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield interrupted
    finally:
        signal.signal(signal.SIGINT, previous)


# What a run's start (deploy, code, the first cold start) takes before the first call, about.
STARTUP_ALLOWANCE_SECONDS = 30.0


@dataclass(frozen=True)
class _Trickle:
    """One message every `interval_seconds` after the send while `wanted()` says so."""

    interval_seconds: float
    wanted: Callable[[], bool]

    @classmethod
    def of(cls, options: RunOptions, following: _Following, started: float) -> _Trickle | None:
        if options.trickle_seconds <= 0 or not following.targets:
            return None
        timeline = following.timeline
        probe_period = max(t.period_seconds for t in following.targets)
        # The breaker may not have opened when the send ends: the trickle waits for that while
        # the outage may last (it counts from the first call, which comes after the deploy),
        # and never outlasts the outage, two probe periods and three half-open minutes.
        # Every change of the mapping shows only once it has landed (local.aws.control_plane).
        landing = options.mapping_transition_seconds
        give_up_after = (
            options.outage_seconds + 2 * probe_period + 3 * HALF_OPEN_SECONDS + 3 * landing
        )

        def wanted() -> bool:
            elapsed = time.monotonic() - started
            if elapsed > give_up_after:
                return False
            if not timeline.transitions():
                return elapsed < options.outage_seconds + STARTUP_ALLOWANCE_SECONDS + landing
            return timeline.breaker != "closed"

        return cls(options.trickle_seconds, wanted)


class _Sender:
    """Sends the bodies on its own thread, all at once or at `rate` messages a second, so that
    progress shows while a long send is under way; then the trickle, if any."""

    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        bodies: list[str],
        rate: float,
        max_backlog: int = 0,
        *,
        groups: int = 0,
        trickle: _Trickle | None = None,
    ) -> None:
        self.groups = groups
        self.trickle = trickle
        self.sqs = sqs
        self.queue_url = queue_url
        self.bodies = bodies
        self.rate = rate
        self.max_backlog = max_backlog
        self.done = threading.Event()
        self._stopping = threading.Event()
        self._sent: dict[str, str] = {}
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="sender", daemon=True)
        self.started_at = self.started_cpu = 0.0

    def start(self) -> None:
        self.started_at, self.started_cpu = time.monotonic(), time.process_time()
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()

    def sent(self) -> dict[str, str]:
        with self._lock:
            return dict(self._sent)

    def _backlogged(self) -> bool:
        return (
            bool(self.max_backlog) and queue_depth(self.sqs, self.queue_url)[0] > self.max_backlog
        )

    def _run(self) -> None:
        try:
            if not self.bodies:
                return  # `make up` sends nothing of its own unless asked to
            # Paced sends go out a second's worth at a time.
            chunk = max(1, int(self.rate)) if self.rate > 0 else len(self.bodies)
            next_at = time.monotonic()
            for start in range(0, len(self.bodies), chunk):
                if self.rate > 0:
                    if self._stopping.wait(max(0.0, next_at - time.monotonic())):
                        return
                    while (
                        self.max_backlog
                        and queue_depth(self.sqs, self.queue_url)[0] > self.max_backlog
                    ):
                        if self._stopping.wait(0.5):
                            return
                    next_at = max(next_at, time.monotonic()) + chunk / self.rate
                report = send_bodies(
                    self.sqs, self.queue_url, self.bodies[start : start + chunk], groups=self.groups
                )
                self._record(report)
            if self.trickle is not None:
                self._trickle(self.trickle)
        finally:
            self.done.set()

    def _trickle(self, trickle: _Trickle) -> None:
        for n in itertools.count(1):
            if self._stopping.wait(trickle.interval_seconds) or not trickle.wanted():
                return
            body = json.dumps({"orderId": f"trickle-{n:04d}", "amount": n})
            self._record(send_bodies(self.sqs, self.queue_url, [body], groups=self.groups))

    def _record(self, report: SendReport) -> None:
        with self._lock:
            self._sent.update(report.sent)
        for body, code, message in report.failed:
            logger.error(
                "SQS refused a message",
                extra={"fields": {"code": code, "message": message, "body": body[:60]}},
            )


def _shut_down(
    sender: _Sender,
    scheduler: SchedulerEmulator,
    mapping_poller: SqsEventSourceMapping,
    pool: EnvironmentPool,
    router: _Router,
) -> None:
    """In this order: nothing more is sent, scheduled or received, then the environments go
    (an invocation still running ends with its process)."""
    sender.stop()
    scheduler.stop()
    mapping_poller.stop()
    router.router.stop()
    pool.shutdown()
    for other in router.pools:
        other.shutdown()


@dataclass(frozen=True)
class _Router:
    """The Invoke router, the consumer's environments and those of the other functions."""

    router: InvokeRouter
    consumer_pool: EnvironmentPool
    pools: list[EnvironmentPool]
    # Logical id -> function name of those functions.
    names: dict[str, str]
    # Logical id -> environments of every function, the consumer's included: where a stack
    # update's new configuration goes.
    pools_by_id: dict[str, EnvironmentPool] = field(default_factory=dict)


def _router(
    emulator: Emulator,
    deployed: DeployedStack,
    control_plane: LambdaControlPlane,
    *,
    consumer_pollers: int,
    targets: list[ScheduledTarget],
    options: RunOptions,
    out: TextIO,
) -> _Router:
    """Every function of the template runs here: Invoke through the emulator (its control
    plane's router) reaches the consumer's environments or the others', each with its own code,
    environment variables, reserved concurrency and asynchronous retries."""
    consumer = FunctionSpec.from_configuration(deployed.function)
    consumer_async_workers = sum(1 for t in targets if t.function_arn == consumer.arn)
    consumer_pool = EnvironmentPool(
        Setup(
            consumer,
            install_code(emulator, deployed, options.work_dir / "code"),
            emulator.endpoint_url,
            emulator.region,
        ),
        options.work_dir / "logs",
        # A scheduled invocation is not one of the mapping's: it must not wait for a poller.
        consumer_pollers + consumer_async_workers,
    )
    sqs = emulator.client("sqs")

    def send_to_queue(queue_arn: str, body: str) -> None:
        url = sqs.get_queue_url(QueueName=queue_arn.rsplit(":", 1)[-1])["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody=body)

    routing = _Router(InvokeRouter(send_to_queue=send_to_queue), consumer_pool, [], {})
    for logical_id, deployed_function in deployed.functions.items():
        spec = FunctionSpec.from_configuration(deployed_function.configuration)
        if spec.arn == consumer.arn:
            routing.router.register(
                _local_function(spec, deployed_function, consumer_pool),
                async_workers=max(1, consumer_async_workers),
            )
            routing.pools_by_id[logical_id] = consumer_pool
            continue
        _run_function(emulator, routing, logical_id, deployed_function, options)
        print(
            f"function   {logical_id} {spec.handler} ReservedConcurrentExecutions="
            f"{deployed_function.reserved_concurrency or '-'} (its own environments)",
            file=out,
        )
    control_plane.router = routing.router
    return routing


def _run_function(
    emulator: Emulator,
    routing: _Router,
    logical_id: str,
    deployed_function: DeployedFunction,
    options: RunOptions,
) -> EnvironmentPool:
    """One of the stack's functions besides the consumer, run in environments of its own and
    registered with the Invoke router."""
    spec = FunctionSpec.from_configuration(deployed_function.configuration)
    code = install_function_code(
        emulator, deployed_function, options.work_dir / "code" / logical_id
    )
    limit = deployed_function.reserved_concurrency or ASYNC_WORKERS
    pool = EnvironmentPool(
        Setup(spec, code, emulator.endpoint_url, emulator.region),
        options.work_dir / "logs",
        limit,
        log_prefix=logical_id,
    )
    routing.pools.append(pool)
    routing.pools_by_id[logical_id] = pool
    routing.names[logical_id] = spec.name
    routing.router.register(_local_function(spec, deployed_function, pool), async_workers=limit)
    return pool


def _local_function(
    spec: FunctionSpec, deployed_function: DeployedFunction, pool: EnvironmentPool
) -> LocalFunction:
    return LocalFunction(
        name=spec.name,
        arn=spec.arn,
        environments=pool,
        reserved_concurrency=deployed_function.reserved_concurrency,
        async_settings=AsyncSettings.from_config(deployed_function.event_invoke_config),
    )


def _other_invocations(router: _Router) -> dict[str, int]:
    done = list(router.router.async_invocations)
    return {
        logical_id: sum(1 for d in done if d.function == name)
        for logical_id, name in router.names.items()
    }


@dataclass(frozen=True)
class _Following:
    """What the local system follows of the deployment as the function changes it: the mapping
    (the pollers' one reader of it, and the breaker's story told from its changes) and the
    schedules that invoke the function (the breaker's probe)."""

    watcher: MappingWatcher
    timeline: MappingTimeline
    targets: list[ScheduledTarget]

    @classmethod
    def of(
        cls,
        emulator: Emulator,
        deployed: DeployedStack,
        mapping: dict[str, Any],
        settings: MappingSettings,
        *,
        started: float,
        out: TextIO,
        options: RunOptions,
    ) -> _Following:
        # The pollers' reads are the local system's own: they spend none of the account's
        # control-plane budget, and see the configuration in force until a change lands.
        lambda_client = emulator.own_client("lambda")
        uuid = mapping["UUID"]
        watcher = MappingWatcher(lambda: lambda_client.get_event_source_mapping(UUID=uuid))
        timeline = MappingTimeline(watcher.state, settings.maximum_concurrency, started)
        watcher.listeners.append(lambda old, new: timeline.on_change(old, new, time.monotonic()))
        return cls(watcher, timeline, _scheduled_targets(emulator, deployed, out, options))


def fires(target: ScheduledTarget, probe_fault: str | None) -> bool:
    """--probe-fault never silences EventBridge Scheduler's schedules (the fault it names), not
    the EventBridge rule that backs them up."""
    return not (probe_fault == "never" and target.source == "scheduler")


def _scheduled_targets(
    emulator: Emulator, deployed: DeployedStack, out: TextIO, options: RunOptions
) -> list[ScheduledTarget]:
    """The deployed schedules that invoke one of the stack's functions (the breaker's probe),
    each printed with the function it invokes."""
    by_arn = {f.arn: logical_id for logical_id, f in deployed.functions.items()}
    targets = _read_targets(emulator, deployed)
    for target in targets:
        firing = (
            "asynchronous invocations"
            if fires(target, options.probe_fault)
            else "never fires: --probe-fault never"
        )
        print(
            f"schedule   {target.name} {target.expression} -> {by_arn[target.function_arn]} "
            f"{json.dumps(target.event)} ({firing})",
            file=out,
        )
    return targets


def _read_targets(emulator: Emulator, deployed: DeployedStack) -> list[ScheduledTarget]:
    """The deployed schedules and scheduled EventBridge rules that invoke one of the stack's
    functions."""
    arns = [f.arn for f in deployed.functions.values()]
    try:
        targets = targets_of(emulator.client("scheduler"), arns)
        # The backstop (issue 17): EventBridge rules with a schedule, fired the same way.
        return targets + rule_targets_of(emulator.client("events"), arns)
    except ScheduleError as error:
        raise DeployError(str(error)) from None


def _wire_faults(
    plan: FaultPlan,
    sqs_faults: SqsFaults | None,
    deployed: DeployedStack,
    downstream: DemoDownstream,
    out: TextIO,
) -> EnvironmentFaults | None:
    if sqs_faults is None:
        return None
    sqs_faults.dead_letter_queue_url = deployed.outputs["DeadLetterQueueUrl"]
    environment_faults = EnvironmentFaults(plan, sqs_faults.log)
    downstream.call_observers.append(environment_faults.on_downstream_call)
    print(f"faults     {fault_settings(plan)}", file=out)
    return environment_faults


def _work(
    options: RunOptions,
    deployed: DeployedStack,
    function: FunctionSpec,
    settings: MappingSettings,
    visibility_timeout: float,
    *,
    targets: list[ScheduledTarget],
) -> RunWork:
    return RunWork(
        messages=options.messages,
        policy=policy_from_parameters(deployed.parameters),
        function_timeout_seconds=function.timeout_seconds,
        queue_visibility_timeout_seconds=visibility_timeout,
        concurrency=settings.maximum_concurrency,
        downstream_latency_seconds=options.latency_ms / 1000,
        outage_seconds=options.outage_seconds,
        retry_after_seconds=options.faults.retry_after_seconds
        if options.faults.downstream_429
        else 0.0,
        # A message may meet such faults more than once in a row.
        visibility_waits=3 if options.faults.hides_messages_for_the_visibility_timeout else 1,
        probe_period_seconds=max((t.period_seconds for t in targets), default=0.0),
        batch_size=settings.batch_size,
    )


def _set_visibility_timeout(
    sqs: Any, queue_url: str, options: RunOptions, function: FunctionSpec
) -> float:
    """The source queue's VisibilityTimeout, set first if the run overrides the template's."""
    if options.visibility_timeout_seconds is not None:
        if options.visibility_timeout_seconds < function.timeout_seconds:
            # Lambda refuses a mapping whose queue hides messages for less than the timeout.
            raise ParameterError(
                f"a VisibilityTimeout of {options.visibility_timeout_seconds}s is below the "
                f"function timeout ({function.timeout_seconds:g}s), which Lambda refuses"
            )
        sqs.set_queue_attributes(
            QueueUrl=queue_url,
            Attributes={"VisibilityTimeout": str(options.visibility_timeout_seconds)},
        )
    return _visibility_timeout(sqs, queue_url)


def _watch(
    emulator: Emulator,
    deployed: DeployedStack,
    mapping_poller: SqsEventSourceMapping,
    downstream: DemoDownstream | None,
    *,
    sender: _Sender,
    enqueued: EnqueuedMessages,
    batches: list[BatchReport],
    started: float,
    work: RunWork | None,
    interrupted: threading.Event,
    out: TextIO,
    samples: list[tuple[float, int]],
    timeline: MappingTimeline,
    updater: StackUpdater | None = None,
) -> bool:
    """Show progress until everything is sent and the source queue is empty and idle, or until
    interrupted (without `work`: only then); True if the deadline (counted from the end of the
    send) came first."""
    sqs = emulator.client("sqs")
    display = ProgressDisplay(out)
    deadline: float | None = None
    shown = 0
    try:
        while not interrupted.is_set():
            transitions = timeline.transitions()
            for transition in transitions[shown:]:
                display.note(transition.render())
            shown = len(transitions)
            sending_done = sender.done.is_set()
            if sending_done and deadline is None and work is not None:
                deadline = time.monotonic() + deadline_seconds(work)
            sent = _every_message_sent(sender.sent(), enqueued)
            # Read before the queue: a batch finishing in between then shows as deleted, not
            # as hidden messages outside any invocation (which would read as backoff).
            processing = mapping_poller.messages_in_invocation
            delivered = len(_delivered(downstream, batches, sent))
            if updater is not None:
                for applied in updater.apply_due(delivered, timeline.breaker):
                    display.note(update_line(applied))
                    for line in applied.followed:
                        display.note(line)
            source = queue_depth(sqs, deployed.outputs["SourceQueueUrl"])
            samples.append((time.monotonic(), source[0]))
            dead = queue_depth(sqs, deployed.outputs["DeadLetterQueueUrl"])
            display.show(
                Snapshot(
                    elapsed_seconds=time.monotonic() - started,
                    sent=len(sent),
                    delivered=delivered,
                    processing=processing,
                    waiting_backoff=max(0, source[1] - processing),
                    visible=source[0],
                    dead_lettered=sum(dead),
                    downstream_by_status=downstream.status_counts() if downstream else {},
                    in_flight=source[1],
                    downstream_observed=downstream is not None,
                    mapping=timeline.current.render(),
                )
            )
            if work is not None and sending_done and source == (0, 0) and processing == 0:
                return False
            if deadline is not None and time.monotonic() >= deadline:
                logger.error(
                    "deadline reached with messages still on the source queue",
                    extra={"fields": {"visible": source[0], "in_flight": source[1]}},
                )
                return True
            interrupted.wait(0.5)  # the display's refresh interval
        return False
    finally:
        display.finish()
        if interrupted.is_set():
            print(
                "interrupted: stopping the pollers and environments; what is still on the "
                "source queue is unfinished, not lost",
                file=out,
                flush=True,
            )


def _updater(
    options: RunOptions,
    emulator: Emulator,
    deployed: DeployedStack,
    *,
    routing: _Router,
    scheduler: SchedulerEmulator,
    out: TextIO,
) -> StackUpdater:
    """The run's stack updates (--stack-update), each printed before the send."""
    for stack_update in options.stack_updates:
        print(f"update     planned {stack_update.render()}", file=out)
    return StackUpdater(
        emulator,
        options.build_dir,
        deployed,
        list(options.stack_updates),
        on_updated=lambda before, after: _follow_update(
            before, after, emulator=emulator, routing=routing, scheduler=scheduler, options=options
        ),
    )


def _follow_update(
    before: DeployedStack,
    after: DeployedStack,
    *,
    emulator: Emulator,
    routing: _Router,
    scheduler: SchedulerEmulator,
    options: RunOptions,
) -> list[str]:
    """What the running system follows of an update besides the mapping (which its pollers
    read every second), as CloudFormation leaves the stack: each function's new configuration
    reaches its new invocations, a function the update deleted is invoked no more and one it
    created runs, and the schedules and scheduled rules are read again (one removed stops, one
    added starts). The lines say what changed."""
    lines: list[str] = []
    for logical_id, function in after.functions.items():
        previous = before.functions.get(logical_id)
        if previous is None:
            _run_function(emulator, routing, logical_id, function, options)
            lines.append(
                f"function   {logical_id} created by the update: runs in its own environments"
            )
            continue
        pool = routing.pools_by_id[logical_id]
        if function_changed(previous.configuration, function.configuration):
            spec = FunctionSpec.from_configuration(function.configuration)
            pool.replace_setup(replace(pool.setup, function=spec))
            lines.append(f"function   {logical_id} configuration updated: new invocations get it")
    for logical_id in before.functions.keys() - after.functions.keys():
        routing.router.unregister(before.functions[logical_id].arn)
        routing.pools_by_id.pop(logical_id).shutdown()
        lines.append(f"function   {logical_id} deleted by the update: invoked no more")
    try:
        targets = _read_targets(emulator, after)
    except DeployError as error:
        # A schedule the emulation cannot run (a cron expression): the others keep firing as
        # they were, and the run says why it did not follow.
        return [*lines, f"schedule   not followed: {error}"]
    followed = scheduler.follow([t for t in targets if fires(t, options.probe_fault)])
    by_arn = {f.arn: logical_id for logical_id, f in after.functions.items()}
    by_arn.update({f.arn: logical_id for logical_id, f in before.functions.items()})
    lines += [
        f"schedule   {t.name} {t.expression} -> {by_arn.get(t.function_arn, t.function_arn)} "
        "stopped: the update removed or changed it"
        for t in followed.stopped
    ]
    lines += [
        f"schedule   {t.name} {t.expression} -> {by_arn.get(t.function_arn, t.function_arn)} "
        "started: the update created or changed it"
        for t in followed.started
    ]
    return lines


def _delivered(
    downstream: DemoDownstream | None, batches: list[BatchReport], sent: dict[str, str]
) -> set[str]:
    """Messages with a 2xx from the demo downstream; with the user's own downstream (None: its
    answers are not seen here), those the function reported done, which includes the ones it
    dead-lettered itself until the reconciliation tells them apart."""
    if downstream is not None:
        calls = downstream.calls()
        return {
            c.idempotency_key for c in calls if 200 <= c.status <= 299 and c.idempotency_key
        } & set(sent)
    return {m for b in list(batches) for m in b.outcome.delete} & set(sent)


def queue_depth(sqs: Any, queue_url: str) -> tuple[int, int]:
    """(visible, in flight) messages of a queue, as SQS approximates them."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return (
        int(attributes["ApproximateNumberOfMessages"]),
        int(attributes["ApproximateNumberOfMessagesNotVisible"]),
    )


def _visibility_timeout(sqs: Any, queue_url: str) -> float:
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["VisibilityTimeout"])
    return float(attributes["Attributes"]["VisibilityTimeout"])


def _recorded_outcomes(emulator: Emulator, deployed: DeployedStack) -> int | None:
    """How many outcomes the function recorded in its idempotency table; None without one."""
    variables = deployed.function.get("Environment", {}).get("Variables", {})
    table = variables.get("IDEMPOTENCY_TABLE_NAME")
    if not table:
        return None
    items = emulator.client("dynamodb").scan(TableName=table, Select="COUNT")
    return int(items["Count"])


def _drain(sqs: Any, queue_url: str) -> list[DeadLetter]:
    """Every message in the dead-letter queue, each received once and hidden while reading. A
    FIFO queue hides the rest of a message group while one of its messages is in flight, so
    there each batch read is deleted."""
    dead_letters: list[DeadLetter] = []
    while True:
        messages = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=10,
            VisibilityTimeout=300,
            MessageAttributeNames=["SourceMessageId", "DeadLetterReason"],
        ).get("Messages", [])
        if not messages:
            return dead_letters
        for message in messages:
            attributes = message.get("MessageAttributes", {})
            source = attributes.get("SourceMessageId", {}).get("StringValue")
            reason = attributes.get("DeadLetterReason", {}).get("StringValue") or MOVED_BY_SQS
            dead_letters.append(DeadLetter(message["MessageId"], source, reason))
        if not queue_url.endswith(".fifo"):
            continue
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
                for index, message in enumerate(messages)
            ],
        )
