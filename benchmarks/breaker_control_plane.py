"""The breaker against Lambda's control plane: `make bench-breaker` (arguments through
BENCH_ARGS=...).

Runs the circuit breaker (CB) of the backoff study at the template's defaults through full
outages of 1 minute to 24 hours with the mapping's changes taking up to `--actuation-delays-s`
to land, one controller spending the account's control-plane budget (15 requests a second,
shared with `--background-rps` of other callers), and prints per row the dead-lettered share
of the messages stranded by the outage and the controller's control-plane requests (all, the
most in one second, refused). A last row runs the 24-hour outage at MaximumConcurrency 1000
(1,000 environments): one controller makes the same requests however many environments report
to it; the design it replaces is given beside it, computed (every environment reading the
mapping every max(5, MaximumConcurrency / 10) s). Progress goes to stderr; with --json the last
line of stdout is one JSON document.
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

from benchmarks import report
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

# The study's goals (issue 17).
GOAL_DEAD_LETTERED_FRACTION = 0.001
GOAL_PEAK_PER_S = 1
# Environments of the scaled row: MaximumConcurrency's ceiling.
SCALED_CONCURRENCY = 1000


@dataclass(frozen=True)
class _Job:
    index: int
    scenario: Scenario
    policy: BackoffPolicy


def _csv_floats(text: str) -> list[float]:
    return [float(item) for item in text.split(",") if item.strip()]


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="make bench-breaker BENCH_ARGS=...", description=__doc__.split("\n\n")[1]
    )
    parser.add_argument("--json", action="store_true", help="end stdout with one JSON line")
    parser.add_argument(
        "--outages-s",
        type=_csv_floats,
        default=[60, 600, 3600, 6 * 3600, DAY_S],
        help="full outages in seconds (default 1 min..24 h)",
    )
    parser.add_argument(
        "--actuation-delays-s",
        type=_csv_floats,
        default=[0, 30, 60],
        help="time from an UpdateEventSourceMapping to the pollers following it (default 0,30,60)",
    )
    parser.add_argument(
        "--background-rps",
        type=float,
        default=0.0,
        help="the account's other control-plane callers, requests a second (of 15)",
    )
    parser.add_argument(
        "--no-scaled-row", action="store_true", help="skip the 1,000-environment row"
    )
    parser.add_argument("--messages-per-day", type=float, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    return parser.parse_args(argv)


def build_jobs(args: argparse.Namespace) -> list[_Job]:
    template = load_template(SOURCE_TEMPLATE)
    defaults = parameter_defaults(template)
    policy = backoff_policy(defaults)
    base = Scenario(
        strategy="CB",
        outage_s=0.0,
        max_receive_count=int(defaults["MaxReceiveCount"]),
        retention_s=float(defaults["SourceQueueRetentionSeconds"]),
        arrival_rate_per_s=args.messages_per_day / DAY_S,
        concurrency=int(defaults["MaximumConcurrency"]),
        batch_size=STUDY_BATCH_SIZE,
        queue_visibility_timeout_s=source_queue_visibility_timeout_s(template),
        control_plane_background_rps=args.background_rps,
        seed=args.seed,
    )
    scenarios = [
        replace(base, outage_s=outage_s, breaker_actuation_delay_s=delay_s)
        for outage_s, delay_s in itertools.product(args.outages_s, args.actuation_delays_s)
    ]
    if not args.no_scaled_row:
        scenarios.append(
            replace(
                base,
                outage_s=max(args.outages_s),
                breaker_actuation_delay_s=max(args.actuation_delays_s),
                concurrency=SCALED_CONCURRENCY,
            )
        )
    return [_Job(index, scenario, policy) for index, scenario in enumerate(scenarios)]


def _label(s: Scenario) -> str:
    return (
        f"outage {report.duration(s.outage_s)} actuation delay "
        f"{report.duration(s.breaker_actuation_delay_s)} MaximumConcurrency {s.concurrency}"
    )


def _run_job(job: _Job) -> tuple[int, Result, float]:
    started = time.perf_counter()
    result = simulate(job.scenario, strategies(job.policy)["CB"])
    return job.index, result, time.perf_counter() - started


def run(jobs: list[_Job], workers: int) -> list[Result]:
    results: list[Result | None] = [None] * len(jobs)
    ordered = sorted(
        jobs, key=lambda j: (j.scenario.outage_s, j.scenario.concurrency), reverse=True
    )
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        for done, (index, result, seconds) in enumerate(
            pool.imap_unordered(_run_job, ordered), start=1
        ):
            results[index] = result
            print(
                f"[{done}/{len(jobs)}] {_label(jobs[index].scenario)}: {seconds:.1f} s",
                file=sys.stderr,
                flush=True,
            )
    return [r for r in results if r is not None]


def per_environment_reads_per_s(concurrency: int) -> float:
    """The design this replaces: every environment read the mapping every max(5, MC/10) s."""
    return concurrency / max(5.0, concurrency / 10)


def table(results: Sequence[Result]) -> str:
    rows = [
        "| outage | actuation delay | MaximumConcurrency | stranded | dead-lettered | expired "
        "| control-plane requests (updates, probe reads) | peak per second | refused "
        "| per-environment design |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        s = r.scenario
        rows.append(
            f"| {report.duration(s.outage_s)} | {report.duration(s.breaker_actuation_delay_s)} "
            f"| {s.concurrency} | {r.messages_during_outage:,} "
            f"| {r.stranded_dead_lettered:,} ({r.stranded_dead_lettered_fraction:.3%}) "
            f"| {r.expired:,} | {r.control_plane_requests:,} ({r.mapping_updates:,}, "
            f"{r.breaker_probes:,}) | {r.control_plane_peak_per_s} "
            f"| {r.control_plane_throttled} "
            f"| {per_environment_reads_per_s(s.concurrency):g}/s sustained |"
        )
    return "\n".join(rows)


def goals(results: Sequence[Result]) -> list[str]:
    worst_dead = max(results, key=lambda r: r.stranded_dead_lettered_fraction)
    worst_peak = max(results, key=lambda r: r.control_plane_peak_per_s)
    dead_ok = worst_dead.stranded_dead_lettered_fraction <= GOAL_DEAD_LETTERED_FRACTION
    peak_ok = worst_peak.control_plane_peak_per_s <= GOAL_PEAK_PER_S
    return [
        f"dead-lettered at most {GOAL_DEAD_LETTERED_FRACTION:.1%} of the stranded messages: "
        f"{'PASS' if dead_ok else 'FAIL'} (worst "
        f"{worst_dead.stranded_dead_lettered_fraction:.3%}, {_label(worst_dead.scenario)})",
        f"control-plane requests at most {GOAL_PEAK_PER_S} a second: "
        f"{'PASS' if peak_ok else 'FAIL'} (worst {worst_peak.control_plane_peak_per_s}, "
        f"{_label(worst_peak.scenario)})",
    ]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    results = run(build_jobs(args), args.workers)
    print(table(results))
    print()
    for line in goals(results):
        print(line)
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "outage_s": r.scenario.outage_s,
                        "actuation_delay_s": r.scenario.breaker_actuation_delay_s,
                        "maximum_concurrency": r.scenario.concurrency,
                        "stranded": r.messages_during_outage,
                        "stranded_dead_lettered": r.stranded_dead_lettered,
                        "expired": r.expired,
                        "control_plane_requests": r.control_plane_requests,
                        "control_plane_peak_per_s": r.control_plane_peak_per_s,
                        "control_plane_throttled": r.control_plane_throttled,
                        "mapping_updates": r.mapping_updates,
                        "probes": r.breaker_probes,
                    }
                    for r in results
                ]
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
