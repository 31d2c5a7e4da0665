"""What a local run prints: its set-up lines (samconfig's ENV, the deployment, the poller, the
downstream, the faults, the estimate) and, at the end, the reconciliation with the breaker's and
the control plane's rows."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import TextIO

from local.aws.deploy import DeployedStack
from local.aws.emulator import endpoint_override_note
from local.aws.stack_updates import AppliedUpdate
from local.checks.estimate import estimate_run
from local.checks.reconciliation import dead_letter_reasons
from local.commands.run_options import RunOptions, RunResult
from local.downstream.demo_downstream import Call, DemoDownstream
from local.downstream.faults import FRACTION_PREFIXES, FaultPlan
from local.lambda_service.event_source_mapping import MappingSettings
from local.lambda_service.execution_environment import FunctionSpec
from local.shared.paths import ROOT
from local.shared.run_deadline import RunWork


def print_downstream(options: RunOptions, downstream: DemoDownstream, out: TextIO) -> None:
    if options.downstream_url is not None:
        print(
            f"downstream {options.downstream_url} (yours: a message counts as delivered when "
            "the function reported it done and it is not in the DLQ)",
            file=out,
        )
        return
    print(
        f"downstream {downstream.url} failure_rate={options.failure_rate:g} "
        f"outage={options.outage_seconds:g}s latency={options.latency_ms}ms "
        f"seed={options.seed}",
        file=out,
    )


def print_start(options: RunOptions, out: TextIO) -> None:
    """What samconfig ENV contributed, and why AWS_ENDPOINT_URL is not used, before the rest."""
    if options.config_env is not None:
        print(options.config_env.line(), file=out)
    note = endpoint_override_note()
    if note is not None:
        print(f"note       {note}", file=out)


def print_estimate(
    options: RunOptions,
    work: RunWork | None,
    settings: MappingSettings,
    deployed: DeployedStack,
    out: TextIO,
) -> None:
    if work is None:
        return  # `make up`: no work given, nothing to estimate
    estimate = estimate_run(
        work,
        failure_rate=options.failure_rate,
        send_rate=options.send_rate,
        batch_size=settings.batch_size,
        delivery_concurrency=int(deployed.parameters["DeliveryConcurrency"]),
    )
    print(estimate.render(), file=out)


def print_poller(
    settings: MappingSettings,
    function: FunctionSpec,
    visibility_timeout: float,
    out: TextIO,
    *,
    logs: Path,
) -> None:
    print(
        f"poller     BatchSize={settings.batch_size} "
        f"MaximumBatchingWindowInSeconds={settings.batching_window_seconds:g} "
        f"MaximumConcurrency={settings.maximum_concurrency} "
        f"ReportBatchItemFailures={settings.report_batch_item_failures} "
        f"Timeout={function.timeout_seconds:g}s VisibilityTimeout={visibility_timeout:g}s",
        file=out,
    )
    print(f"logs       {shown_path(logs)} (one file per environment)", file=out)


def shown_path(path: Path) -> str:
    """A path as a reader of this repository knows it: relative to the checkout when inside it
    (the output is copied into docs and issues, where this machine's folders mean nothing)."""
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def fault_settings(plan: FaultPlan) -> str:
    return (
        " ".join(
            f"{f.name}={getattr(plan, f.name):g}"
            for f in fields(plan)
            if f.name.startswith(FRACTION_PREFIXES) and getattr(plan, f.name) > 0
        )
        + f" seed={plan.seed}"
    )


def print_deployment(deployed: DeployedStack, out: TextIO) -> None:
    parameters = " ".join(
        f"{name}={deployed.parameters[name]}"
        for name in ("MaxReceiveCount", "BackoffBaseSeconds", "BackoffJitterSeconds",
                     "BackoffMaxSeconds")
    )  # fmt: skip
    print(f"stack      {deployed.stack_name}: CREATE_COMPLETE ({parameters})", file=out)
    print(f"queues     {deployed.outputs['SourceQueueUrl']}", file=out)
    print(f"           {deployed.outputs['DeadLetterQueueUrl']}", file=out)
    for gap in deployed.gaps:
        print(f"emulator gap: {gap}", file=out)


def update_line(applied: AppliedUpdate) -> str:
    detail = f": {applied.detail}" if applied.detail else ""
    return f"update     {applied.update.render()} -> {applied.status}{detail}"


def print_reconciliation(result: RunResult, out: TextIO) -> None:
    rec = result.reconciliation
    calls_by_key: dict[str, list[Call]] = {}
    for call in result.calls:
        calls_by_key.setdefault(call.idempotency_key or "", []).append(call)
    first_try = sum(
        1 for m in rec.delivered if m in calls_by_key and 200 <= calls_by_key[m][0].status <= 299
    )
    statuses: dict[int, int] = {}
    for call in result.calls:
        statuses[call.status] = statuses.get(call.status, 0) + 1
    invocations = len(result.batches)
    failed_batches = sum(1 for b in result.batches if b.outcome.failed)
    print("reconciliation", file=out)
    print(f"  sent           {len(rec.sent):4d}", file=out)
    print(
        f"  delivered      {len(rec.delivered):4d}  first attempt {first_try}, "
        f"after retries {len(rec.delivered) - first_try}"
        if result.downstream_observed
        else f"  delivered      {len(rec.delivered):4d}  reported done by the function, not "
        "dead-lettered (your downstream's answers are not seen here)",
        file=out,
    )
    print(
        f"  dead-lettered  {len(rec.dead_lettered):4d}  "
        f"{dead_letter_reasons(result.dead_letters, rec.sent)}".rstrip(),
        file=out,
    )
    print(f"  lost           {len(rec.lost):4d}  {_ids(rec.lost)}".rstrip(), file=out)
    print(f"  unfinished     {len(rec.unfinished):4d}  {_ids(rec.unfinished)}".rstrip(), file=out)
    print(f"  duplicates     {rec.duplicates:4d}", file=out)
    reported = result.reported_calls
    print(
        f"  downstream     {rec.downstream_calls:4d}  calls: "
        + " ".join(f"{s}={n}" for s, n in sorted(statuses.items()))
        if reported is None
        else f"  downstream     {reported.calls:4d}  calls the function reported in its metrics "
        f"(yours: not seen here; an environment killed mid-batch reports none): "
        f"{reported.outcomes()}".rstrip(),
        file=out,
    )
    print(
        f"  invocations    {invocations:4d}  {failed_batches} with failed records, "
        f"{result.environments_started} execution environments started",
        file=out,
    )
    _print_breaker_and_control_plane(result, out)
    if result.expired:
        print(
            f"  expired        {len(result.expired):4d}  past the source queue's retention "
            f"(gone: counted lost) {_ids(result.expired)}".rstrip(),
            file=out,
        )
    if result.recorded_outcomes is not None:
        print(
            f"  idempotency    {result.recorded_outcomes:4d}  outcomes recorded in the table",
            file=out,
        )
    if result.groups:
        print(
            f"  fifo order     {len(result.out_of_order):4d}  delivered out of their group's "
            f"send order ({len({g for _, g in result.groups})} groups) "
            f"{_ids(result.out_of_order)}".rstrip(),
            file=out,
        )
    if rec.delivered_and_dead_lettered:
        print(
            f"  delivered AND dead-lettered: {' '.join(sorted(rec.delivered_and_dead_lettered))}",
            file=out,
        )
    injected = result.fault_log.counts()
    if injected:
        print(
            "  faults         "
            + " ".join(f"{kind}={count}" for kind, count in sorted(injected.items())),
            file=out,
        )
    if result.removed_from_dlq:
        print(
            f"  redriven       {result.removed_from_dlq:4d}  removed from the DLQ while up "
            "(make redrive: each back on the source queue as a new message, counted in sent)",
            file=out,
        )
    if result.interrupted:
        print(
            "  interrupted (Ctrl-C): the messages still on the source queue are unfinished, "
            "not lost",
            file=out,
        )
    if result.deadline_reached:
        print(
            "  the run stopped at its deadline with messages still on the source queue: "
            "they are unfinished, not lost",
            file=out,
        )
    print(
        rec.summary(
            result.elapsed_seconds,
            result.moving_seconds,
            control_plane_calls=result.control_plane_calls,
        ),
        file=out,
    )


def _print_breaker_and_control_plane(result: RunResult, out: TextIO) -> None:
    """The breaker's story, the account's control-plane requests and the other functions' runs."""
    reported = result.reported_calls
    if result.transitions or result.scheduled_invocations:
        opened = sum(1 for t in result.transitions if t.after == "open")
        down = sum(1 for _, status in result.probes if not 200 <= status <= 299)
        probes = len(result.probes)
        if reported is not None:
            probes, down = reported.probes, reported.probes_down
        print(
            f"  breaker        {opened:4d}  times opened, the mapping disabled "
            f"{result.mapping_disabled_seconds:.0f} s in all; "
            f"{len(result.scheduled_invocations)} scheduled invocations, "
            f"{probes} probe calls ({down} found it down)",
            file=out,
        )
    print(
        f"  control plane  {result.control_plane_calls:4d}  account requests to Lambda's control "
        f"plane ({result.control_plane_throttled} throttled, at most "
        f"{result.control_plane_peak_per_second} in one second); "
        f"{result.bookkeeping_calls} reads of the local system's own, not counted",
        file=out,
    )
    for logical_id, count in result.other_invocations.items():
        print(f"  {logical_id}  {count} asynchronous invocations", file=out)


def _ids(message_ids: tuple[str, ...], shown: int = 20) -> str:
    """The first few ids: a run of thousands must not print thousands of them."""
    more = len(message_ids) - shown
    return " ".join(message_ids[:shown]) + (f" ... and {more} more" if more > 0 else "")
