"""`make send` against moto: stack outputs, batching, and reporting of refused entries."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from local.commands import send

STACK_TEMPLATE = {
    "Resources": {"SourceQueue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "q"}}},
    "Outputs": {"SourceQueueUrl": {"Value": {"Ref": "SourceQueue"}}},
}


@pytest.fixture
def aws() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("cloudformation", region_name="us-east-1")


def received(queue_url: str) -> list[str]:
    sqs = boto3.client("sqs", region_name="us-east-1")
    bodies: list[str] = []
    while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get(
        "Messages", []
    ):
        bodies.extend(message["Body"] for message in messages)
    return bodies


def test_sends_generated_bodies_to_the_stacks_source_queue(
    aws: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a deployed stack with a SourceQueueUrl output
    aws.create_stack(StackName="my-stack", TemplateBody=json.dumps(STACK_TEMPLATE))

    # When 23 generated messages are sent (three SendMessageBatch calls)
    status = send.main(["--stack-name", "my-stack", "--region", "us-east-1", "--count", "23"])

    # Then all arrive, and each is reported with its message id
    assert status == 0
    queue_url = boto3.client("sqs", region_name="us-east-1").get_queue_url(QueueName="q")
    bodies = received(queue_url["QueueUrl"])
    assert sorted(bodies) == sorted(send.generated_bodies(23, prefix="sent"))
    output = capsys.readouterr().out
    assert "sent 23 of 23 messages to" in output
    assert output.count("  sent    ") == 23


def test_bodies_from_flags_and_a_file_to_a_queue_url(
    aws: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a queue URL, and a file of two bodies with a blank line between them
    queue_url = boto3.client("sqs", region_name="us-east-1").create_queue(QueueName="other")[
        "QueueUrl"
    ]
    bodies_file = tmp_path / "bodies.txt"
    bodies_file.write_text('{"a": 1}\n\n{"b": 2}\n')

    # When a body from a flag and the file are sent to that URL
    status = send.main(
        ["--queue-url", queue_url, "--region", "us-east-1", "--body", '{"c": 3}',
         "--file", str(bodies_file)]
    )  # fmt: skip

    # Then the three bodies arrive and the blank line is skipped
    assert status == 0
    assert sorted(received(queue_url)) == ['{"a": 1}', '{"b": 2}', '{"c": 3}']


def test_entries_sqs_refuses_are_reported(aws: Any) -> None:
    # Given an SQS that accepts one entry of a batch and refuses the other (stubbed: moto only
    # refuses single entries for an invalid DelaySeconds, which send never sets)
    sqs = boto3.client("sqs", region_name="us-east-1")
    stubber = Stubber(sqs)
    stubber.add_response(
        "send_message_batch",
        {
            "Successful": [{"Id": "0", "MessageId": "m-0", "MD5OfMessageBody": "x"}],
            "Failed": [
                {"Id": "1", "SenderFault": False, "Code": "InternalError", "Message": "try later"}
            ],
        },
    )

    # When two bodies are sent
    with stubber:
        report = send.send_bodies(sqs, "https://queue.example/q", ["{}", '{"b": 1}'])

    # Then each outcome is attributed to its body
    assert report.sent == [("m-0", "{}")]
    assert report.failed == [('{"b": 1}', "InternalError", "try later")]


def test_a_refused_request_fails_the_command_with_the_reason(
    aws: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a queue whose maximum message size the body exceeds
    sqs = boto3.client("sqs", region_name="us-east-1")
    queue_url = sqs.create_queue(QueueName="small", Attributes={"MaximumMessageSize": "1024"})[
        "QueueUrl"
    ]

    # When it is sent, Then the command fails and says why
    status = send.main(
        ["--queue-url", queue_url, "--region", "us-east-1", "--body", json.dumps("x" * 2000)]
    )
    assert status == 1
    assert "error:" in capsys.readouterr().err
    assert received(queue_url) == []


def test_batches_respect_the_entry_and_size_limits() -> None:
    # Given twelve tiny bodies and three of 600 KiB, When they are split into batches
    big = "x" * (600 * 1024)
    batches = send._batches(["a"] * 12 + [big, big, big])
    # Then a batch holds at most 10 entries and at most MAX_BATCH_BYTES bytes
    assert [len(batch) for batch in batches] == [10, 3, 1, 1]
    assert all(sum(len(b) for b in batch) <= send.MAX_BATCH_BYTES for batch in batches)


def test_the_stack_name_comes_from_samconfig() -> None:
    # Given samconfig.toml's config envs, When their stack names are read
    # Then default and prod have theirs, and an env without one is refused
    assert send.stack_name_from_samconfig("default") == "sqs-backoff-consumer"
    assert send.stack_name_from_samconfig("prod") == "sqs-backoff-consumer-prod"
    with pytest.raises(ValueError, match="no stack_name for config env 'staging'"):
        send.stack_name_from_samconfig("staging")


def test_the_region_comes_from_aws_region_too(
    aws: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given only AWS_REGION in the environment (the AWS CLI's variable), not AWS_DEFAULT_REGION
    aws.create_stack(StackName="my-stack", TemplateBody=json.dumps(STACK_TEMPLATE))
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.setenv("AWS_REGION", "us-east-1")

    # When messages are sent without --region
    status = send.main(["--stack-name", "my-stack", "--count", "1"])

    # Then the stack is found in that region
    assert status == 0
    assert "sent 1 of 1 messages" in capsys.readouterr().out
