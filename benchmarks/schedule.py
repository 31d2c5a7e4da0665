"""`make schedule`: each attempt's delay range and the cumulative span, for the template's
parameters or given ones, with a warning when messages that keep failing would outlive the
retention before their last attempt (the function then dead-letters them early: would-expire).

The ranges come from the function's own backoff.delay_range_seconds, so this prints what the
deployed function does, whichever BackoffStrategy is chosen. Retry-After can only lengthen a
delay, and the function may shorten one to stay within SQS's 12 hours per receive.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.report import duration
from benchmarks.template_parameters import (
    SOURCE_TEMPLATE,
    backoff_policy,
    load_template,
    parameter_defaults,
)
from shared.backoff import BackoffPolicy, BackoffStrategy, delay_range_seconds, is_final_attempt

# Flag name -> template parameter it overrides.
_FLAGS = {
    "strategy": "BackoffStrategy",
    "base_seconds": "BackoffBaseSeconds",
    "jitter_seconds": "BackoffJitterSeconds",
    "max_seconds": "BackoffMaxSeconds",
    "max_receive_count": "MaxReceiveCount",
    "retention_seconds": "SourceQueueRetentionSeconds",
}


@dataclass(frozen=True)
class Attempt:
    number: int
    min_delay_s: int
    max_delay_s: int
    # From the first delivery to the next one (the end of this attempt's delay).
    cumulative_min_s: int
    cumulative_max_s: int


def attempts(policy: BackoffPolicy) -> list[Attempt]:
    rows = []
    total_min = total_max = 0
    for number in range(1, policy.max_receive_count + 1):
        low, high = (
            (0, 0) if is_final_attempt(number, policy) else delay_range_seconds(number, policy)
        )
        total_min += low
        total_max += high
        rows.append(Attempt(number, low, high, total_min, total_max))
    return rows


def expiry_warning(rows: Sequence[Attempt], retention_s: int) -> str | None:
    """Why messages would outlive the retention before their last attempt, or None when the
    whole schedule fits."""
    # The last attempt starts when the delays before it have passed.
    span_min = rows[-2].cumulative_min_s if len(rows) > 1 else 0
    span_max = rows[-2].cumulative_max_s if len(rows) > 1 else 0
    if span_max <= retention_s:
        return None
    which = (
        "every message that keeps failing"
        if span_min > retention_s
        else "some messages that keep failing"
    )
    return (
        f"WARNING: the span to the last attempt ({_range(span_min, span_max)}) "
        f"exceeds the source queue's retention ({duration(retention_s)}): {which} "
        "would outlive the retention before its last attempt; the function dead-letters such "
        "a message early (reason would-expire), after fewer than MaxReceiveCount attempts. "
        "Lower MaxReceiveCount or BackoffMaxSeconds, or raise SourceQueueRetentionSeconds."
    )


def _range(low_s: float, high_s: float) -> str:
    """ "5.1 d to 5.3 d", or "5.3 d" when both read the same."""
    low, high = duration(low_s), duration(high_s)
    return low if low == high else f"{low} to {high}"


def render(parameters: dict[str, Any], source: str) -> str:
    policy = backoff_policy(parameters)
    retention_s = int(parameters["SourceQueueRetentionSeconds"])
    rows = attempts(policy)
    settings = ", ".join(f"{name}={parameters[name]}" for name in _FLAGS.values())
    lines = [
        f"Backoff schedule ({source}): {settings}",
        "",
        "| attempt n | delay after n fails, min | max | attempt n+1 after the first, min | max |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        if is_final_attempt(row.number, policy):
            lines.append(
                f"| {row.number} | 0 (final attempt) | 0 | DLQ at next receive | "
                f"DLQ at next receive |"
            )
        else:
            lines.append(
                f"| {row.number} | {row.min_delay_s} s | {row.max_delay_s} s | "
                f"{duration(row.cumulative_min_s)} | {duration(row.cumulative_max_s)} |"
            )
    last = rows[-2] if len(rows) > 1 else None
    span = _range(last.cumulative_min_s, last.cumulative_max_s) if last else "0 s"
    lines += [
        "",
        f"Span from the first attempt to the last (attempt {policy.max_receive_count}): {span}, "
        f"plus processing time; retention {duration(retention_s)}, counted from the first enqueue.",
    ]
    warning = expiry_warning(rows, retention_s)
    if warning:
        lines += ["", warning]
    return "\n".join(lines)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="make schedule SCHEDULE_ARGS=...",
        description="Each attempt's delay range and the cumulative span; flags override the "
        "template's defaults.",
    )
    parser.add_argument(
        "--template", type=Path, default=SOURCE_TEMPLATE, help="the template to read defaults from"
    )
    for flag, parameter in _FLAGS.items():
        option = "--" + flag.replace("_", "-")
        if flag == "strategy":
            parser.add_argument(
                option,
                choices=[s.value for s in BackoffStrategy],
                help=f"template parameter {parameter} (default: the template's)",
            )
        else:
            parser.add_argument(
                option, type=int, help=f"template parameter {parameter} (default: the template's)"
            )
    args = parser.parse_args(argv)
    if args.max_receive_count is not None and args.max_receive_count < 1:
        parser.error("--max-receive-count must be at least 1")
    if args.jitter_seconds is not None and args.jitter_seconds < 1:
        parser.error("--jitter-seconds must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    parameters = parameter_defaults(load_template(args.template))
    given = {
        parameter: getattr(args, flag)
        for flag, parameter in _FLAGS.items()
        if getattr(args, flag) is not None
    }
    parameters.update(given)
    source = f"{args.template.name} defaults" + (", overridden by flags" if given else "")
    print(render(parameters, source))
    return 0


if __name__ == "__main__":
    sys.exit(main())
