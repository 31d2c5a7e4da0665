"""The emulated event source mapping against moto's SQS, with the function stood in for."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local.lambda_service.event_source_mapping import (
    BatchReport,
    MappingSettings,
    SqsEventSourceMapping,
)
from local.lambda_service.execution_environment import Invocation
from local.lambda_service.lambda_sqs_event import MAX_EVENT_BYTES, event_bytes

SAM_EVENT_ATTRIBUTES = {
    "ApproximateReceiveCount",
    "SentTimestamp",
    "SenderId",
    "ApproximateFirstReceiveTimestamp",
}


class StandIn:
    """Answers each invocation with `answer(event)` and remembers the events."""

    def __init__(self, answer: Callable[[dict[str, Any]], Invocation]) -> None:
        self.answer = answer
        self.events: list[dict[str, Any]] = []

    @contextmanager
    def environment(self) -> Iterator[StandIn]:
        yield self

    def invoke(self, event: Any, request_id: str | None = None) -> Invocation:
        self.events.append(event)
        return self.answer(event)


class Queue:
    def __init__(
        self, batch_size: int = 10, maximum_concurrency: int = 2, batching_window: int = 0
    ) -> None:
        self.sqs = boto3.client("sqs", region_name="us-east-1")
        self.url = self.sqs.create_queue(QueueName="source")["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])
        self.settings = MappingSettings.from_mapping(
            {
                "EventSourceArn": arn["Attributes"]["QueueArn"],
                "BatchSize": batch_size,
                "MaximumBatchingWindowInSeconds": batching_window,
                "FunctionResponseTypes": ["ReportBatchItemFailures"],
                "ScalingConfig": {"MaximumConcurrency": maximum_concurrency},
                "State": "Enabled",
            },
            self.url,
        )

    def send(self, count: int) -> list[str]:
        return [
            self.sqs.send_message(QueueUrl=self.url, MessageBody=f'{{"n": {n}}}')["MessageId"]
            for n in range(count)
        ]

    def counts(self) -> tuple[int, int]:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return (
            int(attributes["ApproximateNumberOfMessages"]),
            int(attributes["ApproximateNumberOfMessagesNotVisible"]),
        )

    def poll_until(
        self,
        function: StandIn,
        batches: int,
        max_event_bytes: int = MAX_EVENT_BYTES,
        long_poll_seconds: int = 1,
    ) -> list[BatchReport]:
        """Run the mapping until `batches` batches have been processed."""
        reports: list[BatchReport] = []
        enough = threading.Event()

        def on_batch(report: BatchReport) -> None:
            reports.append(report)
            if len(reports) >= batches:
                enough.set()

        mapping = SqsEventSourceMapping(
            self.sqs,
            self.settings,
            function,
            on_batch=on_batch,
            long_poll_seconds=long_poll_seconds,
            max_event_bytes=max_event_bytes,
        )
        mapping.start()
        try:
            assert enough.wait(timeout=60), "the mapping processed too few batches"
        finally:
            mapping.stop(wait_seconds=5)
        return reports


@pytest.fixture
def queue() -> Iterator[Queue]:
    with mock_aws():
        yield Queue()


def response(payload: Any) -> Invocation:
    return Invocation("r", "response", 0.01, False, response=payload)


def test_successes_are_deleted_and_listed_failures_stay_in_flight(queue: Queue) -> None:
    # Given three messages, the second of which the function reports as failed
    ids = queue.send(3)
    function = StandIn(lambda event: response({"batchItemFailures": [{"itemIdentifier": ids[1]}]}))

    # When the mapping processes them in one batch
    [report] = queue.poll_until(function, batches=1)

    # Then the other two are deleted and the failed one waits out its visibility timeout
    assert report.outcome.delete == (ids[0], ids[2])
    assert queue.counts() == (0, 1)
    # ...and the event is shaped as Lambda shapes it
    [event] = function.events
    assert [record["messageId"] for record in event["Records"]] == ids
    record = event["Records"][0]
    assert set(record) == {
        "messageId", "receiptHandle", "body", "attributes", "messageAttributes", "md5OfBody",
        "eventSource", "eventSourceARN", "awsRegion",
    }  # fmt: skip
    assert set(record["attributes"]) == SAM_EVENT_ATTRIBUTES
    assert record["eventSourceARN"] == queue.settings.queue_arn
    assert record["attributes"]["ApproximateReceiveCount"] == "1"


@pytest.mark.parametrize(
    "invocation",
    [
        Invocation("r", "timeout", 60.0, False, error={"errorType": "Sandbox.Timedout"}),
        Invocation("r", "error", 0.1, False, error={"errorType": "BatchProcessingError"}),
        response({"batchItemFailures": [{"itemIdentifier": "unknown"}]}),
    ],
    ids=["timeout", "raised", "unknown-identifier"],
)
def test_a_failed_invocation_deletes_nothing(queue: Queue, invocation: Invocation) -> None:
    # Given three messages and an invocation that fails (as parametrized)
    queue.send(3)
    # When the mapping processes them in one batch
    [report] = queue.poll_until(StandIn(lambda event: invocation), batches=1)
    # Then none is deleted: all three wait out their visibility timeout
    assert report.outcome.delete == ()
    assert queue.counts() == (0, 3)


def test_batches_hold_at_most_batch_size_records() -> None:
    with mock_aws():
        # Given five messages on a queue whose mapping has a batch size of 2
        queue = Queue(batch_size=2)
        queue.send(5)
        # When the mapping processes them and the function succeeds
        reports = queue.poll_until(StandIn(lambda event: response(None)), batches=3)
        # Then they came in batches of 2, 2 and 1, and all were deleted
        assert sorted(len(report.message_ids) for report in reports) == [1, 2, 2]
        assert queue.counts() == (0, 0)


def test_a_message_with_attributes_carries_sqs_digest_of_them(queue: Queue) -> None:
    # Given a message with a message attribute
    sent = queue.sqs.send_message(
        QueueUrl=queue.url,
        MessageBody="{}",
        MessageAttributes={"trace": {"DataType": "String", "StringValue": "abc"}},
    )
    function = StandIn(lambda event: response(None))

    # When the mapping delivers it
    queue.poll_until(function, batches=1)

    # Then the record carries md5OfMessageAttributes as SQS computed it, beside the attribute
    [record] = function.events[0]["Records"]
    assert record["md5OfMessageAttributes"] == sent["MD5OfMessageAttributes"]
    assert record["messageAttributes"]["trace"]["stringValue"] == "abc"


def test_a_batch_is_cut_at_the_invocation_payload_limit_and_the_rest_follows() -> None:
    with mock_aws():
        # Given ten messages of about 1.5 kB each in the event, a batch size of 10, and a
        # payload limit of 4,000 bytes (two such records fit, three do not), one poller
        queue = Queue(batch_size=10, maximum_concurrency=1)
        ids = [
            queue.sqs.send_message(QueueUrl=queue.url, MessageBody='"' + "x" * 1_000 + '"')[
                "MessageId"
            ]
            for _ in range(10)
        ]
        function = StandIn(lambda event: response(None))

        # When the mapping processes them
        reports = queue.poll_until(function, batches=5, max_event_bytes=4_000)

        # Then no event was over the limit, each held two records, and every message was
        # delivered once and deleted: what did not fit came in the next batch, none was lost
        assert all(event_bytes(event) <= 4_000 for event in function.events)
        assert [len(report.message_ids) for report in reports] == [2] * 5
        delivered = [message_id for report in reports for message_id in report.message_ids]
        assert sorted(delivered) == sorted(ids)
        assert queue.counts() == (0, 0)


def test_a_partial_batch_goes_at_its_window_end_not_after_other_pollers_long_polls() -> None:
    with mock_aws():
        # Given BatchSize 100 with a 1 s batching window, four pollers that long-poll an empty
        # queue for 20 s, and three messages: one poller takes them, the others wait on the
        # queue (the local pollers take turns at ReceiveMessage)
        queue = Queue(batch_size=100, maximum_concurrency=4, batching_window=1)
        ids = queue.send(3)
        invoked_at: list[float] = []

        def answer(event: dict[str, Any]) -> Invocation:
            invoked_at.append(time.monotonic())
            return response(None)

        function = StandIn(answer)

        # When the mapping runs until its first batch
        started = time.monotonic()
        reports = queue.poll_until(function, batches=1, long_poll_seconds=20)
        waited = invoked_at[0] - started

        # Then the three went as one batch well before another poller's 20 s long poll ended
        # (Lambda invokes at the window's end with what it has): a batch held behind the
        # others' long polls waited 20 s or more
        assert sorted(reports[0].message_ids) == sorted(ids)
        assert waited < 10, f"the batch waited {waited:.1f} s for a 1 s window"
