"""The emulator acts on a message's most recent receipt handle only, as SQS does: an invocation
that outlived its message's visibility must not reset the backoff of the message's next
delivery (the soak's early receives), nor delete a message another invocation holds."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local.aws.emulator import running_emulator


@pytest.fixture
def sqs() -> Iterator[Any]:
    with running_emulator() as emulator:
        yield emulator.client("sqs")


def received_twice(sqs: Any) -> tuple[str, str, str]:
    """A queue whose one message was received (handle 1), made visible again and received
    again (handle 2, 300 s of visibility): (queue URL, old handle, current handle)."""
    url = sqs.create_queue(QueueName="source")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="{}")
    [first] = sqs.receive_message(QueueUrl=url, VisibilityTimeout=300)["Messages"]
    sqs.change_message_visibility(
        QueueUrl=url, ReceiptHandle=first["ReceiptHandle"], VisibilityTimeout=0
    )
    [second] = sqs.receive_message(QueueUrl=url, VisibilityTimeout=300)["Messages"]
    return url, first["ReceiptHandle"], second["ReceiptHandle"]


def counts(sqs: Any, url: str) -> tuple[int, int]:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return (
        int(attributes["ApproximateNumberOfMessages"]),
        int(attributes["ApproximateNumberOfMessagesNotVisible"]),
    )


def test_a_visibility_change_with_an_older_handle_is_refused(sqs: Any) -> None:
    # Given a message received twice, now held by its second receive for 300 s
    url, old, _ = received_twice(sqs)

    # When the first receive's invocation, outliving its visibility, sets 0 with its handle
    with pytest.raises(ClientError) as refused:
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=old, VisibilityTimeout=0)

    # Then SQS's refusal comes back, and the message stays hidden (moto would show it at once)
    assert refused.value.response["Error"]["Code"] == "InvalidParameterValue"
    assert "not available for visibility timeout change" in str(refused.value)
    assert counts(sqs, url) == (0, 1)


def test_a_batch_entry_with_an_older_handle_fails_alone(sqs: Any) -> None:
    # Given a message received twice
    url, old, current = received_twice(sqs)

    # When a ChangeMessageVisibilityBatch names both handles
    answer = sqs.change_message_visibility_batch(
        QueueUrl=url,
        Entries=[
            {"Id": "old", "ReceiptHandle": old, "VisibilityTimeout": 0},
            {"Id": "current", "ReceiptHandle": current, "VisibilityTimeout": 200},
        ],
    )

    # Then the old handle's entry fails and the current one's goes through: still hidden
    assert [entry["Id"] for entry in answer["Failed"]] == ["old"]
    assert [entry["Id"] for entry in answer["Successful"]] == ["current"]
    assert counts(sqs, url) == (0, 1)


def test_a_delete_with_an_older_handle_succeeds_without_deleting(sqs: Any) -> None:
    # Given a message received twice
    url, old, current = received_twice(sqs)

    # When the older handle deletes it, Then the call succeeds and the message is still there
    sqs.delete_message(QueueUrl=url, ReceiptHandle=old)
    assert counts(sqs, url) == (0, 1)

    # ...until its current handle deletes it
    sqs.delete_message(QueueUrl=url, ReceiptHandle=current)
    assert counts(sqs, url) == (0, 0)
