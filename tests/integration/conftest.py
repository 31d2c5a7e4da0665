"""The function against moto's SQS (queues built from template.yaml) and a real local downstream."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from consumer.app import lambda_handler
from consumer.delivery import get_runtime
from local.aws.moto_stack import Stack, create_idempotency_table, create_queues, load_stack
from local.lambda_service.lambda_context import FakeLambdaContext
from local.lambda_service.lambda_sqs_event import lambda_sqs_event
from shared.backoff import BackoffPolicy
from shared.config import Config
from shared.observability import logger
from tests.support.downstream import Downstream
from tests.support.emitted import Emitted, parse_emitted


class Harness:
    """Drives the handler the way Lambda's event source mapping would, and observes the effects."""

    def __init__(
        self,
        stack: Stack,
        sqs: Any,
        downstream: Downstream,
        capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        self.monkeypatch = monkeypatch
        self.stack = stack
        self.sqs = sqs
        self.downstream = downstream
        self.capsys = capsys
        # Each entry of each ChangeMessageVisibilityBatch call the function made, in order.
        self.visibility_changes: list[dict[str, Any]] = []
        self.visibility_change_calls = 0
        self.log_stream = io.StringIO()
        self._stdout = ""

    @property
    def backoff_policy(self) -> BackoffPolicy:
        """The policy the function reads from the stack's environment."""
        return Config.from_environ(self.stack.function_environment()).backoff_policy

    @property
    def source_url(self) -> str:
        return self.stack.refs["SourceQueue"]

    @property
    def source_arn(self) -> str:
        return self.stack.attributes[("SourceQueue", "Arn")]

    @property
    def dead_letter_url(self) -> str:
        return self.stack.refs["DeadLetterQueue"]

    def watch_runtime(self) -> None:
        """Record the visibility changes of the function's current SQS client."""
        get_runtime().sqs.client.meta.events.register(
            "before-parameter-build.sqs.ChangeMessageVisibilityBatch",
            self.record_visibility_changes,
        )

    def record_visibility_changes(self, params: dict[str, Any], **_: Any) -> None:
        self.visibility_change_calls += 1
        for entry in params["Entries"]:
            self.visibility_changes.append({"QueueUrl": params["QueueUrl"], **entry})

    def send(self, body: str, attributes: dict[str, Any] | None = None) -> str:
        message_id: str = self.sqs.send_message(
            QueueUrl=self.source_url, MessageBody=body, MessageAttributes=attributes or {}
        )["MessageId"]
        return message_id

    def receive(self, queue_url: str | None = None, visibility_timeout: int = 360) -> list[Any]:
        messages: list[Any] = self.sqs.receive_message(
            QueueUrl=queue_url or self.source_url,
            MaxNumberOfMessages=10,
            VisibilityTimeout=visibility_timeout,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        return messages

    def receive_event(self) -> dict[str, Any]:
        """Receive what is visible on the source queue and shape it as Lambda's SQS event."""
        return lambda_sqs_event(self.receive(), self.source_arn)

    def invoke(self, event: Any, context: FakeLambdaContext | None = None) -> Any:
        return lambda_handler(event, context or FakeLambdaContext())

    def dead_letters(self) -> list[Any]:
        return self.receive(self.dead_letter_url, visibility_timeout=0)

    def drain_dead_letters(self) -> list[Any]:
        """Every message on the DLQ, which is left empty."""
        drained: list[Any] = []
        while batch := self.receive(self.dead_letter_url, visibility_timeout=60):
            for message in batch:
                self.sqs.delete_message(
                    QueueUrl=self.dead_letter_url, ReceiptHandle=message["ReceiptHandle"]
                )
            drained.extend(batch)
        return drained

    def forget_emitted(self) -> None:
        """Start emitted() afresh: what was written so far is dropped."""
        self.capsys.readouterr()
        self._stdout = ""
        self.log_stream.seek(0)
        self.log_stream.truncate()

    def emitted(self) -> Emitted:
        """Log lines and EMF metric documents written so far."""
        # Metrics are print()ed to the current stdout; log lines go to the logger's own stream.
        self._stdout += self.capsys.readouterr().out
        return parse_emitted(self.log_stream.getvalue() + "\n" + self._stdout)


@pytest.fixture
def parameter_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Template parameters a test sets with parametrize(..., indirect=True)."""
    return dict(getattr(request, "param", {}))


@pytest.fixture
def env_overrides(request: pytest.FixtureRequest) -> dict[str, str]:
    """Function environment beyond what the template allows, set like parameter_overrides."""
    return dict(getattr(request, "param", {}))


@pytest.fixture
def downstream() -> Iterator[Downstream]:
    with Downstream().serving() as serving:
        yield serving


@pytest.fixture
def consumer(
    parameter_overrides: dict[str, Any],
    env_overrides: dict[str, str],
    downstream: Downstream,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Iterator[Harness]:
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        stack = load_stack({"DownstreamUrl": downstream.url, **parameter_overrides})
        create_queues(stack, sqs)
        if "IdempotencyTable" in stack.template["Resources"]:
            create_idempotency_table(stack, boto3.client("dynamodb", region_name="us-east-1"))
        for name, value in {**stack.function_environment(), **env_overrides}.items():
            monkeypatch.setenv(name, value)
        get_runtime.cache_clear()
        harness = Harness(stack, sqs, downstream, capsys, monkeypatch)
        # The logger's handler holds the stdout of import time; point it at the harness instead.
        handler = logger.registered_handler
        assert isinstance(handler, logging.StreamHandler)
        # (Assigned, not setStream: that flushes the old stream first, which a runner that
        # captured the import, as mutmut does, may have closed since.)
        original_stream = handler.stream
        handler.stream = harness.log_stream
        harness.watch_runtime()
        yield harness
        handler.stream = original_stream
        get_runtime.cache_clear()
