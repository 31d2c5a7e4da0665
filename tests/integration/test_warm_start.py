"""Warm starts reuse connections, never request data (the lesson on module globals)."""

from __future__ import annotations

from shared.observability import logger
from tests.integration.conftest import Harness
from tests.support.downstream import Answer


def test_a_warm_invocation_reuses_clients_and_carries_no_request_data(consumer: Harness) -> None:
    # Given a first invocation that delivered one message and failed another
    consumer.send('{"n": 1}')
    first_id = consumer.send('{"n": 2}')
    consumer.downstream.by_body['{"n": 2}'] = Answer(503)
    response = consumer.invoke(consumer.receive_event())
    assert response == {"batchItemFailures": [{"itemIdentifier": first_id}]}
    first_ports = {request["client_port"] for request in consumer.downstream.requests}

    # When a second invocation in the same process handles another message
    second_id = consumer.send('{"n": 3}')
    assert consumer.invoke(consumer.receive_event()) == {"batchItemFailures": []}

    # Then the downstream saw its call arrive on a connection the first invocation opened, kept
    # open across invocations...
    assert len(consumer.downstream.requests) == 3
    assert consumer.downstream.requests[-1]["client_port"] in first_ports
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
    for keys in (logger.get_current_keys(), logger.thread_safe_get_current_keys()):
        assert "message_id" not in keys
        assert "receive_count" not in keys
    # ...and each invocation flushed its own metrics: the second only counts its delivery
    assert emitted.metric_documents[-1]["Delivered"] == [1.0]
    assert "RetriesScheduled" not in emitted.metric_documents[-1]
