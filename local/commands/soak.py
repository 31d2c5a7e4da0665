"""`make soak`: the local system under every fault at once, and what it must still show.

Thousands of messages, sent at a steady rate, through a downstream that times out, resets,
answers too late, throttles and fails, an SQS API that refuses visibility changes, deletes and
dead-letter sends, throttles and calls receipt handles expired, and execution environments
killed mid-batch and while idle. It passes only when nothing was lost and nothing is
unfinished, every message was delivered or dead-lettered, every duplicate is explained by an
injected fault, and every gap between two receives of a message lies within its strategy's
bounds (or the queue's visibility timeout where no change went through). The last line is the
run's summary line.

Exit status: 0 when every check passed; 1 when a message was lost; 3 when messages were
unfinished; 5 when another check failed; 2 for invalid flags; 4 when the deployment failed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TextIO

from local.checks.soak_checks import receive_gap_violations, soak_checks
from local.commands.build import build_if_stale
from local.commands.logs import LogFolder
from local.commands.run import (
    EXIT_DEPLOY_FAILED,
    EXIT_LOST,
    EXIT_UNFINISHED,
    DefaultsHelpFormatter,
    run_or_exit_status,
)
from local.commands.run_options import RunOptions, RunResult
from local.downstream.faults import FaultPlan
from local.shared.run_deadline import policy_from_parameters

EXIT_CHECK_FAILED = 5

# Every fault on. Whole-batch faults (kills, refused changes and deletes) leave messages to the
# queue's visibility timeout, so they are kept rarer than the downstream's faults, which the
# backoff handles within seconds.
SOAK_FAULTS = FaultPlan(
    downstream_read_timeout=0.02,
    downstream_reset=0.02,
    downstream_beyond_function_timeout=0.005,
    downstream_429=0.03,
    downstream_5xx=0.05,
    sqs_change_visibility=0.01,
    sqs_expired_receipt=0.01,
    sqs_dlq_send=0.05,
    sqs_throttle=0.02,
    sqs_delete=0.005,
    kill_mid_batch=0.005,
    kill_idle=0.01,
    seed="soak",
)

SOAK = RunOptions(
    messages=5000,
    failure_rate=0.05,
    outage_seconds=0.0,
    latency_ms=5,
    max_receive_count=4,
    backoff_base_seconds=1,
    backoff_jitter_seconds=3,
    seed="soak",
    downstream_timeout_seconds=1,
    send_rate=30.0,
    max_visible_backlog=200,
    poison_fraction=0.01,
    faults=SOAK_FAULTS,
)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="make soak SOAK_ARGS=...",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=DefaultsHelpFormatter,
    )
    p.add_argument("--messages", type=int, default=SOAK.messages, help="messages to send")
    p.add_argument("--send-rate", type=float, default=SOAK.send_rate, help="messages a second")
    p.add_argument(
        "--visibility-timeout",
        type=int,
        default=None,
        help="override the source queue's VisibilityTimeout (default: the template's 360 s)",
    )
    p.add_argument("--seed", default=SOAK.seed, help="seed of the downstream and the faults")
    p.add_argument(
        "--poison-fraction",
        type=float,
        default=SOAK.poison_fraction,
        help="fraction of the messages whose body is not JSON",
    )
    p.add_argument(
        "--work-dir",
        type=Path,
        default=SOAK.work_dir,
        help="where the run's files (function logs) go: one per soak run at the same time",
    )
    return p


def options_from(argv: Sequence[str] | None) -> RunOptions:
    args = parser().parse_args(argv)
    return replace(
        SOAK,
        messages=args.messages,
        send_rate=args.send_rate,
        visibility_timeout_seconds=args.visibility_timeout,
        seed=args.seed,
        poison_fraction=args.poison_fraction,
        work_dir=args.work_dir,
        faults=replace(SOAK_FAULTS, seed=args.seed),
    )


def function_timeouts(logs: Path) -> set[tuple[str, int]]:
    """(message id, receive count) of every record whose downstream call the function gave up
    on (outcome timeout), from the run's function logs."""
    seen: set[tuple[str, int]] = set()
    for line in LogFolder(logs).new_lines():
        record = line.record or {}
        message_id, receive_count = record.get("message_id"), record.get("receive_count")
        if (
            record.get("outcome") == "timeout"
            and isinstance(message_id, str)
            and isinstance(receive_count, int)
        ):
            seen.add((message_id, receive_count))
    return seen


def check(result: RunResult, options: RunOptions) -> list[str]:
    """The checks' lines, each PASS or FAIL."""
    faults, changes = result.fault_log.snapshot()
    gaps = receive_gap_violations(
        result.receives,
        changes,
        policy_from_parameters(result.deployed.parameters),
        result.queue_visibility_timeout_seconds,
        retry_after_seconds=options.faults.retry_after_seconds,
        queue_samples=result.queue_samples,
        received_at=result.handed_out,
    )
    finished_at = {
        receipt: batch.finished_at for batch in result.batches for receipt in batch.receipt_handles
    }
    checks = soak_checks(
        result.reconciliation,
        result.calls,
        faults,
        gaps,
        result.receives,
        finished_at=finished_at,
        timeouts=function_timeouts(result.log_dir) if result.log_dir is not None else set(),
    )
    return [c.render() for c in checks]


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    options = options_from(argv)
    problem = build_if_stale()
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_DEPLOY_FAILED
    result = run_or_exit_status(options, out)
    if isinstance(result, int):
        return result
    lines = check(result, options)
    print("soak checks", file=out)
    for line in lines:
        print(f"  {line}", file=out)
    # The summary stays the last line, as for every local run.
    print(
        result.reconciliation.summary(
            result.elapsed_seconds,
            result.moving_seconds,
            control_plane_calls=result.control_plane_calls,
        ),
        file=out,
    )
    if result.lost:
        return EXIT_LOST
    if result.unfinished:
        return EXIT_UNFINISHED
    return 0 if all(line.startswith("PASS") for line in lines) else EXIT_CHECK_FAILED


if __name__ == "__main__":
    sys.exit(main())
