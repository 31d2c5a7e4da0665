"""Idempotent delivery (IdempotentDelivery=Enabled) against moto's DynamoDB: a message whose
delivery succeeded is not delivered again when SQS hands it back."""

from __future__ import annotations

import json

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from consumer.runtime import get_runtime
from local.lambda_context import FakeLambdaContext
from tests.integration.conftest import Harness
from tests.support.downstream import Answer

ENABLED = pytest.mark.parametrize(
    "parameter_overrides", [{"IdempotentDelivery": "Enabled"}], indirect=True
)


@pytest.fixture
def idempotent(consumer: Harness) -> Harness:
    """The consumer with the template's idempotency table, as the stack configures it."""
    table = consumer.stack.refs["IdempotencyTable"]
    assert consumer.stack.function_environment()["IDEMPOTENCY_TABLE_NAME"] == table
    assert get_runtime().idempotency is not None
    return consumer


@ENABLED
def test_a_message_handed_back_after_a_crash_is_not_delivered_again(idempotent: Harness) -> None:
    # Given a message delivered once, whose batch then crashed before Lambda deleted it: SQS
    # hands the same message back
    idempotent.send('{"order": 1}')
    event = idempotent.receive_event()
    assert idempotent.invoke(event) == {"batchItemFailures": []}
    redelivered = json.loads(json.dumps(event))
    redelivered["Records"][0]["attributes"]["ApproximateReceiveCount"] = "2"

    # When the function gets it again
    response = idempotent.invoke(redelivered)

    # Then it is acknowledged without a second call
    assert response == {"batchItemFailures": []}
    assert len(idempotent.downstream.requests) == 1


@ENABLED
def test_a_failed_delivery_is_tried_again(idempotent: Harness) -> None:
    # Given a message whose first delivery failed
    idempotent.send('{"order": 2}')
    event = idempotent.receive_event()
    idempotent.downstream.answer(Answer(503))
    with pytest.raises(BatchProcessingError):
        idempotent.invoke(event)

    # When it comes back, Then the downstream is called again, and it is delivered
    assert idempotent.invoke(event) == {"batchItemFailures": []}
    assert len(idempotent.downstream.requests) == 2


@pytest.mark.parametrize(
    "parameter_overrides",
    [{"IdempotentDelivery": "Enabled", "IdempotencyKeyJmesPath": "body.orderId"}],
    indirect=True,
)
def test_the_key_can_come_from_the_body(idempotent: Harness) -> None:
    # Given two messages (two message ids) for the same order
    idempotent.send('{"orderId": "A-1", "copy": 1}')
    idempotent.invoke(idempotent.receive_event())
    idempotent.send('{"orderId": "A-1", "copy": 2}')

    # When the second is delivered, Then the order is not sent twice
    assert idempotent.invoke(idempotent.receive_event()) == {"batchItemFailures": []}
    assert [json.loads(r["body"])["copy"] for r in idempotent.downstream.requests] == [1]


@ENABLED
def test_a_dead_lettered_message_handed_back_is_not_copied_twice(idempotent: Harness) -> None:
    # Given a message the downstream refused for good (non-retryable), dead-lettered once
    idempotent.send('{"simulate": {"status": 422}}')
    event = idempotent.receive_event()
    idempotent.monkeypatch.setenv("NON_RETRYABLE_STATUS_CODES", "422")
    get_runtime.cache_clear()
    idempotent.invoke(event)

    # When SQS hands it back, Then there is still one copy and one call
    idempotent.invoke(event)
    assert len(idempotent.drain_dead_letters()) == 1
    assert len(idempotent.downstream.requests) == 1


@ENABLED
def test_a_direct_job_retried_by_lambda_is_delivered_once(idempotent: Harness) -> None:
    # Given a direct job delivered once
    context = FakeLambdaContext(aws_request_id="c0ffee00-0000-4000-8000-000000000002")
    assert idempotent.invoke({"body": {"job": 1}}, context)["status"] == "delivered"

    # When Lambda retries the same event (the same request id)
    response = idempotent.invoke({"body": {"job": 1}}, context)

    # Then the recorded outcome is returned without a second call
    assert response == {"status": "delivered", "statusCode": 200}
    assert len(idempotent.downstream.requests) == 1


@ENABLED
def test_a_concurrent_batch_with_a_duplicate_calls_the_downstream_once_per_key(
    idempotent: Harness,
) -> None:
    # Given a batch of ten messages delivered ten at a time, one of them present twice (SQS may
    # hand a standard queue's message out twice)
    for n in range(9):
        idempotent.send(json.dumps({"n": n}))
        idempotent.downstream.by_body[json.dumps({"n": n})] = Answer(200, latency_seconds=0.02)
    records = idempotent.receive_event()["Records"]
    event = {"Records": [*records, json.loads(json.dumps(records[0]))]}

    # When it is processed
    response = idempotent.invoke(event)

    # Then every key reached the downstream exactly once; the duplicate was acknowledged from
    # the record, or failed for a retry while the first copy was in flight
    bodies = [request["body"] for request in idempotent.downstream.requests]
    assert sorted(bodies) == sorted(json.dumps({"n": n}) for n in range(9))
    failed = [item["itemIdentifier"] for item in response["batchItemFailures"]]
    assert failed in ([], [records[0]["messageId"]])
