"""What the handler costs per record, measured side by side in one run (the machine is noisy).

- delivery overhead: records/s through lambda_handler (batches of 10, all delivered) against
  bare `requests` POSTs of the same bodies to the same local server; the ratio is what
  Powertools, the batch processor, logging and metrics add.
- rescheduling cost: SQS requests per failed batch of 10 with ChangeMessageVisibilityBatch,
  against one ChangeMessageVisibility per record (what a per-record failure handler would make).

Run: make bench-handler (or python -m benchmarks.handler_overhead --records N).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import requests
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from moto import mock_aws

from local.lambda_context import FakeLambdaContext
from local.lambda_sqs_event import lambda_sqs_event
from local.moto_stack import create_queues, load_stack
from tests.support.downstream import Answer, Downstream

BATCH_SIZE = 10


def _configure_environment(environment: dict[str, str]) -> None:
    os.environ.update(
        {
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "benchmark",
            "AWS_SECRET_ACCESS_KEY": "benchmark",
            "POWERTOOLS_SERVICE_NAME": "sqs-backoff-consumer",
            "POWERTOOLS_METRICS_NAMESPACE": "Benchmark",
            **environment,
        }
    )


def _timed(run: Callable[[int], None], batch: int) -> float:
    started = time.perf_counter()
    run(batch)
    return time.perf_counter() - started


@contextlib.contextmanager
def _stdout_discarded() -> Iterator[None]:
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        yield


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=500, help="records per repeat (default 500)")
    parser.add_argument(
        "--repeats", type=int, default=5, help="repeats; the best counts (default 5)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document last")
    args = parser.parse_args(argv)
    if args.records < BATCH_SIZE or args.repeats < 1:
        parser.error(f"--records must be at least {BATCH_SIZE} and --repeats at least 1")

    _configure_environment({})
    with Downstream().serving() as downstream, mock_aws():
        result = _measure(downstream, args.records, args.repeats)

    print("| measure | value |")
    print("|---|---|")
    print(f"| bare requests POSTs, records/s | {result['bare_records_per_s']:.0f} |")
    print(f"| lambda_handler, records/s | {result['handler_records_per_s']:.0f} |")
    print(f"| handler / bare throughput | {result['handler_over_bare']:.2f} |")
    print(f"| handler overhead per record, ms | {result['overhead_ms_per_record']:.2f} |")
    print(f"| SQS requests per failed batch of 10 (batched) | {result['sqs_calls_batched']} |")
    print(
        f"| SQS requests per failed batch of 10 (per record) | {result['sqs_calls_per_record']} |"
    )
    if args.json:
        print(json.dumps(result))
    return 0


def _measure(downstream: Downstream, records: int, repeats: int) -> dict[str, Any]:
    sqs = boto3.client("sqs", region_name="us-east-1")
    stack = load_stack({"DownstreamUrl": downstream.url})
    create_queues(stack, sqs)
    _configure_environment(stack.function_environment())
    # Imported only now: Powertools reads its settings from the environment at import.
    from consumer.app import lambda_handler  # noqa: PLC0415
    from consumer.observability import logger  # noqa: PLC0415
    from consumer.runtime import get_runtime  # noqa: PLC0415

    get_runtime.cache_clear()
    # Log lines are formatted as in Lambda (INFO), then dropped: the terminal is not measured.
    handler_stream = logger.registered_handler
    assert isinstance(handler_stream, logging.StreamHandler)
    handler_stream.setStream(open(os.devnull, "w"))  # noqa: SIM115 - lives as long as the run
    source_url = stack.refs["SourceQueue"]
    source_arn = stack.attributes[("SourceQueue", "Arn")]
    bodies = [json.dumps({"orderId": f"B-{n}", "amount": n}) for n in range(records)]
    events = [
        lambda_sqs_event(
            [
                {
                    "MessageId": f"00000000-0000-4000-8000-{n:012d}",
                    "ReceiptHandle": f"handle-{n}",
                    "Body": bodies[n],
                    "Attributes": {"ApproximateReceiveCount": "1"},
                }
                for n in range(start, min(start + BATCH_SIZE, records))
            ],
            source_arn,
        )
        for start in range(0, records, BATCH_SIZE)
    ]
    session = requests.Session()

    def bare(batch: int) -> None:
        for body in bodies[batch * BATCH_SIZE : (batch + 1) * BATCH_SIZE]:
            session.post(downstream.url, data=body.encode(), timeout=5).raise_for_status()

    def handler(batch: int) -> None:
        with _stdout_discarded():  # EMF documents are print()ed
            response = lambda_handler(events[batch], FakeLambdaContext())
        if response != {"batchItemFailures": []}:
            raise RuntimeError(f"the benchmark's downstream failed: {response}")

    # Batch by batch, alternating, so that a burst of load elsewhere hits both sides alike;
    # the median of many short timings shrugs off the bursts themselves.
    bare_seconds: list[float] = []
    handler_seconds: list[float] = []
    for _ in range(repeats):
        for batch in range(len(events)):
            bare_seconds.append(_timed(bare, batch))
            handler_seconds.append(_timed(handler, batch))
    bare_rate = BATCH_SIZE / statistics.median(bare_seconds)
    handler_rate = BATCH_SIZE / statistics.median(handler_seconds)

    calls = {"batched": 0}

    def count_call(**_: Any) -> None:
        calls["batched"] += 1

    client = get_runtime().sqs.client
    client.meta.events.register("before-call.sqs.ChangeMessageVisibilityBatch", count_call)
    for n in range(BATCH_SIZE):
        sqs.send_message(QueueUrl=source_url, MessageBody=json.dumps({"n": n}))
    received = sqs.receive_message(
        QueueUrl=source_url, MaxNumberOfMessages=BATCH_SIZE, AttributeNames=["All"]
    )["Messages"]
    downstream.default = Answer(503)
    failed_batch = lambda_sqs_event([dict(message) for message in received], source_arn)
    with _stdout_discarded(), contextlib.suppress(BatchProcessingError):
        # Every record fails, so the handler raises by design.
        lambda_handler(failed_batch, FakeLambdaContext())
    return {
        "records": records,
        "repeats": repeats,
        "bare_records_per_s": bare_rate,
        "handler_records_per_s": handler_rate,
        "handler_over_bare": handler_rate / bare_rate,
        "overhead_ms_per_record": 1000 / handler_rate - 1000 / bare_rate,
        "timed_batches_each": len(bare_seconds),
        "sqs_calls_batched": calls["batched"],
        "sqs_calls_per_record": len(received),
    }


if __name__ == "__main__":
    sys.exit(main())
