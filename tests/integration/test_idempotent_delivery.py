"""Idempotent delivery (IdempotentDelivery=Enabled) against moto's DynamoDB: a message whose
delivery succeeded is not delivered again when SQS hands it back."""

from __future__ import annotations

import json
import threading

import boto3
import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from consumer import idempotency
from consumer.delivery import get_runtime
from local.lambda_service.lambda_context import FakeLambdaContext
from shared.errors import DeliveryInProgress
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
def test_a_concurrent_duplicate_in_progress_fails_for_a_retry_and_calls_once(
    idempotent: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a batch of ten messages delivered ten at a time, one of them present twice (SQS may
    # hand a standard queue's message out twice), and a downstream that holds the first call
    # for that message until the other copy has been refused as in progress: the two copies
    # are then certainly concurrent, whichever thread comes first
    refused = threading.Event()

    class RefusedInProgress(DeliveryInProgress):
        def __init__(self, *args: object) -> None:
            super().__init__(*args)
            refused.set()

    monkeypatch.setattr(idempotency, "DeliveryInProgress", RefusedInProgress)
    for n in range(9):
        idempotent.send(json.dumps({"n": n}))
    idempotent.downstream.by_body[json.dumps({"n": 0})] = Answer(200, hold=refused)
    records = idempotent.receive_event()["Records"]
    [first] = [record for record in records if record["body"] == json.dumps({"n": 0})]
    event = {"Records": [*records, json.loads(json.dumps(first))]}

    # When it is processed
    response = idempotent.invoke(event)

    # Then every key reached the downstream exactly once, and the copy that found its key in
    # progress failed for a retry (SQS hands it back; by then the outcome is recorded)
    assert refused.is_set()
    bodies = [request["body"] for request in idempotent.downstream.requests]
    assert sorted(bodies) == sorted(json.dumps({"n": n}) for n in range(9))
    assert response == {"batchItemFailures": [{"itemIdentifier": first["messageId"]}]}
    [line] = idempotent.emitted().logs_with("retry scheduled")
    assert line["error_type"] == "RefusedInProgress"


@ENABLED
def test_an_unavailable_idempotency_table_fails_the_record_without_a_call(
    idempotent: Harness,
) -> None:
    # Given the stack's idempotency table gone (deleted, or the function's role denied)
    boto3.client("dynamodb", region_name="us-east-1").delete_table(
        TableName=idempotent.stack.refs["IdempotencyTable"]
    )
    idempotent.send('{"order": 3}')

    # When the message is processed
    with pytest.raises(BatchProcessingError):
        idempotent.invoke(idempotent.receive_event())

    # Then the downstream was not called (the key could not be checked), and the record was
    # rescheduled, saying why
    assert idempotent.downstream.requests == []
    assert len(idempotent.visibility_changes) == 1
    [line] = idempotent.emitted().logs_with("retry scheduled")
    assert line["error_type"] == "IdempotencyUnavailable"
    assert "idempotency table could not be used" in line["error"]
