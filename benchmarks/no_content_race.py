"""Issue 19's concurrent-delivery flake, isolated (docs/flaky-tests.md): the consumer's
DownstreamClient, 10 threads over one pooled session, against the integration tests' downstream
answering what test_concurrent_delivery.py's batch asks (200 to 206, 5xx, 429, 422, with
latencies up to 30 ms). Counts the calls that failed as anything but a status: with a 204 that
carried a body, a reused connection read it as the start of its next answer.

    PYTHONPATH=functions:. .venv/bin/python -m benchmarks.no_content_race --rounds 300
"""

from __future__ import annotations

import argparse
import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from shared.deadline import Deadline
from shared.downstream import DownstreamClient
from shared.errors import DownstreamFailure
from tests.support.downstream import Answer, Downstream

STATUSES = (200, 201, 202, 203, 204, 205, 206, 500, 501, 502, 503, 504, 429, 422)
THREADS = 10


def race(rounds: int, seed: int = 1) -> tuple[int, Counter[str]]:
    """(calls made, failures other than a status by message)."""
    rng = random.Random(seed)
    downstream = Downstream()
    bodies = [f'{{"n": {n}}}' for n in range(len(STATUSES))]
    for body, status in zip(bodies, STATUSES, strict=True):
        downstream.by_body[body] = Answer(status, latency_seconds=rng.uniform(0, 0.03))
    failures: Counter[str] = Counter()
    lock = threading.Lock()
    with downstream.serving():
        client = DownstreamClient(downstream.url, "POST", 5.0, pool_size=THREADS)
        deadline = Deadline(lambda: 60_000)

        def deliver(body: str) -> None:
            try:
                client.deliver(body, body, deadline)
            except DownstreamFailure as failure:
                if failure.outcome != "status":
                    with lock:
                        failures[str(failure).split(" http", 1)[0]] += 1

        with ThreadPoolExecutor(THREADS) as pool:
            for _ in range(rounds):
                list(pool.map(deliver, bodies))
    return rounds * len(bodies), failures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=300, help="rounds of 14 calls")
    args = parser.parse_args()
    started = time.monotonic()
    calls, failures = race(args.rounds)
    print(
        f"rounds={args.rounds} calls={calls} connection_errors={sum(failures.values())} "
        f"({time.monotonic() - started:.1f}s) {dict(failures)}"
    )


if __name__ == "__main__":
    main()
