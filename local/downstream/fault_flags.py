"""The fault flags of `make run` and `make up`: one flag per FaultPlan fraction, and the plan they
give. A new fault is a FaultPlan field (faults.py) and a line here; the commands take them all."""

from __future__ import annotations

import argparse

from local.downstream.faults import FaultPlan
from local.shared.flags import number

# (flag, FaultPlan field, help): each a fraction of the calls or batches concerned.
FAULT_FLAGS: list[tuple[str, str, str]] = [
    ("--fault-read-timeout", "downstream_read_timeout",
     "downstream calls processed but answered after the function's read timeout"),
    ("--fault-reset", "downstream_reset", "downstream connections reset before processing"),
    ("--fault-slow", "downstream_beyond_function_timeout",
     "downstream calls processed but answered after the function timeout"),
    ("--fault-429", "downstream_429", "downstream calls answered 429 with Retry-After"),
    ("--fault-5xx", "downstream_5xx", "downstream calls answered 500, 502, 503 or 504"),
    ("--fault-visibility", "sqs_change_visibility",
     "the function's ChangeMessageVisibilityBatch calls failing (every SDK retry)"),
    ("--fault-expired-receipt", "sqs_expired_receipt",
     "the function's ChangeMessageVisibilityBatch entries refused as expired receipt handles"),
    ("--fault-dlq-send", "sqs_dlq_send", "the function's SendMessage to the DLQ failing"),
    ("--fault-sqs-throttle", "sqs_throttle",
     "the function's SQS requests throttled (per request: the SDK retries)"),
    ("--fault-delete", "sqs_delete", "the event source mapping's DeleteMessageBatch failing"),
    ("--fault-kill-mid-batch", "kill_mid_batch",
     "batches whose execution environment is killed after some downstream calls"),
    ("--fault-kill-idle", "kill_idle", "invocations after which the idle environment is killed"),
]  # fmt: skip


def add_fault_flags(p: argparse.ArgumentParser, *, seed: str) -> None:
    """The fault flags, each a fraction (0 to 1), and the seed of their draws, in a group of `p`."""
    faults = p.add_argument_group("fault injection (each a fraction, 0 to 1)")
    for flag, field, text in FAULT_FLAGS:
        faults.add_argument(
            flag,
            dest=f"fault_{field}",
            metavar="F",
            type=number(float, 0.0, 1.0),
            default=0.0,
            help=text,
        )
    faults.add_argument("--fault-seed", dest="fault_seed", default=seed, help="seed of the faults")


def fault_plan_of(args: argparse.Namespace) -> FaultPlan:
    """The plan the fault flags parsed into `args` ask for."""
    return FaultPlan(
        **{field: getattr(args, f"fault_{field}") for _, field, _ in FAULT_FLAGS},
        seed=args.fault_seed,
    )
