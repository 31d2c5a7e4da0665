"""The consumer against an SQS-compatible endpoint given by AWS_ENDPOINT_URL, which finds queues
only by the URLs it hands out (moto's server on 127.0.0.1, held to that rule here)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from botocore.stub import Stubber

from consumer.app import lambda_handler
from consumer.delivery import get_runtime
from consumer.sqs_actions import SqsActions
from local.aws.emulator import EMULATOR_CREDENTIALS, running_emulator
from local.aws.moto_stack import Stack, create_queues, load_stack
from local.lambda_service.lambda_context import FakeLambdaContext
from local.lambda_service.lambda_sqs_event import lambda_sqs_event
from tests.support.downstream import Answer, Downstream


class StrictEndpoint:
    """Refuses any QueueUrl the service did not hand out, as such endpoints do."""

    def __init__(self) -> None:
        self.handed_out: set[str] = set()
        self.refused: list[str] = []

    def watch(self, client: Any) -> None:
        events = client.meta.events
        events.register("after-call.sqs.CreateQueue", self._remember)
        events.register("after-call.sqs.GetQueueUrl", self._remember)
        events.register("before-parameter-build.sqs.*", self._check)

    def _remember(self, parsed: dict[str, Any], **_: Any) -> None:
        self.handed_out.add(parsed["QueueUrl"])

    def _check(self, params: dict[str, Any], **_: Any) -> None:
        url = params.get("QueueUrl")
        if url is not None and url not in self.handed_out:
            self.refused.append(url)
            params["QueueUrl"] = "http://127.0.0.1:9/refused-unknown-queue-url"


@pytest.fixture
def endpoint_stack(
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[Stack, Any, StrictEndpoint, Downstream]]:
    with running_emulator() as emulator, Downstream().serving() as downstream:
        strict = StrictEndpoint()
        sqs = emulator.client("sqs")
        strict.watch(sqs)
        stack = load_stack({"DownstreamUrl": downstream.url})
        create_queues(stack, sqs)
        for name, value in stack.function_environment().items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("AWS_ENDPOINT_URL", emulator.endpoint_url)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", EMULATOR_CREDENTIALS["aws_access_key_id"])
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", EMULATOR_CREDENTIALS["aws_secret_access_key"])
        get_runtime.cache_clear()
        strict.watch(get_runtime().sqs.client)
        yield stack, sqs, strict, downstream
        get_runtime.cache_clear()


def test_backoff_applies_through_an_endpoint_that_knows_only_its_own_urls(
    endpoint_stack: tuple[Stack, Any, StrictEndpoint, Downstream],
) -> None:
    stack, sqs, strict, downstream = endpoint_stack
    # Given a message on the endpoint's source queue (its URL is the endpoint's own, not
    # https://sqs.<region>.amazonaws.com/...) and a failing downstream
    source_url = stack.refs["SourceQueue"]
    assert source_url.startswith("http://127.0.0.1:")
    sqs.send_message(QueueUrl=source_url, MessageBody='{"n": 1}')
    messages = sqs.receive_message(
        QueueUrl=source_url, AttributeNames=["All"], MessageAttributeNames=["All"]
    )["Messages"]
    downstream.default = Answer(503)

    # When the function handles it
    event = lambda_sqs_event(messages, stack.attributes[("SourceQueue", "Arn")])
    with pytest.raises(BatchProcessingError):
        lambda_handler(event, FakeLambdaContext())

    # Then it addressed the queue by the URL the service returned, and the backoff took effect:
    # the message is hidden
    assert strict.refused == []
    attributes = sqs.get_queue_attributes(
        QueueUrl=source_url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "1"
    assert sqs.receive_message(QueueUrl=source_url, VisibilityTimeout=0).get("Messages") is None


@pytest.mark.parametrize(
    ("arn", "name", "owner"),
    [
        ("arn:aws:sqs:us-east-1:123456789012:orders", "orders", "123456789012"),
        ("arn:aws-cn:sqs:cn-north-1:210987654321:orders", "orders", "210987654321"),
        ("arn:aws-us-gov:sqs:us-gov-west-1:111122223333:q.fifo", "q.fifo", "111122223333"),
    ],
)
def test_the_queue_url_is_asked_once_per_arn_in_every_partition(
    arn: str, name: str, owner: str
) -> None:
    # Given an SQS client that answers GetQueueUrl once, with the service's own URL
    client = boto3.client("sqs", region_name="us-east-1")
    actions = SqsActions(lambda: client, "https://sqs.example.com/1/dlq")
    service_url = f"https://queue.example.internal/{owner}/{name}"
    with Stubber(client) as stubber:
        stubber.add_response(
            "get_queue_url",
            {"QueueUrl": service_url},
            {"QueueName": name, "QueueOwnerAWSAccountId": owner},
        )
        # When the URL is asked for twice
        first, second = actions.queue_url(arn), actions.queue_url(arn)
        # Then it came from the service, once
        stubber.assert_no_pending_responses()
    assert first == second == service_url
