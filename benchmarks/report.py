"""The study's output: markdown tables, the JSON document and the plots."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.brooker import ContentionResult
from benchmarks.sqs_outage import DAY_S, Result
from benchmarks.strategies import Strategy


def duration(seconds: float) -> str:
    """Seconds as a person reads them: 45 s, 10 min, 1.5 h, 14 d."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    for unit_s, unit in ((2 * DAY_S, "d"), (3600, "h"), (60, "min")):
        if seconds >= unit_s:
            value = seconds / (unit_s if unit != "d" else DAY_S)
            return f"{value:.1f}".removesuffix(".0") + f" {unit}"
    raise AssertionError("unreachable: 60 s and more fall in the minutes")


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def scenario_table(results: Sequence[Result], wall_s: dict[int, float] | None = None) -> str:
    header = [
        "strategy",
        "outage",
        "maxReceiveCount",
        "retention",
        "messages",
        "calls/msg in outage",
        "calls/msg total",
        "peak/min after recovery ÷ mu",
        "drain after recovery",
        "p50 added latency",
        "p99 added latency",
        "dead-lettered",
        "expired",
        "in-flight limit breaches",
        "SQS API calls/msg",
    ]
    if wall_s is not None:
        header.append("wall s")
    rows = []
    for index, result in enumerate(results):
        s = result.scenario
        row = [
            s.strategy,
            duration(s.outage_s),
            str(s.max_receive_count),
            duration(s.retention_s),
            f"{result.messages:,}",
            f"{result.calls_per_message_during_outage:.2f}",
            f"{result.calls_per_message:.2f}",
            f"{result.peak_over_capacity:.2f}",
            duration(result.drain_s),
            duration(result.added_latency_quantile_s(0.5)),
            duration(result.added_latency_quantile_s(0.99)),
            f"{result.dead_lettered:,}",
            f"{result.expired:,}",
            f"{result.inflight_breaches:,}",
            f"{result.sqs_api_calls / result.messages:.1f}",
        ]
        if wall_s is not None:
            row.append(f"{wall_s[index]:.1f}")
        rows.append(row)
    return _table(header, rows)


# The breaker's goals (issue 11), at the template's defaults.
GOAL_STRANDED_DEAD_LETTERED = 0.001
GOAL_PEAK_OVER_CAPACITY = 2.0


def _best_drain(rivals: Sequence[Result]) -> str:
    if not rivals:
        return "none"
    best = min(rivals, key=lambda r: r.drain_s)
    return f"{duration(best.drain_s)} ({best.scenario.strategy})"


def breaker_goals_table(results: Sequence[Result]) -> str:
    """One row per scenario run with CB: its figures beside the best per-message strategy's.

    Goals: dead-lettered <= 0.1 % of the stranded messages; busiest minute after recovery <= 2 x
    the capacity; drain no slower than the best per-message strategy that keeps the DLQ goal
    (the fastest of all is shown too: dead-lettering is a fast way to drain); calls during the
    outage within one probe per minute (the calls before it opens are the excess shown).
    """
    groups: dict[tuple[float, int, float], list[Result]] = {}
    for result in results:
        s = result.scenario
        groups.setdefault((s.outage_s, s.max_receive_count, s.retention_s), []).append(result)
    header = [
        "outage",
        "maxReceiveCount",
        "retention",
        "stranded",
        "dead-lettered (of stranded)",
        "peak/min ÷ mu",
        "drain",
        "fastest per-message drain: any / keeping the DLQ goal",
        "stranded ÷ mu",
        "calls in outage: probes + before opening",
        "goals missed",
    ]
    rows = []
    for (outage_s, mrc, retention_s), group in sorted(groups.items()):
        breaker = next((r for r in group if r.scenario.strategy == "CB"), None)
        if breaker is None:
            continue
        per_message = [r for r in group if r.scenario.strategy != "CB"]
        keeping = [
            r
            for r in per_message
            if r.stranded_dead_lettered_fraction <= GOAL_STRANDED_DEAD_LETTERED
        ]
        missed = []
        if breaker.stranded_dead_lettered_fraction > GOAL_STRANDED_DEAD_LETTERED:
            missed.append("DLQ")
        if breaker.peak_over_capacity > GOAL_PEAK_OVER_CAPACITY:
            missed.append("peak")
        if keeping and breaker.drain_s > min(r.drain_s for r in keeping):
            missed.append("drain")
        probes_allowed = math.ceil(outage_s / 60)
        before_opening = breaker.calls_during_outage - breaker.breaker_probes
        if breaker.calls_during_outage > probes_allowed:
            missed.append(f"calls +{breaker.calls_during_outage - probes_allowed}")
        stranded = breaker.messages_during_outage
        rows.append(
            [
                duration(outage_s),
                str(mrc),
                duration(retention_s),
                f"{stranded:,}",
                f"{breaker.stranded_dead_lettered:,} "
                f"({breaker.stranded_dead_lettered_fraction:.2%})",
                f"{breaker.peak_over_capacity:.2f}",
                duration(breaker.drain_s),
                f"{_best_drain(per_message)} / {_best_drain(keeping)}",
                duration(stranded / breaker.scenario.capacity_per_s),
                f"{breaker.calls_during_outage:,}: {breaker.breaker_probes:,} + "
                f"{max(0, before_opening):,}",
                ", ".join(missed) or "none",
            ]
        )
    return _table(header, rows) if rows else ""


def partial_outage_table(results: Sequence[Result]) -> str:
    header = [
        "strategy",
        "failing",
        "outage",
        "messages",
        "calls/msg total",
        "p50 added latency",
        "p99 added latency",
        "dead-lettered",
        "breaker trips",
        "breaker open",
    ]
    rows = [
        [
            r.scenario.strategy,
            f"{r.scenario.failure_rate:.0%}",
            duration(r.scenario.outage_s),
            f"{r.messages:,}",
            f"{r.calls_per_message:.2f}",
            duration(r.added_latency_quantile_s(0.5)),
            duration(r.added_latency_quantile_s(0.99)),
            f"{r.dead_lettered:,}",
            str(r.breaker_trips) if r.scenario.strategy == "CB" else "",
            duration(r.breaker_open_s) if r.scenario.strategy == "CB" else "",
        ]
        for r in results
    ]
    return _table(header, rows)


def actuation_delay_table(undelayed: Sequence[Result], delayed: Sequence[Result]) -> str:
    """CB with its mapping changes delayed, beside the same scenarios without a delay."""

    def settings(r: Result) -> tuple[float, int, float]:
        return r.scenario.outage_s, r.scenario.max_receive_count, r.scenario.retention_s

    compared = {settings(r) for r in delayed}
    chosen = [r for r in undelayed if settings(r) in compared] + list(delayed)
    chosen.sort(key=lambda r: (r.scenario.outage_s, r.scenario.breaker_actuation_delay_s))
    header = [
        "outage",
        "actuation delay",
        "dead-lettered",
        "peak/min ÷ mu",
        "drain",
        "calls in outage",
        "records failed without a call",
    ]
    rows = [
        [
            duration(r.scenario.outage_s),
            duration(r.scenario.breaker_actuation_delay_s),
            f"{r.stranded_dead_lettered:,}",
            f"{r.peak_over_capacity:.2f}",
            duration(r.drain_s),
            f"{r.calls_during_outage:,}",
            f"{r.short_circuited:,}",
        ]
        for r in chosen
    ]
    return _table(header, rows)


def strategy_legend(strategies: Sequence[Strategy]) -> str:
    return _table(["key", "strategy"], [[s.key, s.name] for s in strategies])


def brooker_table(results: Sequence[ContentionResult], names: dict[str, str]) -> str:
    baseline = next(r for r in results if r.strategy == "S1")
    rows = [
        [
            f"{r.strategy} {names[r.strategy]}",
            f"{r.mean_calls:.0f}",
            f"{r.mean_calls / baseline.mean_calls:.2f}",
            f"{r.mean_completion_ms:.0f}",
        ]
        for r in results
    ]
    return _table(["strategy", "calls (mean)", "÷ no jitter", "completion ms (mean)"], rows)


def json_document(results: Sequence[Result], brooker: Sequence[ContentionResult]) -> dict[str, Any]:
    by_key = {r.strategy: r for r in brooker}
    return {
        "scenarios": [
            {
                "strategy": r.scenario.strategy,
                "outage_s": r.scenario.outage_s,
                "max_receive_count": r.scenario.max_receive_count,
                "retention_s": r.scenario.retention_s,
                "calls_per_message": round(r.calls_per_message, 4),
                "peak_over_capacity": round(r.peak_over_capacity, 4),
                "drain_s": round(r.drain_s, 1),
                "p99_added_latency_s": round(r.added_latency_quantile_s(0.99), 1),
                "dead_lettered": r.dead_lettered,
                "expired": r.expired,
                "failure_rate": r.scenario.failure_rate,
                "stranded_dead_lettered": r.stranded_dead_lettered,
                "calls_during_outage": r.calls_during_outage,
                "breaker_trips": r.breaker_trips,
                "breaker_actuation_delay_s": r.scenario.breaker_actuation_delay_s,
            }
            for r in results
        ],
        "brooker": {
            "full_jitter_calls": round(by_key["S2"].mean_calls, 2),
            "no_jitter_calls": round(by_key["S1"].mean_calls, 2),
        },
    }


# The project's own strategy drawn heavier; colours far apart so that six lines stay apart.
_STYLE = {
    "S0": ("black", 1.6),
    "S1": ("tab:orange", 0.9),
    "S2": ("tab:green", 0.9),
    "S3": ("tab:blue", 0.9),
    "S4": ("tab:purple", 0.9),
    "S5": ("tab:red", 0.9),
    "CB": ("tab:cyan", 1.6),
}


def plot_calls_per_minute(
    results: Sequence[Result], names: dict[str, str], path: Path, title: str
) -> None:
    """Downstream calls per minute over time, one line per strategy, recovery and mu marked."""
    import matplotlib  # noqa: PLC0415  (imported when plotting: tests and --no-plots skip it)

    matplotlib.use("Agg")  # no screen: render to files only
    import matplotlib.pyplot as plt  # noqa: PLC0415

    figure, axes = plt.subplots(figsize=(11, 5.5), dpi=100)
    scale_s = 3600.0 if max(r.scenario.outage_s for r in results) >= 3600 else 60.0
    unit = "h" if scale_s == 3600.0 else "min"
    for result in results:
        minutes = range(len(result.calls_per_minute))
        key = result.scenario.strategy
        color, width = _STYLE.get(key, ("grey", 0.9))
        axes.plot(
            [minute * 60 / scale_s for minute in minutes],
            result.calls_per_minute,
            label=f"{key} {names[key]}",
            color=color,
            linewidth=width,
        )
    first = results[0].scenario
    axes.axvline(first.outage_s / scale_s, color="black", linestyle="--", linewidth=0.8)
    axes.axhline(first.capacity_per_s * 60, color="grey", linestyle=":", linewidth=0.8)
    axes.text(first.outage_s / scale_s, 1.05, " recovery", fontsize=8)
    axes.text(0, first.capacity_per_s * 60 * 1.15, "capacity: mu x 60", fontsize=8, color="grey")
    axes.set_yscale("log")
    axes.set_ylim(bottom=1)
    axes.set_xlabel(f"time since the outage began ({unit})")
    axes.set_ylabel("downstream calls per minute")
    axes.set_title(title)
    axes.legend(fontsize=8)
    axes.grid(alpha=0.3)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
