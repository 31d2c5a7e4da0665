"""Large batches finish inside the invocation: the reserve grows with the records still to
settle, their visibility changes run concurrently, and the rescheduling stops before the
timeout, every record still reported."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from consumer.delivery import get_runtime
from local.lambda_service.lambda_context import FakeLambdaContext
from shared import deadline as deadline_module
from tests.integration.conftest import Harness
from tests.support.downstream import Answer


def received_event(consumer: Harness, messages: int) -> dict[str, Any]:
    """`messages` messages sent and received, shaped as one SQS event."""
    for n in range(messages):
        consumer.send(json.dumps({"n": n}))
    records: list[Any] = []
    while len(records) < messages:
        records += consumer.receive_event()["Records"]
    return {"Records": records}


def test_the_reserve_grows_with_the_records_left_to_settle(
    consumer: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given 30 records, each visibility call taking a second by the wrap-up's estimate (so 3
    # calls at one at a time need more than the 3 s floor), and 4.4 s of the invocation left
    monkeypatch.setenv("DELIVERY_CONCURRENCY", "1")
    monkeypatch.setattr(deadline_module, "VISIBILITY_ROUND_SECONDS", 1.0)
    get_runtime.cache_clear()
    consumer.watch_runtime()
    event = received_event(consumer, 30)

    # When the batch is processed
    with pytest.raises(BatchProcessingError, match=r"All records failed processing \(30\)"):
        consumer.invoke(event, FakeLambdaContext(remaining_ms=4_400))

    # Then no downstream call was made (a fixed 3 s reserve would have allowed 0.9 s of calls),
    # and every record was rescheduled with its backoff
    assert consumer.downstream.requests == []
    assert len(consumer.visibility_changes) == 30
    assert consumer.emitted().metric_total("DeadlineSkipped") == 30


def test_visibility_changes_run_concurrently(consumer: Harness) -> None:
    # Given 30 records the downstream refuses, delivered 10 at a time (the default)
    threads: set[str] = set()
    seen = threading.Barrier(3, timeout=10)

    def note_thread(**_: Any) -> None:
        threads.add(threading.current_thread().name)
        # The three calls must be under way at the same time to pass the barrier: proof that they
        # overlap, whatever the machine's speed.
        seen.wait()

    consumer.downstream.default = Answer(503)
    event = received_event(consumer, 30)
    get_runtime().sqs.client.meta.events.register(
        "before-call.sqs.ChangeMessageVisibilityBatch", note_thread
    )

    # When the batch is processed
    with pytest.raises(BatchProcessingError):
        consumer.invoke(event)

    # Then its three ChangeMessageVisibilityBatch calls overlapped, on the delivery threads
    assert consumer.visibility_change_calls == 3
    assert len(consumer.visibility_changes) == 30
    assert len(threads) >= 2
    assert all(name.startswith("delivery") for name in threads)


def test_the_rescheduling_stops_before_the_timeout_and_says_so(consumer: Harness) -> None:
    # Given two records the downstream refuses, and an invocation whose clock runs out while
    # they are delivered: 5 s left for the calls, then 1 s
    consumer.downstream.default = Answer(503)
    event = received_event(consumer, 2)
    downstream = consumer.downstream

    class RunningOut(FakeLambdaContext):
        def get_remaining_time_in_millis(self) -> int:
            return 5_000 if len(downstream.requests) < 2 else 1_000

    context = RunningOut()

    # When the batch is processed
    with pytest.raises(BatchProcessingError):
        consumer.invoke(event, context)

    # Then no visibility call was started, and each record's log line says why its backoff
    # was not set: the queue's visibility timeout applies, and no record is lost
    assert consumer.visibility_changes == []
    emitted = consumer.emitted()
    assert emitted.metric_total("VisibilityChangeFailed") == 2
    refusals = [line["visibility_error"] for line in emitted.logs if "visibility_error" in line]
    assert len(refusals) == 2
    assert all("return before its timeout" in refusal for refusal in refusals)
