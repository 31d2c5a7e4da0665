"""Warm invocations, in this process, side by side: the project's handler as it is, Powertools'
BatchProcessor delivering record after record, and an ideal pool of 10 threads that only POSTs
and reschedules (no logging, metrics or per-record bookkeeping: the floor to compare against).

SQS is moto in process (`mock_aws`, the template's queues); the downstream is the demo
downstream in a process of its own, so its threads take neither this process's CPU time nor
its interpreter lock. SQS requests are counted by a handler in botocore's built-in list, which
every session made afterwards starts with: boto3's, and the botocore sessions the handler's own
clients are made from, whatever its internals.
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import batched
from typing import Any, cast

import boto3
import botocore.handlers
import requests
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from requests.adapters import HTTPAdapter

from benchmarks.spread import Spread, alternating
from local.downstream.downstream_process import DownstreamProcess
from local.lambda_service.lambda_context import FakeLambdaContext
from local.lambda_service.lambda_sqs_event import lambda_sqs_event

POOL_SIZE = 10
# What the comparison contenders set a failed record's visibility to: the delay is not measured.
RETRY_DELAY_SECONDS = 60
FAILING_BODY = json.dumps({"simulate": {"status": 503}})

Handler = Callable[[dict[str, Any]], Any]


class SqsRequestCounter:
    def __init__(self) -> None:
        self.requests = 0
        botocore.handlers.BUILTIN_HANDLERS.append(("before-call.sqs", self._count))
        # boto3's default session, made again now, starts with it too.
        boto3.setup_default_session()

    def _count(self, **_: Any) -> None:
        self.requests += 1


@dataclass
class Queue:
    url: str
    arn: str


@dataclass(frozen=True)
class BatchFigures:
    """Per contender: seconds of a batch of 10 and of 100 at the downstream's latency, of a
    failed batch of 10 and its SQS requests, and CPU milliseconds per record at zero latency."""

    batch_10_s: dict[str, Spread]
    batch_100_s: dict[str, Spread]
    failed_batch_10_s: dict[str, Spread]
    failed_batch_10_sqs_requests: dict[str, Spread]
    cpu_ms_per_record: dict[str, Spread]
    # Each contender's CPU per record over Powertools sequential's, round by round (the same
    # moment's load on the machine for both).
    cpu_per_record_ratio: dict[str, Spread]


def contenders(downstream_url: str, queue: Queue) -> dict[str, Handler]:
    # Imported here: Powertools reads its settings from the environment at import.
    from consumer.app import lambda_handler  # noqa: PLC0415

    def project(event: dict[str, Any]) -> Any:
        return lambda_handler(event, FakeLambdaContext())

    sqs = boto3.client("sqs")
    return {
        "project": project,
        "powertools_sequential": _powertools_sequential(downstream_url, queue, sqs),
        "ideal_pool": _ideal_pool(downstream_url, queue, sqs),
    }


def _session(pool_size: int) -> requests.Session:
    session = requests.Session()
    session.mount("http://", HTTPAdapter(pool_connections=1, pool_maxsize=pool_size))
    return session


def _post(session: requests.Session, url: str, record: dict[str, Any]) -> int:
    headers = {"Content-Type": "application/json", "Idempotency-Key": record["messageId"]}
    return session.post(url, data=record["body"].encode(), headers=headers, timeout=10).status_code


def _powertools_sequential(url: str, queue: Queue, sqs: Any) -> Handler:
    """The Powertools idiom: BatchProcessor, a record handler that raises, and the backoff as a
    failure_handler, which can only reschedule record by record."""
    session = _session(1)

    class RescheduleEachFailure(BatchProcessor):
        def failure_handler(self, record: Any, exception: Any) -> Any:
            sqs.change_message_visibility(
                QueueUrl=queue.url,
                ReceiptHandle=record.receipt_handle,
                VisibilityTimeout=RETRY_DELAY_SECONDS,
            )
            return super().failure_handler(record, exception)

    processor = RescheduleEachFailure(event_type=EventType.SQS)

    def record_handler(record: SQSRecord) -> None:
        status = _post(session, url, record.raw_event)
        if not 200 <= status < 300:
            raise RuntimeError(f"downstream answered {status}")

    def handle(event: dict[str, Any]) -> PartialItemFailureResponse:
        context = cast(LambdaContext, FakeLambdaContext())
        return process_partial_response(event, record_handler, processor, context)

    return handle


def _ideal_pool(url: str, queue: Queue, sqs: Any) -> Handler:
    session = _session(POOL_SIZE)
    pool = ThreadPoolExecutor(POOL_SIZE)

    def handle(event: dict[str, Any]) -> dict[str, Any]:
        records = event["Records"]
        statuses = list(pool.map(lambda record: _post(session, url, record), records))
        failed = [
            record
            for record, status in zip(records, statuses, strict=True)
            if not 200 <= status < 300
        ]
        for chunk in batched(failed, 10, strict=False):
            sqs.change_message_visibility_batch(
                QueueUrl=queue.url,
                Entries=[
                    {
                        "Id": str(n),
                        "ReceiptHandle": record["receiptHandle"],
                        "VisibilityTimeout": RETRY_DELAY_SECONDS,
                    }
                    for n, record in enumerate(chunk)
                ],
            )
        return {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in failed]}

    return handle


def delivered_batch(size: int, queue: Queue) -> dict[str, Any]:
    """A batch every record of which the downstream accepts (no SQS request is needed)."""
    return lambda_sqs_event(
        [
            {
                "MessageId": str(uuid.uuid4()),
                "ReceiptHandle": f"handle-{n}",
                "Body": json.dumps({"orderId": f"B-{n}", "amount": n}),
                "Attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "0"},
            }
            for n in range(size)
        ],
        queue.arn,
    )


def failed_batch(sqs: Any, queue: Queue) -> dict[str, Any]:
    """Ten real messages on the source queue, received once, each asking the downstream for 503:
    their receipt handles are valid, so every visibility change succeeds."""
    sqs.send_message_batch(
        QueueUrl=queue.url,
        Entries=[{"Id": str(n), "MessageBody": FAILING_BODY} for n in range(10)],
    )
    received: list[dict[str, Any]] = []
    while len(received) < 10:
        received += sqs.receive_message(
            QueueUrl=queue.url, MaxNumberOfMessages=10 - len(received), AttributeNames=["All"]
        ).get("Messages", [])
    return lambda_sqs_event(received, queue.arn)


def timed(handler: Handler, event: dict[str, Any], expect_failures: int) -> float:
    started = time.perf_counter()
    try:
        response = handler(event)
    except Exception:
        # Every record failed: the project and Powertools raise by design.
        if expect_failures != len(event["Records"]):
            raise
        return time.perf_counter() - started
    elapsed = time.perf_counter() - started
    failures = len(response["batchItemFailures"])
    if failures != expect_failures:
        raise RuntimeError(f"expected {expect_failures} failed records, got {response}")
    return elapsed


def measure(
    *,
    handlers: dict[str, Handler],
    downstream: DownstreamProcess,
    queue: Queue,
    counter: SqsRequestCounter,
    repeats: int,
    latency_ms: int,
    cpu_batches: int,
) -> BatchFigures:
    sqs = boto3.client("sqs")
    downstream.set_latency_ms(0)
    # Warm, as a busy execution environment is: imports, clients, connections, and whatever a
    # handler looks up once and keeps (the project caches the queue's URL from GetQueueUrl).
    for handler in handlers.values():
        timed(handler, delivered_batch(10, queue), 0)
        timed(handler, failed_batch(sqs, queue), 10)

    cpu = alternating(
        {name: cpu_per_record(handler, queue, cpu_batches) for name, handler in handlers.items()},
        repeats,
    )
    downstream.set_latency_ms(latency_ms)
    batch_10 = _timed_rounds(handlers, lambda: delivered_batch(10, queue), 0, repeats)
    batch_100 = _timed_rounds(handlers, lambda: delivered_batch(100, queue), 0, repeats)

    def failed(handler: Handler) -> Callable[[], tuple[float, int]]:
        def run() -> tuple[float, int]:
            event = failed_batch(sqs, queue)
            before = counter.requests
            seconds = timed(handler, event, 10)
            return seconds, counter.requests - before

        return run

    failures = alternating({name: failed(handler) for name, handler in handlers.items()}, repeats)
    return BatchFigures(
        batch_10_s=_spreads(batch_10),
        batch_100_s=_spreads(batch_100),
        failed_batch_10_s=_spreads({n: [s for s, _ in runs] for n, runs in failures.items()}),
        failed_batch_10_sqs_requests=_spreads(
            {n: [float(r) for _, r in runs] for n, runs in failures.items()}
        ),
        cpu_ms_per_record=_spreads(cpu),
        cpu_per_record_ratio=_spreads(ratios_to(cpu, "powertools_sequential")),
    )


def _timed_rounds(
    handlers: dict[str, Handler],
    event: Callable[[], dict[str, Any]],
    expect_failures: int,
    repeats: int,
) -> dict[str, list[float]]:
    def run(handler: Handler) -> Callable[[], float]:
        return lambda: timed(handler, event(), expect_failures)

    return alternating({name: run(handler) for name, handler in handlers.items()}, repeats)


def cpu_per_record(handler: Handler, queue: Queue, batches: int) -> Callable[[], float]:
    def run() -> float:
        events = [delivered_batch(10, queue) for _ in range(batches)]
        # The process's CPU time: worker threads included, the downstream (another process) not.
        started = time.process_time()
        for event in events:
            timed(handler, event, 0)
        return (time.process_time() - started) * 1000 / (10 * batches)

    return run


def ratios_to(runs: dict[str, list[float]], baseline: str) -> dict[str, list[float]]:
    """Each contender's figure over the baseline's of the same round."""
    return {
        name: [value / base for value, base in zip(values, runs[baseline], strict=True)]
        for name, values in runs.items()
    }


def _spreads(runs: dict[str, list[float]]) -> dict[str, Spread]:
    return {name: Spread.of(values) for name, values in runs.items()}


@contextmanager
def stdout_discarded() -> Iterator[None]:
    """Log lines and EMF documents are formatted as in Lambda, then dropped at file descriptor
    1, whatever holds a reference to sys.stdout: the terminal is not measured."""
    sys.stdout.flush()
    saved = os.dup(1)
    with open(os.devnull, "w") as sink:
        os.dup2(sink.fileno(), 1)
        try:
            yield
        finally:
            sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)
