"""Every message that enters the source queue is recorded, whoever sent it."""

from __future__ import annotations

import boto3
from moto import mock_aws

from local.enqueued import recording


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
