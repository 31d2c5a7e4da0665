"""The downstream calls the function says it made, read from its execution environments' logs.

With the user's own downstream (DOWNSTREAM_URL) the local system sees no call itself: the
function's own account is what there is. Each call records one `DownstreamLatency` value in
the function's EMF metrics and counts toward one outcome metric (`Delivered` for a 2xx, one
value an invocation; `DownstreamFailed5xx`, `DownstreamFailedTimeout` and the like otherwise):
outcomes are summed; each probe of the circuit breaker logs one
`breaker probe` record with `up`. Metrics are flushed at the end of an invocation, so the calls
of an environment killed in the middle of one are not counted: the reconciliation says so.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LATENCY = "DownstreamLatency"
DELIVERED = "Delivered"
FAILED_PREFIX = "DownstreamFailed"


@dataclass(frozen=True)
class FunctionCalls:
    calls: int = 0
    # "2xx", "5xx", "timeout", "connection", ...: calls by outcome.
    by_outcome: dict[str, int] = field(default_factory=dict)
    probes: int = 0
    probes_down: int = 0

    def outcomes(self) -> str:
        return " ".join(f"{name}={count}" for name, count in sorted(self.by_outcome.items()))


def function_calls(log_dir: Path) -> FunctionCalls:
    """What the function's logs in `log_dir` (one file per environment) say it called."""
    calls = 0
    outcomes: Counter[str] = Counter()
    probes = 0
    down = 0
    for path in sorted(log_dir.glob("*.log")):
        for line in path.read_text(errors="replace").splitlines():
            record = _json(line)
            if record is None:
                continue
            if "_aws" in record:
                calls += _values(record.get(LATENCY))
                for name in _metric_names(record):
                    outcome = _outcome(name)
                    if outcome is not None:
                        outcomes[outcome] += _total(record.get(name))
            elif record.get("message") == "breaker probe" and "up" in record:
                probes += 1
                down += record["up"] is not True
    return FunctionCalls(calls, dict(outcomes), probes, down)


def _json(line: str) -> dict[str, Any] | None:
    if not line.startswith("{"):
        return None
    try:
        loaded = json.loads(line)
    except ValueError:
        return None
    return loaded if isinstance(loaded, dict) else None


def _metric_names(document: dict[str, Any]) -> list[str]:
    directives = document["_aws"].get("CloudWatchMetrics", [])
    return [str(metric["Name"]) for d in directives for metric in d.get("Metrics", [])]


def _values(value: Any) -> int:
    """How many values a metric holds in one EMF document (a list, or one number): for the
    latency, one per call."""
    if value is None:
        return 0
    return len(value) if isinstance(value, list) else 1


def _total(value: Any) -> int:
    """A Count metric's total in one EMF document."""
    if value is None:
        return 0
    return round(sum(value) if isinstance(value, list) else float(value))


def _outcome(metric: str) -> str | None:
    if metric == DELIVERED:
        return "2xx"
    if metric.startswith(FAILED_PREFIX):
        rest = metric.removeprefix(FAILED_PREFIX)
        if rest[:1].isdigit():
            return rest
        return "-".join(part.lower() for part in _split_title(rest))
    return None


def _split_title(name: str) -> list[str]:
    parts: list[str] = []
    for char in name:
        if char.isupper() or not parts:
            parts.append(char)
        else:
            parts[-1] += char
    return parts
