"""The emulated pollers follow the deployed mapping as it changes: Enabled and MaximumConcurrency
read through moto's Lambda API (GetEventSourceMapping), as the function's breaker changes them,
and BatchSize and the batching window, as a stack update changes them."""

from __future__ import annotations

import io
import json
import threading
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.sqs.models import sqs_backends

from local.lambda_service.event_source_mapping import (
    Batching,
    BatchReport,
    MappingSettings,
    MappingState,
    MappingWatcher,
    SqsEventSourceMapping,
)
from local.lambda_service.execution_environment import Invocation

REGION = "us-east-1"
DEADLINE = 30.0


class Function:
    """Stands in for the execution environments: counts invocations running at once, and lets
    each one wait on `gate` (set: no wait)."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.gate.set()
        self._lock = threading.Condition()
        self.running = 0
        self.peak = 0
        # For each invocation in start order: how many ran at its start, itself included.
        self.running_at_start: list[int] = []

    @contextmanager
    def environment(self) -> Iterator[Function]:
        yield self

    def invoke(self, event: Any, request_id: str | None = None) -> Invocation:
        with self._lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
            self.running_at_start.append(self.running)
            self._lock.notify_all()
        try:
            self.gate.wait(DEADLINE)
            # Overlap on purpose: an invocation lingers until two others run beside it (or briefly),
            # so that pollers beyond the cap would show as a higher peak.
            with self._lock:
                self._lock.wait_for(lambda: self.running > 2, 0.3)
        finally:
            with self._lock:
                self.running -= 1
                self._lock.notify_all()
        return Invocation("r", "response", 0.01, False, response={"batchItemFailures": []})

    def wait_running(self, count: int) -> bool:
        with self._lock:
            return self._lock.wait_for(lambda: self.running >= count, DEADLINE)


class Deployment:
    """A queue, a function and its SQS event source mapping in moto, as the stack deploys them."""

    def __init__(self, maximum_concurrency: int) -> None:
        self.sqs = boto3.client("sqs", region_name=REGION)
        self.lambda_client = boto3.client("lambda", region_name=REGION)
        self.queue_url = self.sqs.create_queue(QueueName="source")["QueueUrl"]
        queue_arn = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url, AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        role = boto3.client("iam", region_name=REGION).create_role(
            RoleName="consumer",
            AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
        )["Role"]["Arn"]
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as files:
            files.writestr("app.py", "def handler(event, context):\n    return None\n")
        self.lambda_client.create_function(
            FunctionName="consumer",
            Runtime="python3.13",
            Role=role,
            Handler="app.handler",
            Code={"ZipFile": archive.getvalue()},
        )
        mapping = self.lambda_client.create_event_source_mapping(
            FunctionName="consumer",
            EventSourceArn=queue_arn,
            BatchSize=1,
            FunctionResponseTypes=["ReportBatchItemFailures"],
            ScalingConfig={"MaximumConcurrency": maximum_concurrency},
        )
        self.uuid = mapping["UUID"]
        # moto's own SQS-to-Lambda delivery would invoke the function itself (in Docker): the
        # emulated mapping polls instead, as local.aws.emulator arranges for the local system.
        sqs_backends[DEFAULT_ACCOUNT_ID][REGION].queues[
            "source"
        ].lambda_event_source_mappings.clear()
        self.settings = MappingSettings.from_mapping(
            self.lambda_client.get_event_source_mapping(UUID=self.uuid), self.queue_url
        )

    def read(self) -> dict[str, Any]:
        return dict(self.lambda_client.get_event_source_mapping(UUID=self.uuid))

    def update(self, **changes: Any) -> None:
        self.lambda_client.update_event_source_mapping(UUID=self.uuid, **changes)

    def send(self, count: int) -> list[str]:
        return [
            self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=f'{{"n": {n}}}')["MessageId"]
            for n in range(count)
        ]

    def counts(self) -> tuple[int, int]:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return (
            int(attributes["ApproximateNumberOfMessages"]),
            int(attributes["ApproximateNumberOfMessagesNotVisible"]),
        )


class Batches:
    def __init__(self) -> None:
        self.reports: list[BatchReport] = []
        self._lock = threading.Condition()

    def __call__(self, report: BatchReport) -> None:
        with self._lock:
            self.reports.append(report)
            self._lock.notify_all()

    def wait_for(self, count: int) -> bool:
        with self._lock:
            return self._lock.wait_for(lambda: len(self.reports) >= count, DEADLINE)


@contextmanager
def polling(
    deployment: Deployment, function: Function, batches: Callable[[BatchReport], None]
) -> Iterator[SqsEventSourceMapping]:
    watcher = MappingWatcher(deployment.read, interval_seconds=0.05)
    mapping = SqsEventSourceMapping(
        deployment.sqs,
        deployment.settings,
        function,
        on_batch=batches,
        long_poll_seconds=1,
        watcher=watcher,
    )
    mapping.start()
    try:
        yield mapping
    finally:
        function.gate.set()
        mapping.stop(wait_seconds=5)


def wait_until(condition: Callable[[], bool], watcher: MappingWatcher) -> bool:
    """Poll `condition` once per read of the mapping, up to the deadline."""
    for _ in range(int(DEADLINE / watcher.interval_seconds)):
        if condition():
            return True
        watcher.wait_for_reads(1, DEADLINE)
    return condition()


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


@pytest.mark.usefixtures("aws")
def test_a_disabled_mapping_receives_nothing_and_resumes_where_it_stopped() -> None:
    # Given a mapping that has delivered two messages
    deployment = Deployment(maximum_concurrency=2)
    function, batches = Function(), Batches()
    with polling(deployment, function, batches) as mapping:
        assert mapping.watcher is not None
        watcher = mapping.watcher
        deployment.send(2)
        assert batches.wait_for(2)

        # When the mapping is disabled through the Lambda API (as the breaker disables it)
        deployment.update(Enabled=False)
        # ...and the pollers have seen it and their last long polls have returned
        assert wait_until(lambda: not watcher.state.polling and watcher.busy == 0, watcher)
        receives_before = mapping.receive_calls
        waiting = deployment.send(3)
        assert watcher.wait_for_reads(5, DEADLINE)

        # Then no ReceiveMessage is made while it is disabled: the messages wait visible
        assert watcher.state == MappingState("Disabled", False, 2)
        assert mapping.receive_calls == receives_before
        assert deployment.counts() == (3, 0)
        assert len(batches.reports) == 2

        # When it is enabled again
        deployment.update(Enabled=True)

        # Then the waiting messages are delivered, each at its first receive
        assert batches.wait_for(5)
        counts = {r.message_id: r.receive_count for r in mapping.receives}
        assert {m: counts[m] for m in waiting} == dict.fromkeys(waiting, 1)
        assert deployment.counts() == (0, 0)


@pytest.mark.usefixtures("aws")
def test_concurrency_follows_a_lowered_maximum_concurrency() -> None:
    # Given a mapping with MaximumConcurrency 4, four invocations held running
    deployment = Deployment(maximum_concurrency=4)
    function, batches = Function(), Batches()
    function.gate.clear()
    with polling(deployment, function, batches) as mapping:
        assert mapping.watcher is not None
        watcher = mapping.watcher
        deployment.send(12)
        assert function.wait_running(4)
        assert function.peak == 4

        # When MaximumConcurrency is lowered to 2 through the Lambda API (as half-open does)
        deployment.update(ScalingConfig={"MaximumConcurrency": 2})
        assert wait_until(lambda: watcher.state.maximum_concurrency == 2, watcher)
        function.gate.set()

        # Then the four running finish as they were, and every invocation started after them
        # ran with at most one other
        assert batches.wait_for(12)
        assert function.running_at_start[:4] == [1, 2, 3, 4]
        assert max(function.running_at_start[4:]) <= 2


@pytest.mark.usefixtures("aws")
def test_a_raised_maximum_concurrency_gets_pollers_of_its_own() -> None:
    # Given a mapping deployed with MaximumConcurrency 2, whose pollers hold two invocations
    deployment = Deployment(maximum_concurrency=2)
    function, batches = Function(), Batches()
    function.gate.clear()
    with polling(deployment, function, batches) as mapping:
        assert mapping.watcher is not None
        deployment.send(6)
        assert function.wait_running(2)

        # When MaximumConcurrency is raised to 3
        deployment.update(ScalingConfig={"MaximumConcurrency": 3})

        # Then a third invocation runs beside them
        assert function.wait_running(3)
        function.gate.set()
        assert batches.wait_for(6)


def test_a_failed_read_keeps_the_last_state() -> None:
    # Given a watcher whose second read fails
    answers: list[Any] = [{"State": "Enabled", "ScalingConfig": {"MaximumConcurrency": 5}}]

    def read() -> dict[str, Any]:
        answer = answers.pop(0) if answers else RuntimeError("throttled")
        if isinstance(answer, Exception):
            raise answer
        return dict(answer)

    changes: list[tuple[MappingState, MappingState]] = []
    watcher = MappingWatcher(read, on_change=lambda old, new: changes.append((old, new)))
    # When it reads again
    watcher.refresh()
    # Then the state read first holds, and no change is reported
    assert watcher.state == MappingState("Enabled", True, 5)
    assert watcher.reads == 1
    assert changes == []


@pytest.mark.parametrize(
    ("state", "previous", "polling"),
    [
        ("Enabled", None, True),
        ("Disabled", None, False),
        # Polling stops only when the disable has landed (local.aws.control_plane).
        ("Disabling", True, True),
        ("Disabling", False, False),
        ("Enabling", False, False),
        ("Enabling", True, True),
        ("Updating", True, True),
        ("Updating", False, False),
    ],
)
def test_transitional_states_keep_what_the_pollers_did(
    state: str, previous: bool | None, polling: bool
) -> None:
    # Given the mapping's previous state, When it reports `state`, Then pollers poll or not
    before = MappingState("x", previous, 10) if previous is not None else None
    assert MappingState.from_mapping({"State": state}, before).polling is polling


@pytest.mark.usefixtures("aws")
def test_batches_follow_a_batch_size_changed_by_an_update() -> None:
    # Given a mapping deployed with BatchSize 1 and no batching window, polled by two pollers
    deployment = Deployment(maximum_concurrency=2)
    function, batches = Function(), Batches()
    with polling(deployment, function, batches) as mapping:
        assert mapping.watcher is not None
        watcher = mapping.watcher
        assert watcher.batching == Batching(1, 0.0)

        # When an update (a stack update, or UpdateEventSourceMapping) sets BatchSize 5 with a
        # one-second window, and the pollers have seen it
        deployment.update(BatchSize=5, MaximumBatchingWindowInSeconds=1)
        assert wait_until(lambda: watcher.batching == Batching(5, 1.0), watcher)
        # ...and ten messages arrive
        deployment.send(10)

        # Then every message is delivered, no batch larger than the size it was gathered under,
        # and batches gathered under the new size hold several messages
        assert wait_until(lambda: sum(len(r.message_ids) for r in batches.reports) == 10, watcher)
        assert all(len(r.message_ids) <= r.batch_size_limit for r in batches.reports)
        # (a long poll begun before the change may still bring one message under the old size)
        assert sum(1 for r in batches.reports if r.batch_size_limit == 1) <= 2
        assert max(len(r.message_ids) for r in batches.reports if r.batch_size_limit == 5) > 1
        assert deployment.counts() == (0, 0)
