"""Odd records, odd jobs and odd settings: each fails only what it concerns, loses nothing, and
shows no secret."""

from __future__ import annotations

import json
import time

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from consumer.sqs_actions import MAX_MESSAGE_SIZE_BYTES
from shared.config import Config
from shared.errors import ConfigurationError
from tests.integration.conftest import Harness
from tests.support.downstream import Answer


def test_a_receive_count_of_thousands_of_digits_fails_only_its_record(consumer: Harness) -> None:
    # Given a batch of two failing messages, one with a 5,000-digit receive count
    consumer.send('{"n": 1}')
    bad_id = consumer.send('{"n": 2}')
    consumer.downstream.default = Answer(503)
    event = consumer.receive_event()
    [bad] = [record for record in event["Records"] if record["messageId"] == bad_id]
    bad["attributes"]["ApproximateReceiveCount"] = "9" * 5000

    # When the batch is processed
    with pytest.raises(BatchProcessingError):
        consumer.invoke(event)

    # Then the other record still got its backoff, and the odd one is logged as invalid
    assert len(consumer.visibility_changes) == 1
    emitted = consumer.emitted()
    assert emitted.metric_total("InvalidRecords") == 1
    [invalid] = emitted.logs_with("invalid record")
    assert invalid["message_id"] == bad_id


@pytest.mark.parametrize(
    "attributes",
    [
        {"tenant": "acme"},
        {"tenant": None},
        {"t": [1]},
        "x",
        {"bad name!": {"dataType": "String", "stringValue": "v"}},
        {"AWS.reserved": {"dataType": "String", "stringValue": "v"}},
        {"n": {"dataType": "Number", "stringValue": "not a number"}},
        {"s": {"dataType": "String", "stringValue": "nul \x00 inside"}},
    ],
)
def test_a_poison_message_with_odd_attributes_is_dead_lettered_anyway(
    consumer: Harness, attributes: object
) -> None:
    # Given a poison message whose messageAttributes are not what Lambda writes
    message_id = consumer.send("not json")
    event = consumer.receive_event()
    event["Records"][0]["messageAttributes"] = attributes

    # When it is processed
    response = consumer.invoke(event)

    # Then it reached the DLQ with its reason, and is acknowledged
    assert response == {"batchItemFailures": []}
    [dead_letter] = consumer.dead_letters()
    assert dead_letter["MessageAttributes"]["SourceMessageId"]["StringValue"] == message_id
    assert dead_letter["MessageAttributes"]["DeadLetterReason"]["StringValue"] == "invalid-json"


def test_a_direct_job_follows_the_json_rule_of_the_queue(consumer: Harness) -> None:
    # Given a direct job whose body is NaN (Lambda's runtime parses events with Python's json)
    response = consumer.invoke(json.loads('{"body": NaN}'))

    # Then it was never sent downstream, and went to the DLQ as invalid JSON, in a copy that
    # is JSON (NaN written as null)
    assert consumer.downstream.requests == []
    assert response["status"] == "dead-lettered"
    [dead_letter] = consumer.dead_letters()
    assert dead_letter["MessageAttributes"]["DeadLetterReason"]["StringValue"] == "invalid-json"
    assert dead_letter["Body"] == "null"


@pytest.mark.parametrize(
    "parameter_overrides", [{"SourceQueueRetentionSeconds": 300}], indirect=True
)
def test_a_message_that_would_expire_before_its_retry_is_dead_lettered_now(
    consumer: Harness,
) -> None:
    # Given a source queue that keeps messages 5 minutes, and a failing message whose next
    # attempt (at least 32 s, plus up to a batching window of 300 s) would come after that
    message_id = consumer.send('{"n": 1}')
    consumer.downstream.default = Answer(503)

    # When its delivery fails
    response = consumer.invoke(consumer.receive_event())

    # Then it is dead-lettered now, with the reason, instead of expiring on the queue
    assert response == {"batchItemFailures": []}
    assert consumer.visibility_changes == []
    [dead_letter] = consumer.dead_letters()
    attributes = dead_letter["MessageAttributes"]
    assert attributes["DeadLetterReason"]["StringValue"] == "would-expire"
    assert attributes["SourceMessageId"]["StringValue"] == message_id
    assert "503" in attributes["DeadLetterDetail"]["StringValue"]


def test_a_message_far_from_expiry_is_retried(consumer: Harness) -> None:
    # Given the template's retention (4 days) and a failing message sent just now
    consumer.send('{"n": 1}')
    consumer.downstream.default = Answer(503)

    # When its delivery fails, Then it is rescheduled, not dead-lettered
    with pytest.raises(BatchProcessingError):
        consumer.invoke(consumer.receive_event())
    assert len(consumer.visibility_changes) == 1
    assert consumer.dead_letters() == []


def test_a_dead_letter_copy_too_large_for_sqs_is_not_sent_and_the_reason_is_counted(
    consumer: Harness,
) -> None:
    # Given a poison body so close to SQS's size limit that the reason attributes cannot fit
    body = "x" * (MAX_MESSAGE_SIZE_BYTES - 16)
    consumer.send(body)
    event = consumer.receive_event()

    # When it is processed
    with pytest.raises(BatchProcessingError):
        consumer.invoke(event)

    # Then no copy was attempted, the record stays on the source queue for the redrive policy,
    # and the reason is logged and counted
    assert consumer.dead_letters() == []
    emitted = consumer.emitted()
    assert emitted.metric_total("DeadLetterTooLarge") == 1
    [line] = emitted.logs_with("retry scheduled")
    assert "bytes" in line["error"]


def test_original_attributes_that_would_not_fit_are_left_off_the_copy(consumer: Harness) -> None:
    # Given a poison body that fits with the reason attributes, but not with its own large one
    body = "y" * (MAX_MESSAGE_SIZE_BYTES - 2048)
    consumer.send(body, {"big": {"DataType": "String", "StringValue": "z" * 4096}})

    # When it is processed
    response = consumer.invoke(consumer.receive_event())

    # Then the copy went to the DLQ with its reason and without the attribute that did not fit
    assert response == {"batchItemFailures": []}
    [dead_letter] = consumer.dead_letters()
    assert "big" not in dead_letter["MessageAttributes"]
    assert dead_letter["MessageAttributes"]["DeadLetterReason"]["StringValue"] == "invalid-json"


@pytest.mark.parametrize("parameter_overrides", [{"NonRetryableStatusCodes": "400"}], indirect=True)
def test_a_long_failure_detail_is_bounded_on_the_copy(consumer: Harness) -> None:
    # Given a non-retryable 400 whose reason phrase makes the failure's detail 2,000+ characters
    consumer.downstream.default = Answer(400, reason="R" * 2000)
    consumer.send('{"n": 1}')

    # When it is processed
    consumer.invoke(consumer.receive_event())

    # Then the detail attribute is the detail's first 512 characters
    [dead_letter] = consumer.dead_letters()
    detail = dead_letter["MessageAttributes"]["DeadLetterDetail"]["StringValue"]
    assert detail == ("downstream answered 400 " + "R" * 2000)[:512]


def test_credentials_in_the_downstream_url_appear_in_no_error() -> None:
    # Given a downstream URL with a password and a token, and an invalid setting beside it
    environ = {
        "DOWNSTREAM_URL": "ftp://user:s3cr3t@example.com/x?token=t0ken",
        "DEAD_LETTER_QUEUE_URL": "https://sqs.example.com/1/dlq",
    }

    # When the configuration is read
    with pytest.raises(ConfigurationError) as raised:
        Config.from_environ(environ)

    # Then the error names the URL without its secrets
    message = str(raised.value)
    assert "DOWNSTREAM_URL='ftp://example.com/x'" in message
    assert "s3cr3t" not in message
    assert "t0ken" not in message


@pytest.mark.parametrize(
    "env_overrides",
    [{"DOWNSTREAM_URL": "http://user:s3cr3t@127.0.0.1:9/messages?token=t0ken"}],
    indirect=True,
)
def test_credentials_in_the_downstream_url_appear_in_no_log_line(consumer: Harness) -> None:
    # Given a downstream URL with credentials, on a port where nothing listens
    consumer.send('{"n": 1}')

    # When the delivery fails
    started = time.monotonic()
    with pytest.raises(BatchProcessingError):
        consumer.invoke(consumer.receive_event())
    assert time.monotonic() - started < 10

    # Then every log line names the downstream without its secrets
    emitted = consumer.emitted()
    [line] = emitted.logs_with("retry scheduled")
    assert "http://127.0.0.1:9/messages" in line["error"]
    for log_line in emitted.logs:
        assert "s3cr3t" not in json.dumps(log_line)
        assert "t0ken" not in json.dumps(log_line)
