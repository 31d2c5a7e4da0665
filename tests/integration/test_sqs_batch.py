"""SQS batches: delivery, visibility-timeout backoff, dead-lettering, partial batch responses."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from consumer.sqs_actions import MAX_BATCHING_WINDOW_SECONDS
from local.lambda_service.lambda_context import FakeLambdaContext
from shared.backoff import MAX_VISIBILITY_TIMEOUT_SECONDS
from tests.integration.conftest import Harness
from tests.support.downstream import Answer
from tests.support.expected_delays import TEMPLATE_DEFAULTS


def backoff_bounds(consumer: Harness, receive_count: int) -> tuple[int, int]:
    """The delay range the template's default backoff parameters allow, from the table computed
    by hand (not from the code under test)."""
    policy = consumer.backoff_policy
    assert (policy.base_seconds, policy.jitter_seconds, policy.max_seconds) == (30, 60, 43_200)
    return TEMPLATE_DEFAULTS[receive_count]


def test_delivers_body_verbatim_with_idempotency_key(consumer: Harness) -> None:
    # Given a message on the source queue and a healthy downstream
    body = '{"orderId": "A-1", "amount": 42,  "note": "spacing kept"}'
    message_id = consumer.send(body)

    # When the function receives it
    response = consumer.invoke(consumer.receive_event())

    # Then the downstream got the body byte for byte, keyed by the message id, and no record failed
    assert response == {"batchItemFailures": []}
    [request] = consumer.downstream.requests
    assert request["method"] == "POST"
    assert request["body"] == body
    assert request["headers"]["Content-Type"] == "application/json"
    assert request["headers"]["Idempotency-Key"] == message_id
    assert consumer.visibility_changes == []
    assert consumer.emitted().metric_total("Delivered") == 1


def test_delivered_is_one_value_an_invocation_counting_its_delivered_records(
    consumer: Harness,
) -> None:
    # Given three messages, one of which the downstream refuses with a 503
    for n in range(3):
        consumer.send(f'{{"n": {n}}}')
    consumer.downstream.by_body['{"n": 1}'] = Answer(503)

    # When the batch is processed
    consumer.invoke(consumer.receive_event())

    # Then Delivered holds one value, the two delivered records, and each call its own latency
    emitted = consumer.emitted()
    assert emitted.metric_values("Delivered") == [2.0]
    assert len(emitted.metric_values("DownstreamLatency")) == 3

    # And the next invocation counts its own records only
    consumer.send('{"n": 3}')
    consumer.invoke(consumer.receive_event())
    assert consumer.emitted().metric_values("Delivered") == [2.0, 1.0]


def test_failed_delivery_sets_backoff_visibility_and_lists_the_record(consumer: Harness) -> None:
    # Given two messages, the second of which the downstream refuses with a 503
    ok_id = consumer.send('{"n": 1}')
    failing_id = consumer.send('{"n": 2}')
    consumer.downstream.by_body['{"n": 2}'] = Answer(503)

    # When the batch is processed
    response = consumer.invoke(consumer.receive_event())

    # Then only the failed message is listed, and its visibility was set to delay(1)
    assert response == {"batchItemFailures": [{"itemIdentifier": failing_id}]}
    [change] = consumer.visibility_changes
    low, high = backoff_bounds(consumer, 1)
    assert low <= change["VisibilityTimeout"] <= high
    assert change["QueueUrl"] == consumer.source_url
    # ...and SQS really keeps it hidden: nothing is visible on the queue now
    assert consumer.receive() == []
    emitted = consumer.emitted()
    assert emitted.metric_total("RetriesScheduled") == 1
    assert emitted.metric_values("BackoffSeconds") == [change["VisibilityTimeout"]]
    assert emitted.metric_total("DownstreamFailed5xx") == 1
    [retry_log] = emitted.logs_with("retry scheduled")
    assert retry_log["message_id"] == failing_id
    assert retry_log["receive_count"] == 1
    assert retry_log["status_code"] == 503
    assert retry_log["delay_seconds"] == change["VisibilityTimeout"]
    assert ok_id not in {line.get("message_id") for line in emitted.logs_with("retry scheduled")}


def test_delay_grows_with_the_receive_count(consumer: Harness) -> None:
    # Given a message already received three times (each receive counts, as in SQS)
    consumer.send('{"n": 1}')
    for _ in range(2):
        consumer.receive(visibility_timeout=0)
    consumer.downstream.default = Answer(500)

    # When its third delivery fails
    event = consumer.receive_event()
    assert event["Records"][0]["attributes"]["ApproximateReceiveCount"] == "3"
    with pytest.raises(BatchProcessingError):
        consumer.invoke(event)

    # Then the delay is within delay(3)'s bounds
    low, high = backoff_bounds(consumer, 3)
    assert low <= consumer.visibility_changes[0]["VisibilityTimeout"] <= high


@pytest.mark.parametrize("form", ["delta-seconds", "http-date"])
def test_retry_after_is_a_lower_bound(consumer: Harness, form: str) -> None:
    # Given a downstream that asks for 20 minutes, longer than delay(1)
    wait_seconds = 1200
    if form == "delta-seconds":
        header = str(wait_seconds)
    else:
        header = format_datetime(datetime.now(UTC) + timedelta(seconds=wait_seconds), usegmt=True)
    consumer.send('{"n": 1}')
    consumer.downstream.default = Answer(429, headers={"Retry-After": header})

    # When the delivery fails
    with pytest.raises(BatchProcessingError):
        consumer.invoke(consumer.receive_event())

    # Then the visibility honours Retry-After (the date form loses at most a second to rounding)
    assert (
        wait_seconds - 1 <= consumer.visibility_changes[0]["VisibilityTimeout"] <= wait_seconds + 1
    )
    # ...and the log line says what the downstream asked for
    [line] = consumer.emitted().logs_with("retry scheduled")
    assert wait_seconds - 1 <= line["retry_after_seconds"] <= wait_seconds


def test_final_attempt_sets_visibility_zero_and_sqs_dead_letters_at_next_receive(
    consumer: Harness,
) -> None:
    # Given a message on its last allowed delivery (the template's MaxReceiveCount, 10)
    max_receive_count = int(consumer.stack.parameters["MaxReceiveCount"])
    message_id = consumer.send('{"n": 1}')
    for _ in range(max_receive_count - 1):
        consumer.receive(visibility_timeout=0)
    consumer.downstream.default = Answer(503, headers={"Retry-After": "3600"})

    # When that delivery fails too
    event = consumer.receive_event()
    assert event["Records"][0]["attributes"]["ApproximateReceiveCount"] == str(max_receive_count)
    with pytest.raises(BatchProcessingError):
        consumer.invoke(event)

    # Then the visibility is 0, Retry-After notwithstanding, and the next receive dead-letters it
    assert consumer.visibility_changes[0]["VisibilityTimeout"] == 0
    assert consumer.receive() == []
    [dead_letter] = consumer.dead_letters()
    assert dead_letter["MessageId"] == message_id
    assert consumer.emitted().metric_total("FinalAttemptsFailed") == 1


def test_invalid_json_goes_to_the_dead_letter_queue_at_once(consumer: Harness) -> None:
    # Given a message whose body is not JSON, with an attribute of its own
    body = '{"orderId": "A-7", "amount": 12,'
    message_id = consumer.send(body, {"tenant": {"DataType": "String", "StringValue": "acme"}})

    # When it is processed
    response = consumer.invoke(consumer.receive_event())

    # Then it is acknowledged, never sent downstream, and sits in the DLQ with the reason
    assert response == {"batchItemFailures": []}
    assert consumer.downstream.requests == []
    [dead_letter] = consumer.dead_letters()
    assert dead_letter["Body"] == body
    attributes = dead_letter["MessageAttributes"]
    assert attributes["DeadLetterReason"]["StringValue"] == "invalid-json"
    assert attributes["SourceMessageId"]["StringValue"] == message_id
    assert "not valid JSON" in attributes["DeadLetterDetail"]["StringValue"]
    assert attributes["tenant"]["StringValue"] == "acme"
    # ...and it is counted as dead-lettered
    assert consumer.emitted().metric_total("DeadLettered") == 1


@pytest.mark.parametrize("body", ["NaN", '{"a": Infinity}', "   ", "{'quotes': 'single'}"])
def test_python_only_json_is_poison_too(consumer: Harness, body: str) -> None:
    # Given bodies that only Python's json accepts, or that are not JSON at all
    consumer.send(body)

    # When processed, Then they are dead-lettered, not delivered
    assert consumer.invoke(consumer.receive_event()) == {"batchItemFailures": []}
    assert consumer.downstream.requests == []
    assert len(consumer.dead_letters()) == 1


def test_a_dead_letter_failure_keeps_the_message_on_the_source_queue(consumer: Harness) -> None:
    # Given a poison message and a dead-letter queue that refuses it
    message_id = consumer.send("not json")
    consumer.sqs.delete_queue(QueueUrl=consumer.dead_letter_url)

    # When it is processed
    with pytest.raises(BatchProcessingError):
        consumer.invoke(consumer.receive_event())

    # Then it is failed and rescheduled like any failure: SQS's redrive will still move it
    assert len(consumer.visibility_changes) == 1
    emitted = consumer.emitted()
    assert emitted.metric_total("DeadLetterSendFailed") == 1
    assert emitted.metric_total("RetriesScheduled") == 1
    [line] = emitted.logs_with("retry scheduled")
    assert line["message_id"] == message_id
    assert line["error_type"] == "DeadLetterError"


def test_visibility_change_failure_still_fails_the_record(consumer: Harness) -> None:
    # Given a record whose receipt handle SQS no longer accepts
    consumer.send('{"n": 1}')
    event = consumer.receive_event()
    event["Records"][0]["receiptHandle"] = "expired-receipt-handle"
    consumer.downstream.default = Answer(503)

    # When its delivery fails
    with pytest.raises(BatchProcessingError):
        consumer.invoke(event)

    # Then the failure is logged and counted, and the record still fails (nothing is lost)
    emitted = consumer.emitted()
    assert emitted.metric_total("VisibilityChangeFailed") == 1
    [line] = emitted.logs_with("backoff could not be set")
    assert "ReceiptHandleIsInvalid" in line["visibility_error"]


def test_every_record_failing_raises_so_the_whole_batch_fails(consumer: Harness) -> None:
    # Given three messages and a downstream that is down
    for n in range(3):
        consumer.send(json.dumps({"n": n}))
    consumer.downstream.default = Answer(503)

    # When the batch is processed, Then the handler raises (Lambda backs its polling off)
    with pytest.raises(BatchProcessingError, match="All records failed"):
        consumer.invoke(consumer.receive_event())

    # ...after giving every message its own backoff
    assert len(consumer.visibility_changes) == 3
    assert len({change["ReceiptHandle"] for change in consumer.visibility_changes}) == 3


def test_empty_batch_is_full_success(consumer: Harness) -> None:
    # Given an empty batch, When it is processed, Then nothing failed
    assert consumer.invoke({"Records": []}) == {"batchItemFailures": []}


def test_a_malformed_record_fails_alone(consumer: Harness) -> None:
    # Given a batch in which one record lacks its receive count
    good_id = consumer.send('{"n": 1}')
    bad_id = consumer.send('{"n": 2}')
    event = consumer.receive_event()
    [bad] = [record for record in event["Records"] if record["messageId"] == bad_id]
    del bad["attributes"]["ApproximateReceiveCount"]

    # When processed, Then only that record fails, and the good one is delivered
    assert consumer.invoke(event) == {"batchItemFailures": [{"itemIdentifier": bad_id}]}
    assert [request["headers"]["Idempotency-Key"] for request in consumer.downstream.requests] == [
        good_id
    ]
    assert consumer.emitted().metric_total("InvalidRecords") == 1


def test_a_record_without_message_id_fails_the_batch_with_a_clear_error(consumer: Harness) -> None:
    # Given a batch whose record has lost its messageId
    consumer.send('{"n": 1}')
    event = consumer.receive_event()
    del event["Records"][0]["messageId"]
    # When it is processed, Then the whole batch fails, saying which record and why
    with pytest.raises(ValueError, match=r"Records\[0\] has no messageId"):
        consumer.invoke(event)


@pytest.mark.parametrize("parameter_overrides", [{"MaxReceiveCount": 100}], indirect=True)
def test_visibility_stays_within_the_twelve_hour_limit(consumer: Harness) -> None:
    # Given a message whose delay reaches the 12-hour cap (receive count 16: 2^16 s > 12 h)
    consumer.send('{"n": 1}')
    for _ in range(15):
        consumer.receive(visibility_timeout=0)
    consumer.downstream.default = Answer(503)

    # When its delivery fails
    with pytest.raises(BatchProcessingError):
        consumer.invoke(consumer.receive_event())

    # Then the visibility leaves room for the time between SQS's receive and the change (a
    # batching window, and the invocation's time), and SQS accepts it
    [change] = consumer.visibility_changes
    invocation_seconds = FakeLambdaContext().remaining_ms // 1000
    most = MAX_VISIBILITY_TIMEOUT_SECONDS - MAX_BATCHING_WINDOW_SECONDS - invocation_seconds
    assert most - 5 <= change["VisibilityTimeout"] <= most
    assert consumer.emitted().metric_total("VisibilityChangeFailed") == 0


def test_visibility_changes_go_ten_to_a_call(consumer: Harness) -> None:
    # Given a batch of 12 messages (two receives) and a downstream that is down
    for n in range(12):
        consumer.send(json.dumps({"n": n}))
    first, second = consumer.receive_event(), consumer.receive_event()
    event = {"Records": first["Records"] + second["Records"]}
    assert len(event["Records"]) == 12
    consumer.downstream.default = Answer(503)

    # When the batch fails
    with pytest.raises(BatchProcessingError):
        consumer.invoke(event)

    # Then twelve visibility changes were made in two calls, and SQS hides all twelve
    assert consumer.visibility_change_calls == 2
    assert len(consumer.visibility_changes) == 12
    assert consumer.receive() == []
    assert consumer.emitted().metric_total("RetriesScheduled") == 12


def test_a_refused_batch_call_is_reported_for_each_record(consumer: Harness) -> None:
    # Given two failing records whose queue is gone by the time the function reschedules them
    consumer.send('{"n": 1}')
    consumer.send('{"n": 2}')
    event = consumer.receive_event()
    consumer.sqs.delete_queue(QueueUrl=consumer.source_url)
    consumer.downstream.default = Answer(503)

    # When the batch fails, Then each record's failure to reschedule is counted, and both fail
    with pytest.raises(BatchProcessingError):
        consumer.invoke(event)
    emitted = consumer.emitted()
    assert emitted.metric_total("VisibilityChangeFailed") == 2
    assert emitted.metric_total("RetriesScheduled") == 0
    assert all(
        "NonExistentQueue" in line["visibility_error"]
        for line in emitted.logs_with("backoff could not be set")
    )
