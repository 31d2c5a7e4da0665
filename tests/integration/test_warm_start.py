"""Warm starts reuse connections, never request data (the lesson on module globals)."""

from __future__ import annotations

from consumer.observability import logger
from tests.integration.conftest import Harness
from tests.support.downstream import Answer


def test_a_warm_invocation_reuses_clients_and_carries_no_request_data(consumer: Harness) -> None:
    # Given a first invocation that delivered one message and failed another
    consumer.send('{"n": 1}')
    first_id = consumer.send('{"n": 2}')
    consumer.downstream.answer(Answer(200), Answer(503))
    response = consumer.invoke(consumer.receive_event())
    assert response == {"batchItemFailures": [{"itemIdentifier": first_id}]}

    # When a second invocation in the same process handles another message
    second_id = consumer.send('{"n": 3}')
    assert consumer.invoke(consumer.receive_event()) == {"batchItemFailures": []}

    # Then the downstream saw every call arrive on one connection, kept open across invocations...
    ports = {request["client_port"] for request in consumer.downstream.requests}
    assert len(consumer.downstream.requests) == 3
    assert len(ports) == 1
    assert None not in ports
    # ...and none of its log lines mention the first request's message or request id
    emitted = consumer.emitted()
    request_ids = [line["function_request_id"] for line in emitted.logs]
    second_request_lines = [
        line for line in emitted.logs if line["function_request_id"] == request_ids[-1]
    ]
    assert second_request_lines
    assert all(line.get("message_id") in (None, second_id) for line in second_request_lines)
    assert all(first_id not in str(line) for line in second_request_lines)
    # ...and no per-record key survives the invocation
    assert "message_id" not in logger.get_current_keys()
    assert "receive_count" not in logger.get_current_keys()
    # ...and each invocation flushed its own metrics: the second only counts its delivery
    assert emitted.metric_documents[-1]["Delivered"] == [1.0]
    assert "RetriesScheduled" not in emitted.metric_documents[-1]
