"""Every message that enters the source queue is recorded, whoever sent it."""

from __future__ import annotations

import boto3
from moto import mock_aws

from local.checks.enqueued import recording, removals


@mock_aws
def test_messages_sent_by_anyone_are_recorded_once_in_queue_order() -> None:
    # Given a source queue recorded, another queue beside it, and a FIFO queue not recorded
    sqs = boto3.client("sqs", region_name="us-east-1")
    source = sqs.create_queue(QueueName="source")["QueueUrl"]
    other = sqs.create_queue(QueueName="other")["QueueUrl"]
    with recording(source) as enqueued:
        # When messages are sent one by one and in a batch, to it and to the other queue
        first = sqs.send_message(QueueUrl=source, MessageBody="one")["MessageId"]
        sqs.send_message(QueueUrl=other, MessageBody="elsewhere")
        batch = sqs.send_message_batch(
            QueueUrl=source,
            Entries=[{"Id": "a", "MessageBody": "two"}, {"Id": "b", "MessageBody": "three"}],
        )["Successful"]
    after = sqs.send_message(QueueUrl=source, MessageBody="after the recording")["MessageId"]

    # Then the source queue's messages are recorded with their bodies, nothing else
    ids = {entry["Id"]: entry["MessageId"] for entry in batch}
    assert enqueued.messages() == {first: "one", ids["a"]: "two", ids["b"]: "three"}
    assert after not in enqueued.messages()


@mock_aws
def test_a_fifo_duplicate_that_sqs_does_not_enqueue_is_not_recorded() -> None:
    sqs = boto3.client("sqs", region_name="us-east-1")
    source = sqs.create_queue(QueueName="source.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    with recording(source) as enqueued:
        # When the same deduplication id is sent twice within the interval
        for _ in range(2):
            sqs.send_message(
                QueueUrl=source, MessageBody="x", MessageGroupId="g", MessageDeduplicationId="d"
            )
    # Then one message entered the queue, and one is recorded
    assert len(enqueued) == 1


@mock_aws
def test_messages_removed_from_the_dead_letter_queue_are_recorded_by_their_original_id() -> None:
    # Given a DLQ holding a function's copy (naming its original) and a message SQS moved there
    sqs = boto3.client("sqs", region_name="us-east-1")
    dlq = sqs.create_queue(QueueName="dlq")["QueueUrl"]
    sqs.send_message(
        QueueUrl=dlq,
        MessageBody="copy",
        MessageAttributes={"SourceMessageId": {"DataType": "String", "StringValue": "orig-1"}},
    )
    moved = sqs.send_message(QueueUrl=dlq, MessageBody="moved")["MessageId"]
    with removals(dlq) as removed:
        # When a redrive receives and deletes them both (one of them twice)
        received = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10)["Messages"]
        for message in [*received, received[0]]:
            sqs.delete_message(QueueUrl=dlq, ReceiptHandle=message["ReceiptHandle"])
    # Then each is recorded once, by the id of the message that was dead-lettered
    assert sorted(removed.original_ids()) == sorted(["orig-1", moved])
