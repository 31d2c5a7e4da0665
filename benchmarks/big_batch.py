"""`make bench-big-batch`: the built function handling one batch of 10,000 records (BatchSize's
maximum) in a Lambda-like process, half of them failing and all of them failing.

The process is an ExecutionEnvironment's, as `make run` starts it (Python 3.13 isolated,
the function's code and layer as `sam build` left them, Lambda's variables, killed at the
function's timeout). The built stack is deployed into moto's server, so that every record is a
real message received from the source queue: the function's visibility changes meet real
receipt handles. The downstream is the demo downstream in a process of its own, answering after
--latency-ms; a failing record asks it for 503. The circuit breaker is off by default (every
record then calls the downstream: the longest batch); --breaker Enabled deploys it on.

For each case: the handler's wall time against the function's timeout and the invocation's
outcome, the records acknowledged and failed, how many failures got their backoff (the log's
"retry scheduled" lines) and how many kept the queue's visibility timeout, the process's peak
resident memory (VmHWM, sampled from /proc while it runs) against MemorySize, and the event's
size against Lambda's 6 MB invocation payload limit.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks.batch_delivery import FAILING_BODY
from local.aws.deploy import deploy
from local.aws.emulator import Emulator, running_emulator
from local.downstream.downstream_process import downstream_process
from local.lambda_service.execution_environment import ExecutionEnvironment, FunctionSpec, Setup
from local.lambda_service.function_code import install_code
from local.lambda_service.lambda_sqs_event import MAX_EVENT_BYTES, event_bytes, lambda_sqs_event
from local.shared.paths import ROOT

STACK_NAME = "sqs-backoff-consumer"
CASES = {"half_failing": 0.5, "all_failing": 1.0}
RETRY_SCHEDULED = "delivery failed; retry scheduled"
FINAL_ATTEMPT = "final attempt failed"
BACKOFF_NOT_SET = "delivery failed and the backoff could not be set"


@dataclass(frozen=True)
class BigBatch:
    case: str
    records: int
    failing_records: int
    latency_ms: int
    timeout_s: float
    wall_s: float
    outcome: str
    # Records the response lets the mapping delete, and records it returns to the queue.
    acknowledged: int
    failed: int
    # Failed records whose backoff was set, and those left to the queue's visibility timeout.
    rescheduled: int
    backoff_not_set: int
    peak_rss_mb: float
    memory_mb: int
    event_mb: float
    event_limit_mb: float

    @property
    def inside_timeout(self) -> bool:
        return self.outcome in ("response", "error") and self.wall_s < self.timeout_s


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000, help="batch size (10000)")
    parser.add_argument("--latency-ms", type=int, default=50, help="downstream latency (50)")
    parser.add_argument(
        "--case", choices=sorted(CASES), action="append", help="one case (default both)"
    )
    parser.add_argument("--breaker", choices=["Enabled", "Disabled"], default="Disabled")
    parser.add_argument(
        "--build-dir", type=Path, default=ROOT / ".aws-sam" / "build", help="sam build's output"
    )
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    args = parser.parse_args(argv)
    if args.records < 1 or args.latency_ms < 0:
        parser.error("--records must be at least 1, --latency-ms at least 0")
    results = [
        measure(args.build_dir, case, args.records, args.latency_ms, args.breaker)
        for case in args.case or list(CASES)
    ]
    print(table(results))
    if args.json:
        print(json.dumps([asdict(result) for result in results], separators=(",", ":")))
    return 0 if all(result.inside_timeout for result in results) else 1


def measure(build_dir: Path, case: str, records: int, latency_ms: int, breaker: str) -> BigBatch:
    _progress(f"{case}: deploying the built stack and sending {records} messages")
    with (
        downstream_process(latency_ms=latency_ms) as downstream,
        running_emulator() as emulator,
        tempfile.TemporaryDirectory(prefix="big-batch-") as scratch,
    ):
        deployed = deploy(
            emulator,
            build_dir.resolve(),
            STACK_NAME,
            {"DownstreamUrl": downstream.url, "CircuitBreaker": breaker},
        )
        emulator.detach_builtin_sqs_pollers()
        [mapping] = deployed.event_source_mappings
        queue_arn = str(mapping["EventSourceArn"])
        failing = round(records * CASES[case])
        event = _received_event(emulator, queue_arn, records, failing)
        root = Path(scratch)
        setup = Setup(
            FunctionSpec.from_configuration(deployed.function),
            install_code(emulator, deployed, root / "code"),
            emulator.endpoint_url,
            emulator.region,
        )
        log_path = root / "function.log"
        environment = ExecutionEnvironment(setup, log_path)
        _progress(f"{case}: invoking the function with {records} records at {latency_ms} ms")
        with _peak_rss(environment) as peak:
            try:
                invocation = environment.invoke(event)
            finally:
                environment.shutdown()
        failed = _failed(invocation.outcome, invocation.response, records)
        log = _log_messages(log_path)
        return BigBatch(
            case=case,
            records=records,
            failing_records=failing,
            latency_ms=latency_ms,
            timeout_s=setup.function.timeout_seconds,
            wall_s=round(invocation.duration_seconds, 2),
            outcome=invocation.outcome,
            acknowledged=records - failed,
            failed=failed,
            rescheduled=sum(1 for m in log if m.startswith((RETRY_SCHEDULED, FINAL_ATTEMPT))),
            backoff_not_set=sum(1 for m in log if m.startswith(BACKOFF_NOT_SET)),
            peak_rss_mb=round(peak[0] / 1024, 1),
            memory_mb=setup.function.memory_mb,
            event_mb=round(event_bytes(event) / 1_000_000, 2),
            event_limit_mb=round(MAX_EVENT_BYTES / 1_000_000, 2),
        )


def _received_event(
    emulator: Emulator, queue_arn: str, records: int, failing: int
) -> dict[str, Any]:
    """`records` messages sent to the source queue and received, shaped as Lambda's event; the
    failing ones spread evenly through the batch."""
    sqs = emulator.client("sqs")
    name = queue_arn.rsplit(":", 1)[-1]
    queue_url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    bodies = [
        FAILING_BODY if (n * failing) // records != ((n + 1) * failing) // records else
        json.dumps({"orderId": f"BB-{n}"})
        for n in range(records)
    ]  # fmt: skip
    for start in range(0, records, 10):
        sqs.send_message_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(offset), "MessageBody": body}
                for offset, body in enumerate(bodies[start : start + 10])
            ],
        )
    received: list[dict[str, Any]] = []
    while len(received) < records:
        messages = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=min(10, records - len(received)),
            VisibilityTimeout=900,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            raise RuntimeError(f"only {len(received)} of {records} messages could be received")
        received += messages
    return lambda_sqs_event(received, queue_arn)


def _failed(outcome: str, response: Any, records: int) -> int:
    """Records the mapping returns to the queue: those the response names, or every record
    when the invocation failed (an error, a timeout, a crash)."""
    if outcome == "response" and isinstance(response, dict):
        return len(response.get("batchItemFailures") or [])
    return records


def _log_messages(log_path: Path) -> list[str]:
    messages: list[str] = []
    for line in log_path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("{"):
            try:
                messages.append(str(json.loads(line).get("message", "")))
            except json.JSONDecodeError:
                continue
    return messages


@contextmanager
def _peak_rss(environment: ExecutionEnvironment) -> Iterator[list[int]]:
    """The process's peak resident set (kB), read from /proc/<pid>/status (VmHWM, the high
    water mark) every 50 ms while the invocation runs: it holds even after a spike."""
    peak = [0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.05):
            process = environment._process
            if process is None:
                continue
            try:
                status = Path(f"/proc/{process.pid}/status").read_text()
            except OSError:
                continue
            for line in status.splitlines():
                if line.startswith("VmHWM:"):
                    peak[0] = max(peak[0], int(line.split()[1]))

    sampler = threading.Thread(target=sample, name="rss-sampler", daemon=True)
    sampler.start()
    try:
        yield peak
    finally:
        stop.set()
        sampler.join()


def table(results: list[BigBatch]) -> str:
    lines = [
        "| batch | wall, s | timeout, s | outcome | acknowledged | failed | rescheduled "
        "| backoff not set | peak RSS, MB | MemorySize, MB | event, MB (limit) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.records:,} at {r.latency_ms} ms, {r.case.replace('_', ' ')} | {r.wall_s} "
            f"| {r.timeout_s:g} | {r.outcome} | {r.acknowledged:,} | {r.failed:,} "
            f"| {r.rescheduled:,} | {r.backoff_not_set:,} | {r.peak_rss_mb} | {r.memory_mb} "
            f"| {r.event_mb} ({r.event_limit_mb}) |"
        )
    return "\n".join(lines)


def _progress(message: str) -> None:
    print(f"big batch: {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SQS"):
        os.environ.pop(name, None)
    sys.exit(main())
