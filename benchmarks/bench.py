"""`make bench`: the consumer's throughput, cold start and size, side by side in one run.

Every figure is a median over --repeats rounds, with its min and max; in each round the
contenders run one after another, starting one further along each round. Sections:
- warm batches (benchmarks.batch_delivery): the project's handler, Powertools' BatchProcessor
  record after record, an ideal pool of 10 threads; batches of 10 and 100 at --latency-ms,
  a failed batch of 10 (seconds and SQS requests), CPU per record at zero latency;
- cold starts (benchmarks.cold_start): a fresh Lambda-like process importing the built
  handler and serving its first batch, against a naive handler: the circuit breaker off and
  on (reading the built stack's mapping in moto's server), tracing off and on;
- sizes (benchmarks.package_size) of what `sam build` produced;
- a batch at the template's defaults (BatchSize auto on a standard queue, DeliveryConcurrency);
- the breaker controller's warm tick (benchmarks.controller_tick), in the built stack;
- cost per million messages (benchmarks.cost), from the warm batches' medians and AWS's prices.
Progress goes to standard error; --json adds one JSON line at the end of standard output.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Any

import boto3
from moto import mock_aws

from benchmarks import batch_delivery, cold_start, controller_tick, cost, package_size
from benchmarks.batch_delivery import BatchFigures, Queue, SqsRequestCounter
from benchmarks.cold_start import ColdStart
from benchmarks.package_size import PackageSizes
from benchmarks.spread import Spread
from benchmarks.template_defaults import default_batching
from local.aws.moto_stack import create_queues, load_stack
from local.aws.template import load_template
from local.downstream.downstream_process import downstream_process
from local.shared.paths import ROOT

GOALS = {
    "batch_10_s": 0.3,
    "batch_100_s": 1.5,
    "cold_start_ratio": 1.0,
    "sqs_requests_per_10_failures": 1,
    # The project's CPU per record at 0 ms over Powertools' sequential BatchProcessor's.
    "cpu_per_record_ratio": 1.0,
    "function_bytes": 100_000,
    "layer_bytes": 15_000_000,
}
CONTENDERS = {
    "project": "project handler",
    "powertools_sequential": "Powertools, sequential",
    "ideal_pool": "ideal pool of 10",
}
# The controller's warm ticks measured per round: each takes a few milliseconds.
TICKS_PER_REPEAT = 10
COLD_STARTS = {
    "naive": "naive handler",
    "project_breaker_off": "project, breaker off",
    "project_breaker_on": "project, breaker on",
    "project_breaker_on_tracing_on": "project, breaker on, tracing on",
    "project_breaker_on_without_bytecode": "project, breaker on, layer without bytecode",
}
# The cold starts judged against the goal: the function as deployed (tracing off by default),
# the circuit breaker on (the default) and off.
COLD_START_GOAL_KINDS = (
    "project_breaker_off",
    "project_breaker_on",
    "project_breaker_on_tracing_on",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="rounds per figure (default 5)")
    parser.add_argument(
        "--latency-ms", type=int, default=100, help="the downstream's answer time (default 100)"
    )
    parser.add_argument(
        "--cpu-batches",
        type=int,
        default=20,
        help="batches of 10 per CPU measurement at zero latency (default 20)",
    )
    parser.add_argument(
        "--build-dir",
        type=Path,
        default=ROOT / ".aws-sam" / "build",
        help="sam build's output (default .aws-sam/build)",
    )
    parser.add_argument("--json", action="store_true", help="end with one JSON line of figures")
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.cpu_batches < 1 or args.latency_ms < 0:
        parser.error("--repeats and --cpu-batches must be at least 1, --latency-ms at least 0")

    figures = measure(args.build_dir, args.repeats, args.latency_ms, args.cpu_batches)
    print(table(figures))
    if args.json:
        print(json.dumps(figures, separators=(",", ":")))
    return 0


def measure(build_dir: Path, repeats: int, latency_ms: int, cpu_batches: int) -> dict[str, Any]:
    fake_aws_environment()
    with downstream_process(latency_ms=0) as downstream:
        # Before moto's in-process mock: the cold starts deploy the built stack into moto's
        # server (its backends are this process's, reset when the server starts).
        _progress(
            f"cold starts: {len(COLD_STARTS)} kinds x {repeats + 1} fresh processes, "
            "against the built stack in moto's server"
        )
        cold = cold_start.measure(build_dir, downstream.url, repeats)
        ticks = TICKS_PER_REPEAT * repeats
        _progress(f"the breaker controller: {ticks} warm ticks against the built stack")
        tick = controller_tick.measure(build_dir, downstream.url, ticks)
        with mock_aws():
            counter = SqsRequestCounter()
            stack = load_stack({"DownstreamUrl": downstream.url})
            create_queues(stack, boto3.client("sqs"))
            environment = stack.function_environment()
            # The side-by-side batches deliver 10 records at a time, as the ideal pool of 10
            # does; the template's defaults are measured on their own below.
            environment["DELIVERY_CONCURRENCY"] = str(batch_delivery.POOL_SIZE)
            queue = Queue(stack.refs["SourceQueue"], stack.attributes[("SourceQueue", "Arn")])
            # Powertools and the function read their settings from the environment at import.
            os.environ.update(environment)
            _progress(f"warm batches: {repeats} rounds of each measure at {latency_ms} ms")
            with batch_delivery.stdout_discarded():
                handlers = batch_delivery.contenders(downstream.url, queue)
                batches = batch_delivery.measure(
                    handlers=handlers,
                    downstream=downstream,
                    queue=queue,
                    counter=counter,
                    repeats=repeats,
                    latency_ms=latency_ms,
                    cpu_batches=cpu_batches,
                )
                batch_size, window_s = default_batching()
                concurrency = int(stack.parameters["DeliveryConcurrency"])
                _progress(
                    f"the template's defaults: {repeats} batches of {batch_size} at "
                    f"DeliveryConcurrency {concurrency}"
                )
                default_batch = _batch_at(
                    handlers["project"], queue, repeats, batch_size, concurrency
                )
    sizes = package_size.measure(build_dir)
    figures = _document(repeats, latency_ms, batches, cold, sizes)
    figures["default_batch"] = {
        "batch_size": batch_size,
        "batching_window_s": window_s,
        "delivery_concurrency": concurrency,
        "project_s": default_batch.as_dict(),
    }
    figures["controller_tick"] = tick.as_dict()
    figures["cost"] = cost.document(
        figures, template_memory_mb(), template_memory_mb("BreakerControllerFunction")
    )
    return figures


def _batch_at(
    handler: batch_delivery.Handler,
    queue: Queue,
    repeats: int,
    batch_size: int,
    delivery_concurrency: int,
) -> Spread:
    """The project's handler at a BatchSize and DeliveryConcurrency (the template's defaults):
    its runtime rebuilt with that many threads and connections, then restored."""
    from consumer.delivery import get_runtime  # noqa: PLC0415

    saved = os.environ.get("DELIVERY_CONCURRENCY")
    os.environ["DELIVERY_CONCURRENCY"] = str(delivery_concurrency)
    get_runtime.cache_clear()
    try:
        # Warm: the new runtime's threads and connections.
        batch_delivery.timed(handler, batch_delivery.delivered_batch(batch_size, queue), 0)
        return Spread.of(
            [
                batch_delivery.timed(handler, batch_delivery.delivered_batch(batch_size, queue), 0)
                for _ in range(repeats)
            ]
        )
    finally:
        if saved is None:
            os.environ.pop("DELIVERY_CONCURRENCY", None)
        else:
            os.environ["DELIVERY_CONCURRENCY"] = saved
        get_runtime.cache_clear()


def template_memory_mb(function: str = "ConsumerFunction") -> int:
    """A function's MemorySize as the template sets it (the consumer's by default)."""
    template = load_template(ROOT / "template.yaml")
    return int(template["Resources"][function]["Properties"]["MemorySize"])


def fake_aws_environment() -> None:
    # Credentials and region that can only ever reach moto.
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SQS"):
        os.environ.pop(name, None)
    os.environ.update(
        {
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "benchmark",
            "AWS_SECRET_ACCESS_KEY": "benchmark",
        }
    )


def _progress(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def _spreads(values: dict[str, Spread]) -> dict[str, dict[str, float]]:
    return {name: spread.as_dict() for name, spread in values.items()}


def _document(
    repeats: int,
    latency_ms: int,
    batches: BatchFigures,
    cold: dict[str, ColdStart],
    sizes: PackageSizes,
) -> dict[str, Any]:
    return {
        "repeats": repeats,
        "latency_ms": latency_ms,
        "batch_10_s": _spreads(batches.batch_10_s),
        "batch_100_s": _spreads(batches.batch_100_s),
        "failed_batch_10_s": _spreads(batches.failed_batch_10_s),
        "failed_batch_10_sqs_requests": _spreads(batches.failed_batch_10_sqs_requests),
        "cpu_ms_per_record": _spreads(batches.cpu_ms_per_record),
        "cpu_per_record_ratio": _spreads(batches.cpu_per_record_ratio),
        "cold_start": {
            name: {
                key: spread.as_dict()
                for key, spread in (
                    ("cpu_ms", figures.cpu_ms),
                    ("wall_ms", figures.wall_ms),
                    ("cpu_ratio", figures.cpu_ratio),
                    ("wall_ratio", figures.wall_ratio),
                    ("mapping_requests", figures.mapping_requests),
                    ("batch_cpu_ms", figures.batch_cpu_ms),
                    ("batch_cpu_ratio", figures.batch_cpu_ratio),
                )
                if spread is not None
            }
            for name, figures in cold.items()
        },
        "size_bytes": dataclasses.asdict(sizes),
        "goals": GOALS,
    }


def table(figures: dict[str, Any]) -> str:
    latency = figures["latency_ms"]
    lines = [
        f"Medians of {figures['repeats']} rounds (min to max).",
        "",
        "| warm invocations | " + " | ".join(CONTENDERS.values()) + " | goal |",
        "|---|---|---|---|---|",
    ]

    def row(label: str, key: str, goal: str, digits: int = 2) -> None:
        cells = [_text(figures[key][name], digits) for name in CONTENDERS]
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {goal} |")

    row(f"batch of 10 at {latency} ms, s", "batch_10_s", f"<= {GOALS['batch_10_s']}")
    row(f"batch of 100 at {latency} ms, s", "batch_100_s", f"<= {GOALS['batch_100_s']}")
    row(f"failed batch of 10 at {latency} ms, s", "failed_batch_10_s", "")
    row(
        "SQS requests for a failed batch of 10",
        "failed_batch_10_sqs_requests",
        f"{GOALS['sqs_requests_per_10_failures']}",
        digits=0,
    )
    row("CPU per record at 0 ms, ms", "cpu_ms_per_record", "")
    row(
        "CPU per record at 0 ms / Powertools sequential's, same round",
        "cpu_per_record_ratio",
        f"<= {GOALS['cpu_per_record_ratio']}",
    )
    lines += [
        "",
        "| cold start: import + first batch of 10 | CPU, ms | wall, ms | CPU / naive "
        "| wall / naive | first batch's CPU, ms | its CPU / naive | mapping requests | goal |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, label in COLD_STARTS.items():
        cold = figures["cold_start"][name]

        def ratio(key: str, cold: dict[str, Any] = cold) -> str:
            return _text(cold[key], 2) if key in cold else "1"

        goal = f"<= {GOALS['cold_start_ratio']}" if name in COLD_START_GOAL_KINDS else ""
        lines.append(
            f"| {label} | {_text(cold['cpu_ms'], 0)} | {_text(cold['wall_ms'], 0)} | "
            f"{ratio('cpu_ratio')} | {ratio('wall_ratio')} | {_text(cold['batch_cpu_ms'], 0)} | "
            f"{ratio('batch_cpu_ratio')} | {_text(cold['mapping_requests'], 0)} | {goal} |"
        )
    lines += ["", *size_table(figures["size_bytes"]), "", cost.table(figures["cost"], latency)]
    return "\n".join(lines)


def size_table(sizes: dict[str, Any]) -> list[str]:
    """The sizes' table (make bench's, and the docs' sample of it: make docs-samples)."""
    without_sdk = sizes["layer_bytes"] - sizes["layer_runtime_sdk_bytes"]
    return [
        "| size (files, unzipped) | bytes | goal |",
        "|---|---|---|",
        f"| function code | {sizes['function_bytes']:,} | <= {GOALS['function_bytes']:,} |",
        f"| layer | {sizes['layer_bytes']:,} | <= {GOALS['layer_bytes']:,} |",
        f"| of which the runtime's own SDK ({', '.join(sizes['runtime_sdk_distributions'])}) "
        f"| {sizes['layer_runtime_sdk_bytes']:,} | |",
        f"| layer without it | {without_sdk:,} | |",
    ]


def _text(spread: dict[str, float], digits: int) -> str:
    return Spread(spread["median"], spread["min"], spread["max"]).text(digits)


if __name__ == "__main__":
    sys.exit(main())
