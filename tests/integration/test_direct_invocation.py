"""Direct asynchronous invocations, and events of any other shape."""

from __future__ import annotations

import json
from typing import Any

import pytest

from local.lambda_service.lambda_context import FakeLambdaContext
from shared.downstream import json_error
from shared.errors import DownstreamFailure, UnsupportedEventError
from tests.integration.conftest import Harness
from tests.support.downstream import Answer


def test_a_direct_job_is_delivered_once_keyed_by_the_request_id(consumer: Harness) -> None:
    # Given a direct job
    context = FakeLambdaContext(aws_request_id="c0ffee00-0000-4000-8000-000000000001")

    # When it is invoked
    response = consumer.invoke({"body": {"orderId": "A-2001", "amount": 7}}, context)

    # Then the downstream got the body as compact JSON, keyed by the Lambda request id
    assert response == {"status": "delivered", "statusCode": 200}
    [request] = consumer.downstream.requests
    assert json.loads(request["body"]) == {"orderId": "A-2001", "amount": 7}
    assert request["body"] == '{"orderId":"A-2001","amount":7}'
    assert request["headers"]["Idempotency-Key"] == context.aws_request_id


@pytest.mark.parametrize("body", ["plain text", 42, None, [1, 2], {"nested": {"deep": True}}])
def test_any_json_value_is_a_valid_job_body(consumer: Harness, body: Any) -> None:
    # Given a job whose body is any JSON value, When it is invoked
    consumer.invoke({"body": body})

    # Then the downstream got that value
    [request] = consumer.downstream.requests
    assert json.loads(request["body"]) == body


def test_a_failed_direct_job_raises_so_lambda_retries_it(consumer: Harness) -> None:
    # Given a downstream that is down
    consumer.downstream.default = Answer(503)

    # When a job is invoked, Then the error propagates (Lambda's async retries and OnFailure apply)
    with pytest.raises(DownstreamFailure, match="503"):
        consumer.invoke({"body": {"n": 1}})
    # ...and the queue path's machinery stays out of it
    assert consumer.visibility_changes == []
    assert consumer.dead_letters() == []


def test_retries_of_one_event_keep_their_idempotency_key(consumer: Harness) -> None:
    # Given Lambda retrying one event: same request id, first attempt failing
    context = FakeLambdaContext()
    consumer.downstream.answer(Answer(500), Answer(200))
    with pytest.raises(DownstreamFailure):
        consumer.invoke({"body": {"n": 1}}, context)

    # When it retries, Then the downstream can tell both calls are one job
    assert consumer.invoke({"body": {"n": 1}}, context)["status"] == "delivered"
    keys = {request["headers"]["Idempotency-Key"] for request in consumer.downstream.requests}
    assert keys == {context.aws_request_id}


@pytest.mark.parametrize("parameter_overrides", [{"NonRetryableStatusCodes": "400"}], indirect=True)
def test_a_non_retryable_direct_job_is_dead_lettered_without_lambda_retries(
    consumer: Harness,
) -> None:
    # Given a stack where 400 is non-retryable, and a downstream that answers 400
    consumer.downstream.default = Answer(400)
    context = FakeLambdaContext()

    # When a job is invoked
    response = consumer.invoke({"body": {"n": 1}}, context)

    # Then it returns normally (so Lambda does not retry) and the job is in the DLQ,
    # with its request id and the reason
    assert response["status"] == "dead-lettered"
    [dead_letter] = consumer.dead_letters()
    assert dead_letter["MessageId"] == response["deadLetterMessageId"]
    assert dead_letter["Body"] == '{"n":1}'
    attributes = dead_letter["MessageAttributes"]
    assert attributes["SourceRequestId"]["StringValue"] == context.aws_request_id
    assert attributes["DeadLetterReason"]["StringValue"] == "non-retryable-status"


@pytest.mark.parametrize(
    "event",
    [
        {"detail-type": "Scheduled Event"},
        {"Records": [{"eventSource": "aws:sns", "Sns": {}}]},
        {"Records": "not a list"},
        ["a", "list"],
        "a string",
        None,
    ],
)
def test_other_event_shapes_are_refused_with_the_accepted_shapes_named(
    consumer: Harness, event: Any
) -> None:
    # Given an event that is neither an SQS batch nor a direct job, When it is invoked
    with pytest.raises(UnsupportedEventError) as raised:
        consumer.invoke(event)

    # Then it is refused, naming the accepted shapes, and nothing is delivered
    message = str(raised.value)
    assert '{"Records": [...]}' in message
    assert '{"body": <JSON value>}' in message
    assert consumer.downstream.requests == []


def test_a_job_with_a_number_beyond_a_double_is_dead_lettered_as_json(consumer: Harness) -> None:
    # Given a job sent as {"body": {"x": 1e400, "y": "Infinity"}}, which the Lambda runtime
    # parses into Infinity (the digits sent are lost before the handler runs)
    event = json.loads('{"body": {"x": 1e400, "y": "Infinity", "z": [-1e400]}}')

    # When it is invoked
    response = consumer.invoke(event)

    # Then the downstream is not called with a changed number, and the DLQ copy is JSON (RFC
    # 8259: no Infinity token), the strings untouched, with the reason
    assert response["status"] == "dead-lettered"
    assert consumer.downstream.requests == []
    [dead_letter] = consumer.dead_letters()
    assert dead_letter["Body"] == '{"x":1e999,"y":"Infinity","z":[-1e999]}'
    assert json_error(dead_letter["Body"]) is None
    attributes = dead_letter["MessageAttributes"]
    assert attributes["DeadLetterReason"]["StringValue"] == "number-out-of-range"
    assert "beyond a double's range" in attributes["DeadLetterDetail"]["StringValue"]
