"""The backoff study: `make bench-backoff` (arguments through BENCH_ARGS=...).

Validates the simulator core against Brooker's published contention result, then runs every
strategy through every outage scenario (SQS, Lambda's event source mapping and a downstream that
fails, then recovers with a limited capacity), the circuit breaker (CB) beside them, and partial
outages (a fraction of calls failing), prints the tables, the breaker's goals and writes the
plots. Progress goes to stderr; with --json the last line of stdout is one JSON document.
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from benchmarks import report
from benchmarks.brooker import ContentionResult, contention, contention_strategies
from benchmarks.sqs_outage import DAY_S, Result, Scenario, simulate
from benchmarks.strategies import strategies
from benchmarks.template_parameters import (
    SOURCE_TEMPLATE,
    backoff_policy,
    load_template,
    parameter_defaults,
    source_queue_visibility_timeout_s,
)
from shared.backoff import BackoffPolicy

# The batch the study was made with: the template's default then. A standard queue's BatchSize
# auto is 100 now (docs/scale-and-cost.md); the study keeps its setting, so its figures stay
# comparable, and says so (docs).
STUDY_BATCH_SIZE = 10

ROOT = Path(__file__).resolve().parents[1]
PLOTS_DIR = ROOT / "docs" / "backoff-study"
# Brooker's published finding, as the issue states it: full jitter needs well under 0.6 x the
# calls of un-jittered exponential backoff with 100 contending clients.
BROOKER_MAX_RATIO = 0.6


@dataclass(frozen=True)
class _Job:
    index: int
    scenario: Scenario
    policy: BackoffPolicy
    label: str


def _csv_floats(text: str) -> list[float]:
    return [float(item) for item in text.split(",") if item.strip()]


def _csv_ints(text: str) -> list[int]:
    return [int(item) for item in text.split(",") if item.strip()]


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="make bench-backoff BENCH_ARGS=...", description=__doc__.split("\n\n")[1]
    )
    parser.add_argument("--json", action="store_true", help="end stdout with one JSON line")
    parser.add_argument(
        "--outages-s",
        type=_csv_floats,
        default=[60, 600, 3600, 6 * 3600, DAY_S],
        help="outage durations in seconds, comma-separated (default 1 min..24 h)",
    )
    parser.add_argument(
        "--max-receive-counts", type=_csv_ints, default=[5, 10, 20], help="default 5,10,20"
    )
    parser.add_argument("--retentions-days", type=_csv_floats, default=[4, 14], help="default 4,14")
    parser.add_argument(
        "--strategies", default="S0,S1,S2,S3,S4,S5,CB", help="keys to run (default all)"
    )
    parser.add_argument(
        "--partial-failure-rates",
        type=_csv_floats,
        default=[0.1, 0.5],
        help="partial outages: fractions of calls failing (default 0.1,0.5; empty for none)",
    )
    parser.add_argument(
        "--partial-outages-s",
        type=_csv_floats,
        default=[3600, DAY_S],
        help="durations of the partial outages, at the template's MaxReceiveCount and retention",
    )
    parser.add_argument(
        "--breaker-actuation-delays-s",
        type=_csv_floats,
        default=[60, 300],
        help="CB again, its mapping changes taking this long (default 60,300; empty for none)",
    )
    parser.add_argument(
        "--messages-per-day",
        type=float,
        default=100_000,
        help="arrival rate lambda, in messages a day (default 100000: 1.16/s)",
    )
    parser.add_argument(
        "--capacity-per-s", type=float, default=5.0, help="downstream capacity mu (default 5/s)"
    )
    parser.add_argument(
        "--arrivals-after-recovery-s",
        type=float,
        default=3600,
        help="how long arrivals go on after recovery (default 3600)",
    )
    parser.add_argument(
        "--burst-messages",
        type=int,
        default=0,
        help="messages enqueued at once when the outage begins, on top of the arrivals",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--workers", type=int, default=2, help="processes for the scenarios (default 2)"
    )
    parser.add_argument("--plots-dir", type=Path, default=PLOTS_DIR)
    parser.add_argument("--no-plots", action="store_true")
    parser.add_argument("--brooker-clients", type=int, default=100)
    parser.add_argument("--brooker-runs", type=int, default=100)
    return parser.parse_args(argv)


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _run_job(job: _Job) -> tuple[int, Result, float]:
    strategy = strategies(job.policy)[job.scenario.strategy]

    def progress(simulated_s: float) -> None:
        _log(f"    ... {job.label}: simulated {report.duration(simulated_s)}")

    started = time.perf_counter()
    result = simulate(job.scenario, strategy, progress)
    return job.index, result, time.perf_counter() - started


def run_brooker(clients: int, runs: int) -> list[ContentionResult]:
    results = []
    for strategy in contention_strategies().values():
        started = time.perf_counter()
        results.append(contention(strategy, clients=clients, runs=runs))
        _log(
            f"brooker {strategy.key}: {clients} clients x {runs} runs "
            f"in {time.perf_counter() - started:.1f} s"
        )
    return results


def build_jobs(args: argparse.Namespace) -> list[_Job]:
    template = load_template(SOURCE_TEMPLATE)
    defaults = parameter_defaults(template)
    policy = backoff_policy(defaults)
    keys = args.strategies.split(",")
    full_outage, no_delay = [1.0], [0.0]
    combinations = list(
        itertools.product(
            args.outages_s,
            args.max_receive_counts,
            args.retentions_days,
            keys,
            full_outage,
            no_delay,
        )
    )
    default_mrc = [int(defaults["MaxReceiveCount"])]
    default_days = [float(defaults["SourceQueueRetentionSeconds"]) / DAY_S]
    combinations += itertools.product(
        args.partial_outages_s,
        default_mrc,
        default_days,
        keys,
        args.partial_failure_rates,
        no_delay,
    )
    if "CB" in keys:
        combinations += itertools.product(
            args.outages_s,
            default_mrc,
            default_days,
            ["CB"],
            full_outage,
            args.breaker_actuation_delays_s,
        )
    jobs = []
    for index, (outage_s, mrc, days, key, failure_rate, delay_s) in enumerate(combinations):
        scenario = Scenario(
            strategy=key,
            outage_s=outage_s,
            max_receive_count=mrc,
            retention_s=days * DAY_S,
            arrival_rate_per_s=args.messages_per_day / DAY_S,
            arrivals_after_recovery_s=args.arrivals_after_recovery_s,
            burst_messages=args.burst_messages,
            failure_rate=failure_rate,
            breaker_actuation_delay_s=delay_s,
            capacity_per_s=args.capacity_per_s,
            concurrency=int(defaults["MaximumConcurrency"]),
            batch_size=STUDY_BATCH_SIZE,
            queue_visibility_timeout_s=source_queue_visibility_timeout_s(template),
            seed=args.seed,
        )
        label = (
            f"{key} outage {report.duration(outage_s)} maxReceiveCount {mrc} "
            f"retention {report.duration(days * DAY_S)}"
            + (f" failing {failure_rate:.0%}" if failure_rate < 1 else "")
            + (f" actuation delay {report.duration(delay_s)}" if delay_s else "")
        )
        jobs.append(_Job(index, scenario, replace(policy, max_receive_count=mrc), label))
    return jobs


def run_scenarios(jobs: list[_Job], workers: int) -> tuple[list[Result], list[float]]:
    results: list[Result | None] = [None] * len(jobs)
    wall_s = [0.0] * len(jobs)
    # Longest first, so that two workers finish together instead of one waiting on a 24 h run.
    ordered = sorted(
        jobs, key=lambda j: (j.scenario.outage_s, j.scenario.max_receive_count), reverse=True
    )
    labels = {job.index: job.label for job in jobs}
    done = 0
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        for index, result, seconds in pool.imap_unordered(_run_job, ordered):
            done += 1
            results[index] = result
            wall_s[index] = seconds
            _log(f"[{done}/{len(jobs)}] {labels[index]}: {seconds:.1f} s")
    return [r for r in results if r is not None], wall_s


def _is_main_grid(result: Result) -> bool:
    """A full outage with the mapping following the breaker at once: the tables and plots."""
    s = result.scenario
    return s.failure_rate >= 1 and s.breaker_actuation_delay_s == 0


def timing_table(results: Sequence[Result], wall_s: Sequence[float]) -> str:
    full = [(r, w) for r, w in zip(results, wall_s, strict=True) if _is_main_grid(r)]
    results = [r for r, _ in full]
    wall_s = [w for _, w in full]
    longest = max(r.scenario.outage_s for r in results)
    rows: dict[tuple[int, float], dict[str, str]] = {}
    messages = 0
    for result, seconds in zip(results, wall_s, strict=True):
        s = result.scenario
        if s.outage_s == longest:
            rows.setdefault((s.max_receive_count, s.retention_s), {})[s.strategy] = f"{seconds:.1f}"
            messages = result.messages_during_outage
    keys = sorted({r.scenario.strategy for r in results})
    header = ["maxReceiveCount", "retention", *keys]
    lines = [
        f"Wall seconds per run, outage {report.duration(longest)}, "
        f"{messages:,} messages enqueued during it (one process each, {len(keys)} strategies):",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for (mrc, retention_s), by_key in sorted(rows.items()):
        cells = [str(mrc), report.duration(retention_s), *(by_key.get(k, "") for k in keys)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_plots(results: Sequence[Result], names: dict[str, str], plots_dir: Path) -> list[Path]:
    """One plot per outage, at the template's MaxReceiveCount and retention when they were run."""
    defaults = parameter_defaults(load_template(SOURCE_TEMPLATE))
    results = [r for r in results if _is_main_grid(r)]
    mrcs = {r.scenario.max_receive_count for r in results}
    retentions = {r.scenario.retention_s for r in results}
    mrc = int(defaults["MaxReceiveCount"])
    mrc = mrc if mrc in mrcs else min(mrcs)
    retention_s = float(defaults["SourceQueueRetentionSeconds"])
    retention_s = retention_s if retention_s in retentions else min(retentions)
    paths = []
    for outage_s in sorted({r.scenario.outage_s for r in results}):
        chosen = [
            r
            for r in results
            if r.scenario.outage_s == outage_s
            and r.scenario.max_receive_count == mrc
            and r.scenario.retention_s == retention_s
        ]
        path = plots_dir / f"calls-per-minute-outage-{int(outage_s)}s.png"
        title = (
            f"Outage {report.duration(outage_s)}, then mu = {chosen[0].scenario.capacity_per_s:g}"
            f"/s; maxReceiveCount {mrc}, retention {report.duration(retention_s)}"
        )
        report.plot_calls_per_minute(chosen, names, path, title)
        paths.append(path)
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    started = time.perf_counter()
    names = {key: s.name for key, s in strategies(BackoffPolicy()).items()}

    brooker = run_brooker(args.brooker_clients, args.brooker_runs)
    by_key = {r.strategy: r for r in brooker}
    ratio = by_key["S2"].mean_calls / by_key["S1"].mean_calls
    brooker_ok = ratio < BROOKER_MAX_RATIO

    jobs = build_jobs(args)
    results, wall_s = run_scenarios(jobs, args.workers)
    plots = [] if args.no_plots else write_plots(results, names, args.plots_dir)

    print("## Strategies\n")
    print(report.strategy_legend(list(strategies(BackoffPolicy()).values())))
    print(
        f"\n## Outage scenarios\n\nArrivals {args.messages_per_day:,.0f}/day "
        f"({args.messages_per_day / DAY_S:.2f}/s) from the outage's start until "
        f"{report.duration(args.arrivals_after_recovery_s)} after recovery"
        + (f", plus {args.burst_messages:,} at once at its start" if args.burst_messages else "")
        + f"; downstream capacity mu = {args.capacity_per_s:g}/s after recovery. Latency and "
        "drain are those of the messages enqueued during the outage.\n"
    )
    full = [i for i, r in enumerate(results) if _is_main_grid(r)]
    partial = [i for i, r in enumerate(results) if r.scenario.failure_rate < 1]
    delayed = [r for r in results if r.scenario.breaker_actuation_delay_s > 0]
    print(
        report.scenario_table(
            [results[i] for i in full], {n: wall_s[i] for n, i in enumerate(full)}
        )
    )
    breaker_rows = report.breaker_goals_table([results[i] for i in full])
    if breaker_rows:
        print(f"\n## The circuit breaker against its goals\n\n{breaker_rows}")
    if partial:
        print(
            "\n## Partial outages\n\nA fraction of the calls fail during the outage (503); "
            "the others are served within the capacity.\n"
        )
        print(report.partial_outage_table([results[i] for i in partial]))
    if delayed:
        undelayed = [results[i] for i in full if results[i].scenario.strategy == "CB"]
        print(
            "\n## The circuit breaker when the mapping is slow to follow\n\nIts changes to the "
            "mapping (disable, enable, concurrency) take effect this long after it decides; "
            "meanwhile the function fails records without calling while it is open.\n"
        )
        print(report.actuation_delay_table(undelayed, delayed))
    print(
        f"\n## Validation: Brooker's contention experiment\n\n{args.brooker_clients} clients, "
        f"{args.brooker_runs} runs each, base 5 ms, cap 2000 ms, one OCC row.\n"
    )
    print(report.brooker_table(brooker, names))
    verdict = "PASS" if brooker_ok else "FAIL"
    print(
        f"\n{verdict}: full jitter needs {ratio:.2f} x the calls of un-jittered exponential "
        f"(published: well under {BROOKER_MAX_RATIO})."
    )
    print(f"\n## Timings\n\n{timing_table(results, wall_s)}")
    print(
        f"\nTotal: {time.perf_counter() - started:.1f} s wall for {len(jobs)} scenarios on "
        f"{args.workers} worker(s), plus the validation."
    )
    if plots:
        relative = [str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(p) for p in plots]
        print("\nPlots: " + ", ".join(relative))
    if args.json:
        print(json.dumps(report.json_document(results, brooker), separators=(",", ":")))
    return 0 if brooker_ok else 1


if __name__ == "__main__":
    sys.exit(main())
