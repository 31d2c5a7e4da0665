"""How each downstream outcome is classified: timeouts, refused connections, redirects, statuses."""

from __future__ import annotations

import socket
import threading

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from local.lambda_service.lambda_context import FakeLambdaContext
from tests.integration.conftest import Harness
from tests.support.downstream import Answer


def _unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.mark.parametrize("env_overrides", [{"DOWNSTREAM_TIMEOUT_SECONDS": "0.3"}], indirect=True)
def test_a_downstream_that_does_not_answer_in_time_is_a_timeout(consumer: Harness) -> None:
    # Given a downstream that holds the request until the test ends
    consumer.send('{"n": 1}')
    consumer.downstream.default = Answer(200, hold=threading.Event())

    # When the function calls it with a 0.3 s timeout
    with pytest.raises(BatchProcessingError):
        consumer.invoke(consumer.receive_event())

    # Then the record failed as a timeout and was rescheduled
    emitted = consumer.emitted()
    assert emitted.metric_total("DownstreamFailedTimeout") == 1
    [line] = emitted.logs_with("retry scheduled")
    assert line["outcome"] == "timeout"
    assert line.get("status_code") is None
    assert len(consumer.visibility_changes) == 1


@pytest.mark.parametrize(
    "env_overrides",
    [{"DOWNSTREAM_URL": f"http://127.0.0.1:{_unused_port()}/messages"}],
    indirect=True,
)
def test_a_refused_connection_is_a_retryable_failure(consumer: Harness) -> None:
    # Given a message and a downstream URL on a port nobody listens on
    consumer.send('{"n": 1}')

    # When it is delivered
    with pytest.raises(BatchProcessingError):
        consumer.invoke(consumer.receive_event())

    # Then the record failed as a connection failure and was rescheduled
    emitted = consumer.emitted()
    assert emitted.metric_total("DownstreamFailedConnection") == 1
    assert emitted.metric_total("RetriesScheduled") == 1


def test_a_message_id_that_cannot_be_a_header_fails_the_record_without_a_call(
    consumer: Harness,
) -> None:
    # Given a record whose message id (its Idempotency-Key) holds a line break, and a good one
    good_id = consumer.send('{"n": 1}')
    consumer.send('{"n": 2}')
    event = consumer.receive_event()
    bad = next(record for record in event["Records"] if record["messageId"] != good_id)
    bad["messageId"] = "id\r\nX-Injected: 1"

    # When the batch is processed
    response = consumer.invoke(event)

    # Then that record failed as a request error and was rescheduled, no header was injected,
    # and the good record went out with its own body and key
    assert response == {"batchItemFailures": [{"itemIdentifier": bad["messageId"]}]}
    emitted = consumer.emitted()
    assert emitted.metric_total("DownstreamFailedRequestError") == 1
    [line] = emitted.logs_with("retry scheduled")
    assert line["outcome"] == "request-error"
    [request] = consumer.downstream.requests
    assert request["headers"]["Idempotency-Key"] == good_id
    assert request["body"] == '{"n": 1}'
    assert "X-Injected" not in request["headers"]


def test_a_redirect_is_a_failure_and_is_not_followed(consumer: Harness) -> None:
    # Given a downstream that redirects elsewhere
    consumer.send('{"n": 1}')
    consumer.downstream.default = Answer(307, headers={"Location": consumer.downstream.url})

    # When delivered, Then the record fails and the downstream saw exactly one request
    with pytest.raises(BatchProcessingError):
        consumer.invoke(consumer.receive_event())
    assert len(consumer.downstream.requests) == 1
    assert consumer.emitted().metric_total("DownstreamFailed3xx") == 1


@pytest.mark.parametrize("status", [400, 404, 409, 500, 502])
def test_client_and_server_errors_are_retried_by_default(consumer: Harness, status: int) -> None:
    # Given no non-retryable statuses configured, and a downstream answering a 4xx or 5xx
    consumer.send('{"n": 1}')
    consumer.downstream.default = Answer(status)

    # When the message is delivered
    with pytest.raises(BatchProcessingError):
        consumer.invoke(consumer.receive_event())

    # Then the record fails for a retry rather than being dead-lettered, counted by status class
    assert consumer.dead_letters() == []
    assert consumer.emitted().metric_total(f"DownstreamFailed{status // 100}xx") == 1


@pytest.mark.parametrize(
    "parameter_overrides", [{"NonRetryableStatusCodes": "400,422"}], indirect=True
)
def test_a_non_retryable_status_dead_letters_at_once(consumer: Harness) -> None:
    # Given a downstream that rejects one message with a status the operator declared final
    ok_id = consumer.send('{"n": 1}')
    rejected_id = consumer.send('{"n": 2}')
    consumer.downstream.by_body['{"n": 2}'] = Answer(422)

    # When the batch is processed
    response = consumer.invoke(consumer.receive_event())

    # Then both are acknowledged; the rejected one is in the DLQ with the reason
    assert response == {"batchItemFailures": []}
    assert consumer.visibility_changes == []
    [dead_letter] = consumer.dead_letters()
    assert dead_letter["Body"] == '{"n": 2}'
    attributes = dead_letter["MessageAttributes"]
    assert attributes["DeadLetterReason"]["StringValue"] == "non-retryable-status"
    assert attributes["SourceMessageId"]["StringValue"] == rejected_id
    assert "422" in attributes["DeadLetterDetail"]["StringValue"]
    assert ok_id != rejected_id


@pytest.mark.parametrize("env_overrides", [{"DOWNSTREAM_METHOD": "PUT"}], indirect=True)
def test_the_method_is_configurable(consumer: Harness) -> None:
    # Given DOWNSTREAM_METHOD=PUT, When a message is delivered, Then the downstream got a PUT
    consumer.send('{"n": 1}')
    consumer.invoke(consumer.receive_event())
    assert [request["method"] for request in consumer.downstream.requests] == ["PUT"]


def test_records_left_without_time_are_rescheduled_not_called(consumer: Harness) -> None:
    # Given an invocation with 2 s left: less than the reserve plus a minimal call
    consumer.send('{"n": 1}')
    consumer.send('{"n": 2}')

    # When the batch is processed
    with pytest.raises(BatchProcessingError):
        consumer.invoke(consumer.receive_event(), FakeLambdaContext(remaining_ms=2_000))

    # Then the downstream was never called and both records were rescheduled with a backoff
    assert consumer.downstream.requests == []
    assert len(consumer.visibility_changes) == 2
    assert all(change["VisibilityTimeout"] > 0 for change in consumer.visibility_changes)
    assert consumer.emitted().metric_total("DeadlineSkipped") == 2
