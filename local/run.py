"""`make run`: the whole system locally, ending with a reconciliation and its summary line.

The exit status is 1 when a message was lost, 2 for invalid flags or parameters.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import TextIO

from local import log
from local.deploy import DeployError
from local.system import RunOptions, run_local_system
from local.template import ParameterError

DEFAULTS = RunOptions()


def _number[N: (int, float)](
    kind: Callable[[str], N], low: N, high: N | None = None
) -> Callable[[str], N]:
    def parse(text: str) -> N:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not {'a whole number' if kind is int else 'a number'}"
            ) from None
        if value < low or (high is not None and value > high):
            bounds = f"from {low} to {high}" if high is not None else f"at least {low}"
            raise argparse.ArgumentTypeError(f"{value} is out of range: expected {bounds}")
        return value

    return parse


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="make run RUN_ARGS=...",
        description="Deploy template.yaml into an embedded AWS emulator and run the consumer "
        "against a demo downstream that fails on demand.",
    )
    add = p.add_argument
    add(
        "--messages",
        type=_number(int, 1, 10_000),
        default=DEFAULTS.messages,
        help=f"messages to send (default {DEFAULTS.messages})",
    )
    add(
        "--failure-rate",
        type=_number(float, 0.0, 1.0),
        default=DEFAULTS.failure_rate,
        help=f"fraction of downstream calls answered 503 (default {DEFAULTS.failure_rate})",
    )
    add(
        "--outage",
        type=_number(float, 0.0),
        default=DEFAULTS.outage_seconds,
        metavar="SECONDS",
        help=f"503 to every call for the first SECONDS (default {DEFAULTS.outage_seconds:g})",
    )
    add(
        "--latency-ms",
        type=_number(int, 0, 60_000),
        default=DEFAULTS.latency_ms,
        help=f"downstream answer time (default {DEFAULTS.latency_ms})",
    )
    add(
        "--max-receive-count",
        type=_number(int, 1),
        default=DEFAULTS.max_receive_count,
        help=f"template MaxReceiveCount (default {DEFAULTS.max_receive_count})",
    )
    add(
        "--backoff-base",
        type=_number(int, 0),
        default=DEFAULTS.backoff_base_seconds,
        metavar="SECONDS",
        help=f"template BackoffBaseSeconds (default {DEFAULTS.backoff_base_seconds})",
    )
    add(
        "--backoff-jitter",
        type=_number(int, 1),
        default=DEFAULTS.backoff_jitter_seconds,
        metavar="SECONDS",
        help=f"template BackoffJitterSeconds (default {DEFAULTS.backoff_jitter_seconds})",
    )
    add(
        "--seed", default=DEFAULTS.seed, help=f"seed of the failure draws (default {DEFAULTS.seed})"
    )
    return p  # fmt: skip


def options_from(argv: Sequence[str] | None) -> RunOptions:
    args = parser().parse_args(argv)
    return RunOptions(
        messages=args.messages,
        failure_rate=args.failure_rate,
        outage_seconds=args.outage,
        latency_ms=args.latency_ms,
        max_receive_count=args.max_receive_count,
        backoff_base_seconds=args.backoff_base,
        backoff_jitter_seconds=args.backoff_jitter,
        seed=args.seed,
    )


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    options = options_from(argv)
    log.configure(sys.stderr, options.work_dir.parent / "local-run.log")
    try:
        result = run_local_system(options, out)
    except ParameterError as error:
        print(f"error: the template refuses these parameters: {error}", file=sys.stderr)
        return 2
    except DeployError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 1 if result.lost else 0


if __name__ == "__main__":
    sys.exit(main())
