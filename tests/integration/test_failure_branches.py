"""Failure branches of the SQS path that matter and had no test: the visibility call refused as
a whole, the dead-letter queue refusing the original attributes, and a message about to expire
whose dead-letter copy is refused. The SQS API's refusals are made with botocore's own event
hooks on the function's client: the consumer sees exactly what a refusing SQS would give it."""

from __future__ import annotations

from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from botocore.exceptions import ClientError

from consumer.delivery import get_runtime
from tests.integration.conftest import Harness
from tests.support.downstream import Answer


def refuse(operation: str, code: str, when: Any = lambda params: True) -> Any:
    """A hook (before the request is built) that makes `operation` fail with `code` whenever
    `when(its parameters)`."""

    def hook(params: dict[str, Any], **_: Any) -> None:
        if when(params):
            raise ClientError(
                {"Error": {"Code": code, "Message": f"refused by the test: {code}"}}, operation
            )

    return hook


def on_function_client(event: str, hook: Any) -> None:
    get_runtime().sqs.client.meta.events.register(event, hook)


def test_a_visibility_call_refused_as_a_whole_fails_every_record_with_its_reason(
    consumer: Harness,
) -> None:
    # Given two records whose delivery fails, and an SQS that refuses the whole
    # ChangeMessageVisibilityBatch call (not entry by entry)
    consumer.send('{"n": 1}')
    consumer.send('{"n": 2}')
    event = consumer.receive_event()
    consumer.downstream.default = Answer(503)
    on_function_client(
        "before-parameter-build.sqs.ChangeMessageVisibilityBatch",
        refuse("ChangeMessageVisibilityBatch", "InternalError"),
    )

    # When the batch is processed, Then both records fail (the queue's visibility applies)
    with pytest.raises(BatchProcessingError):
        consumer.invoke(event)

    # ...each counted and logged with the call's refusal, none counted as a scheduled retry
    emitted = consumer.emitted()
    assert emitted.metric_total("VisibilityChangeFailed") == 2
    assert emitted.metric_total("RetriesScheduled") == 0
    lines = emitted.logs_with("backoff could not be set")
    assert len(lines) == 2
    for line in lines:
        assert "ChangeMessageVisibilityBatch refused (InternalError)" in line["visibility_error"]


def test_the_original_attributes_are_dropped_when_the_dead_letter_queue_refuses_them(
    consumer: Harness,
) -> None:
    # Given a poison message with an attribute of its own, and a dead-letter queue that refuses
    # any copy carrying it
    message_id = consumer.send("not json", {"tenant": {"DataType": "String", "StringValue": "t1"}})
    on_function_client(
        "before-parameter-build.sqs.SendMessage",
        refuse(
            "SendMessage",
            "InvalidParameterValue",
            lambda params: "tenant" in params.get("MessageAttributes", {}),
        ),
    )

    # When it is processed
    response = consumer.invoke(consumer.receive_event())

    # Then the copy reached the DLQ with its reason and source, without the refused attribute
    assert response == {"batchItemFailures": []}
    [dead_letter] = consumer.dead_letters()
    attributes = dead_letter["MessageAttributes"]
    assert "tenant" not in attributes
    assert attributes["DeadLetterReason"]["StringValue"] == "invalid-json"
    assert attributes["SourceMessageId"]["StringValue"] == message_id
    assert consumer.emitted().logs_with("refused the original attributes")


@pytest.mark.parametrize(
    "parameter_overrides", [{"SourceQueueRetentionSeconds": 300}], indirect=True
)
def test_a_message_about_to_expire_whose_copy_is_refused_is_rescheduled(
    consumer: Harness,
) -> None:
    # Given a queue that keeps messages 5 minutes, a failing message whose next attempt would
    # come after that, and a dead-letter queue that refuses every copy
    message_id = consumer.send('{"n": 1}')
    consumer.downstream.default = Answer(503)
    on_function_client(
        "before-parameter-build.sqs.SendMessage", refuse("SendMessage", "InternalError")
    )

    # When its delivery fails
    with pytest.raises(BatchProcessingError):
        consumer.invoke(consumer.receive_event())

    # Then it is not lost: rescheduled with its backoff, and the log says it may expire
    [change] = consumer.visibility_changes
    assert change["VisibilityTimeout"] > 0
    emitted = consumer.emitted()
    [warning] = emitted.logs_with("may expire before its next attempt")
    assert "InternalError" in warning["error"]
    [line] = emitted.logs_with("retry scheduled")
    assert line["message_id"] == message_id
    assert consumer.dead_letters() == []


@pytest.mark.parametrize(
    "parameter_overrides", [{"SourceQueueRetentionSeconds": 300}], indirect=True
)
def test_a_record_without_a_sent_time_is_retried_not_dead_lettered(consumer: Harness) -> None:
    # Given a queue that keeps messages 5 minutes and a failing record whose SentTimestamp is
    # missing (a hand-written event): when it expires cannot be known
    consumer.send('{"n": 1}')
    event = consumer.receive_event()
    del event["Records"][0]["attributes"]["SentTimestamp"]
    consumer.downstream.default = Answer(503)

    # When its delivery fails
    with pytest.raises(BatchProcessingError):
        consumer.invoke(event)

    # Then it is rescheduled with its backoff, not dead-lettered as about to expire
    [change] = consumer.visibility_changes
    assert 32 <= change["VisibilityTimeout"] <= 91
    assert consumer.dead_letters() == []
