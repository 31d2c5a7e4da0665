"""`make bench-record-cpu`: where the project's per-record CPU goes at 0 ms latency.

make bench's CPU-per-record row, alone and quick (seconds, not minutes), with the project's
handler at the DeliveryConcurrency asked for: 10 (make bench's) or 50 (the template's default)
against 1 splits the cost of the delivery threads from the rest of a record's path. Same
harness as make bench (moto in process, the demo downstream in a process of its own,
alternating rounds), against Powertools' sequential BatchProcessor and the ideal pool in the
same run, and each over Powertools' figure of the same round.
`--profile N` ends with cProfile's view of N batches of 10 through the project's handler
(read it with --delivery-concurrency 1: cProfile follows the delivery threads only in part).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import sys
from typing import Any

import boto3
from moto import mock_aws

from benchmarks import batch_delivery
from benchmarks.batch_delivery import Queue, SqsRequestCounter
from benchmarks.bench import fake_aws_environment
from benchmarks.spread import Spread, alternating
from local.aws.moto_stack import create_queues, load_stack
from local.downstream.downstream_process import downstream_process


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delivery-concurrency", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=7, help="rounds (default 7)")
    parser.add_argument("--cpu-batches", type=int, default=20, help="batches of 10 a round")
    parser.add_argument("--profile", type=int, default=0, help="batches to profile (default 0)")
    args = parser.parse_args(argv)
    if args.delivery_concurrency < 1 or args.repeats < 1 or args.cpu_batches < 1:
        parser.error("--delivery-concurrency, --repeats and --cpu-batches must be at least 1")
    figures, ratios, profile = measure(
        args.delivery_concurrency, args.repeats, args.cpu_batches, args.profile
    )
    print(f"CPU per record at 0 ms, ms (DeliveryConcurrency {args.delivery_concurrency}):")
    for name, spread in figures.items():
        print(f"  {name}: {spread.text(3)}")
    print("Over Powertools sequential's, round by round:")
    for name, spread in ratios.items():
        print(f"  {name}: {spread.text(3)}")
    if profile:
        print(profile)
    print(json.dumps({name: spread.as_dict() for name, spread in figures.items()}))
    return 0


def measure(
    delivery_concurrency: int, repeats: int, cpu_batches: int, profiled_batches: int
) -> tuple[dict[str, Spread], dict[str, Spread], str]:
    fake_aws_environment()
    with downstream_process(latency_ms=0) as downstream, mock_aws():
        SqsRequestCounter()
        stack = load_stack({"DownstreamUrl": downstream.url})
        create_queues(stack, boto3.client("sqs"))
        queue = Queue(stack.refs["SourceQueue"], stack.attributes[("SourceQueue", "Arn")])
        os.environ.update(stack.function_environment())
        os.environ["DELIVERY_CONCURRENCY"] = str(delivery_concurrency)
        with batch_delivery.stdout_discarded():
            handlers = batch_delivery.contenders(downstream.url, queue)
            for handler in handlers.values():
                batch_delivery.timed(handler, batch_delivery.delivered_batch(10, queue), 0)
            runs = alternating(
                {
                    name: batch_delivery.cpu_per_record(handler, queue, cpu_batches)
                    for name, handler in handlers.items()
                },
                repeats,
            )
            profile = _profile(handlers["project"], queue, profiled_batches)
    ratios = batch_delivery.ratios_to(runs, "powertools_sequential")
    return (
        {name: Spread.of(values) for name, values in runs.items()},
        {
            name: Spread.of(values)
            for name, values in ratios.items()
            if name != "powertools_sequential"
        },
        profile,
    )


def _profile(handler: batch_delivery.Handler, queue: Queue, batches: int) -> str:
    if batches < 1:
        return ""
    events = [batch_delivery.delivered_batch(10, queue) for _ in range(batches)]
    profiler = cProfile.Profile()
    profiler.enable()
    for event in events:
        batch_delivery.timed(handler, event, 0)
    profiler.disable()
    text = io.StringIO()
    stats: Any = pstats.Stats(profiler, stream=text)
    stats.sort_stats("cumulative").print_stats(40)
    return text.getvalue()


if __name__ == "__main__":
    sys.exit(main())
