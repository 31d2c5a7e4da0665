"""The built function against LocalStack's SQS: one LocalStack and one `sam build` for the
session, and for each test the template's queues (its own properties, a stack name of its own)
and an execution environment running the built function with AWS_ENDPOINT_URL on LocalStack.

The tests play the event source mapping themselves, one poll at a time: receive a batch with
every attribute, invoke the function with Lambda's SQS event, and delete what the partial batch
response does not list.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from local.aws.intrinsics import Resolver, pseudo_parameters
from local.aws.moto_stack import Stack, load_stack
from local.lambda_service.batch_response import batch_outcome
from local.lambda_service.execution_environment import (
    ExecutionEnvironment,
    FunctionSpec,
    Invocation,
    Setup,
)
from local.lambda_service.function_code import RUNTIME_SDK, CodePaths, link_distribution_closure
from local.lambda_service.lambda_sqs_event import lambda_sqs_event
from tests.support.downstream import Downstream
from tests.support.localstack import ACCOUNT_ID, running_localstack

REGION = "us-east-1"
# LocalStack takes any credentials; keys that are not 12 digits map to its default account.
ACCESS_KEY_ID = "test"
SECRET_ACCESS_KEY = "test"
# Fast schedules: delay(n) = 2^n + base + J with J in [0, jitter - 1] = [0, 0].
FAST_BACKOFF = {"BackoffBaseSeconds": 0, "BackoffJitterSeconds": 1, "MaxReceiveCount": 3}


@pytest.fixture(scope="session")
def localstack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_localstack(tmp_path_factory.mktemp("localstack")) as endpoint_url:
        yield endpoint_url


@pytest.fixture(scope="session")
def code(built: Path, tmp_path_factory: pytest.TempPathFactory) -> CodePaths:
    """The built function and its layer, as Lambda unpacks them, and the runtime's boto3."""
    runtime_packages = tmp_path_factory.mktemp("runtime-packages")
    link_distribution_closure(RUNTIME_SDK, runtime_packages)
    return CodePaths(built / "ConsumerFunction", built / "DependenciesLayer", runtime_packages)


def sqs_client(endpoint_url: str) -> Any:
    return boto3.client(
        "sqs",
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
    )


class LocalStackStack(Stack):
    """The template resolved as CloudFormation would in LocalStack's account, under a stack
    name of the test's own (the queue names derive from it)."""

    stack_name: str = ""

    def resolve(self, value: Any) -> Any:
        resolver = Resolver(
            pseudo_parameters(self.stack_name, REGION, ACCOUNT_ID),
            self.parameters,
            ref=self.refs.__getitem__,
            get_att=lambda logical_id, name: self.attributes[(logical_id, name)],
        )
        return resolver(value)

    def create_queues(self, sqs: Any) -> None:
        """The DLQ, then the source queue, with the template's own properties; URLs and ARNs
        as the service answers them."""
        for logical_id in ("DeadLetterQueue", "SourceQueue"):
            properties = self.resource_properties(logical_id)
            name = properties.pop("QueueName", f"{self.stack_name}-dlq")
            attributes = {
                key: json.dumps(value)
                if isinstance(value, dict)
                else str(value).lower()
                if isinstance(value, bool)
                else str(value)
                for key, value in properties.items()
            }
            url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
            self.refs[logical_id] = url
            self.attributes[(logical_id, "Arn")] = sqs.get_queue_attributes(
                QueueUrl=url, AttributeNames=["QueueArn"]
            )["Attributes"]["QueueArn"]


@dataclass
class Deployment:
    """The template's queues on LocalStack and the built function in an execution environment."""

    sqs: Any
    stack: LocalStackStack
    environment: ExecutionEnvironment
    log_path: Path
    downstream: Downstream

    @property
    def source_url(self) -> str:
        return self.stack.refs["SourceQueue"]

    @property
    def source_arn(self) -> str:
        return self.stack.attributes[("SourceQueue", "Arn")]

    @property
    def dead_letter_url(self) -> str:
        return self.stack.refs["DeadLetterQueue"]

    def receive(self, queue_url: str, wait_seconds: int = 1) -> list[dict[str, Any]]:
        return list(
            self.sqs.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=wait_seconds,
                AttributeNames=["All"],
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
        )

    def poll(self, limit_seconds: float = 120.0) -> tuple[list[dict[str, Any]], Invocation]:
        """One poll of the event source mapping: wait for a batch, invoke the function with it,
        delete what it did not list as failed."""
        deadline = time.monotonic() + limit_seconds
        while not (messages := self.receive(self.source_url)):
            if time.monotonic() > deadline:
                raise AssertionError(f"nothing to receive within {limit_seconds:g} s")
        invocation = self.environment.invoke(lambda_sqs_event(messages, self.source_arn))
        outcome = batch_outcome(
            [m["MessageId"] for m in messages],
            invocation.succeeded,
            invocation.response,
            report_batch_item_failures=True,
        )
        handles = {m["MessageId"]: m["ReceiptHandle"] for m in messages}
        for message_id in outcome.delete:
            self.sqs.delete_message(QueueUrl=self.source_url, ReceiptHandle=handles[message_id])
        return messages, invocation

    def counts(self, queue_url: str) -> tuple[int, int]:
        """(visible, in flight) of a queue."""
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=queue_url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
            ],
        )["Attributes"]
        return (
            int(attributes["ApproximateNumberOfMessages"]),
            int(attributes["ApproximateNumberOfMessagesNotVisible"]),
        )

    def logged(self, message: str) -> list[dict[str, Any]]:
        """The function's log records whose message is `message`."""
        records = []
        for line in self.log_path.read_text().splitlines():
            if line.startswith("{"):
                record = json.loads(line)
                if record.get("message") == message:
                    records.append(record)
        return records


Deploy = Callable[..., Deployment]


@pytest.fixture
def deploy(localstack: str, code: CodePaths, tmp_path: Path) -> Iterator[Deploy]:
    """deploy(**parameter_overrides): the template's queues on LocalStack and the built function,
    its downstream a real local HTTP server."""
    made: list[tuple[ExecutionEnvironment, Any]] = []

    def make(**parameters: Any) -> Deployment:
        downstream = Downstream()
        serving = downstream.serving()
        serving.__enter__()
        plain = load_stack({"DownstreamUrl": downstream.url, **parameters})
        stack = LocalStackStack(parameters=plain.parameters, template=plain.template)
        stack.stack_name = f"ls-{uuid.uuid4().hex[:12]}"
        sqs = sqs_client(localstack)
        stack.create_queues(sqs)
        function = stack.template["Resources"]["ConsumerFunction"]["Properties"]
        spec = FunctionSpec(
            name=f"{stack.stack_name}-consumer",
            arn=f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{stack.stack_name}-consumer",
            handler=function["Handler"],
            runtime=function["Runtime"],
            timeout_seconds=float(function["Timeout"]),
            memory_mb=int(function["MemorySize"]),
            environment=stack.function_environment(),
            log_group=f"/aws/lambda/{stack.stack_name}-consumer",
        )
        log_path = tmp_path / f"{stack.stack_name}.log"
        environment = ExecutionEnvironment(
            Setup(spec, code, endpoint_url=localstack, region=REGION), log_path
        )
        made.append((environment, serving))
        return Deployment(sqs, stack, environment, log_path, downstream)

    yield make
    for environment, serving in made:
        environment.shutdown()
        serving.__exit__(None, None, None)
