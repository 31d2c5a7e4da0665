"""The demo downstream in a process of its own, for measurements: the server's threads then
take neither the measured process's CPU time nor its interpreter lock.

`python -m local.downstream.downstream_process` prints its URL on the first line of standard output
and serves until its standard input closes; a line `latency-ms N` on standard input sets the answer
time of the requests that follow (answered `ok`).
"""

from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

from local.downstream.demo_downstream import DemoDownstream, FailurePlan
from local.shared.paths import ROOT


class DownstreamProcess:
    def __init__(self, url: str, control: IO[str], replies: IO[str]) -> None:
        self.url = url
        self._control = control
        self._replies = replies

    def set_latency_ms(self, latency_ms: int) -> None:
        self._control.write(f"latency-ms {latency_ms}\n")
        self._control.flush()
        if self._replies.readline().strip() != "ok":
            raise RuntimeError("the downstream process refused the latency")


@contextmanager
def downstream_process(latency_ms: int = 0) -> Iterator[DownstreamProcess]:
    """Start the demo downstream (200 unless a body asks otherwise, see demo_downstream)."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "local.downstream.downstream_process",
            "--latency-ms",
            str(latency_ms),
        ],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdin is not None
    assert process.stdout is not None
    try:
        url = process.stdout.readline().strip()
        if not url.startswith("http://"):
            raise RuntimeError("the downstream process did not start")
        yield DownstreamProcess(url, process.stdin, process.stdout)
    finally:
        process.stdin.close()
        process.wait(timeout=10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=int, default=0, help="answer time (default 0)")
    args = parser.parse_args(argv)
    downstream = DemoDownstream(FailurePlan(latency_ms=args.latency_ms))
    with downstream.serving():
        print(downstream.url, flush=True)
        for line in sys.stdin:
            command, _, value = line.partition(" ")
            if command != "latency-ms":
                print(f"unknown command {command}", flush=True)
                continue
            # Requests read the plan as they arrive: the next ones take the new latency.
            downstream.plan = dataclasses.replace(downstream.plan, latency_ms=int(value))
            print("ok", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
