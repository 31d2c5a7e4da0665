"""`make dlq-peek` and `make redrive` against an endpoint that has SQS and nothing else: flags
that name every queue need no CloudFormation, and a server that honours only the older
AttributeNames still shows each message's sent time and receive count (moto sets no
DeadLetterQueueSourceArn; tests/localstack checks the source on LocalStack)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tools import dlq_peek, redrive
from tools.dead_letters import Shape

REGION = "us-east-1"


@pytest.fixture
def queues(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """A source queue and its DLQ in moto, and no stack at all."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        sqs = boto3.client("sqs")
        dlq = sqs.create_queue(QueueName="only-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        source = sqs.create_queue(
            QueueName="only-source",
            Attributes={
                "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 1})
            },
        )["QueueUrl"]
        yield {"source": source, "dlq": dlq}


def test_a_copy_redrive_whose_flags_name_every_queue_asks_cloudformation_nothing(
    queues: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a message on the DLQ and no CloudFormation stack anywhere
    sqs = boto3.client("sqs")
    sqs.send_message(QueueUrl=queues["dlq"], MessageBody='{"orderId": "A-1"}')
    described: list[str] = []
    original_client: Any = boto3.session.Session.client

    def client(self: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        made = original_client(self, name, *args, **kwargs)
        if name == "cloudformation":
            made.meta.events.register(
                "before-call.cloudformation.*", lambda model, **_: described.append(model.name)
            )
        return made

    # When the DLQ is copied back with flags naming both queues
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(boto3.session.Session, "client", client)
        status = redrive.main(
            [
                *("--only", "messages", "--method", "copy", "--rate", "1000"),
                *("--dlq-url", queues["dlq"], "--source-queue-url", queues["source"]),
            ]
        )

    # Then it moved the message without asking CloudFormation anything
    out = capsys.readouterr()
    assert status == 0, out.err
    assert "messages: moved=1 replayed=0 failed=0 method=copy" in out.out
    assert described == []
    moved = sqs.receive_message(QueueUrl=queues["source"])["Messages"]
    assert [m["Body"] for m in moved] == ['{"orderId": "A-1"}']


def honour_only_attribute_names(client: Any) -> None:
    """Make the client's ReceiveMessage look like a server that knows only AttributeNames:
    MessageSystemAttributeNames never reaches it."""

    def drop(params: dict[str, Any], **_: Any) -> None:
        params.pop("MessageSystemAttributeNames", None)

    client.meta.events.register("provide-client-params.sqs.ReceiveMessage", drop)


def test_peek_shows_sent_time_and_source_from_a_server_that_honours_only_attribute_names(
    queues: dict[str, str],
) -> None:
    # Given a message moved to the DLQ by the source queue's redrive policy, sent just now
    sqs = boto3.client("sqs")
    before_ms = int(time.time() * 1000)
    sqs.send_message(QueueUrl=queues["source"], MessageBody='{"orderId": "A-2"}')
    sqs.receive_message(QueueUrl=queues["source"], VisibilityTimeout=0)
    sqs.receive_message(QueueUrl=queues["source"], VisibilityTimeout=0)
    # ...and a client whose server ignores MessageSystemAttributeNames
    honour_only_attribute_names(sqs)

    # When the DLQ is peeked at
    [letter] = dlq_peek.peek(sqs, queues["dlq"], limit=10, hold_s=30)

    # Then the listing has the real sent time (not 1970-01-01), and the receive count
    assert letter.shape is Shape.REDRIVE_POLICY
    # (SQS keeps milliseconds; a second of slack for a clock that rounds.)
    assert letter.sent_timestamp_ms >= before_ms - 1000
    assert letter.receive_count >= 1
