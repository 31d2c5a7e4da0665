"""Downstreams that trickle, flood, set cookies, or answer with odd headers: every call stays
bounded, and nothing of one delivery reaches another."""

from __future__ import annotations

import contextlib
import json
import time
import tracemalloc

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from local.lambda_service.lambda_context import FakeLambdaContext
from shared.downstream import MAX_BODY_BYTES
from tests.integration.conftest import Harness
from tests.support.downstream import Answer

# Each answer below trickles for 20 s or more: a call the deadline did not cut off would last
# that long. The bounds are halfway there, far above any delay a loaded machine adds to a cut at
# 1 or 2 s, and far below an uncut call.
TRICKLE_SECONDS_PER_BYTE = 0.2


@pytest.mark.parametrize("env_overrides", [{"DOWNSTREAM_TIMEOUT_SECONDS": "1"}], indirect=True)
def test_a_trickling_downstream_is_cut_off_at_the_call_timeout(consumer: Harness) -> None:
    # Given a downstream that sends its answer one byte every 0.2 s (about 20 s in all), each
    # byte well within the 1 s timeout of a single read
    consumer.send('{"n": 1}')
    body = b'{"ok": true}' * 10
    consumer.downstream.default = Answer(200, trickle_seconds=TRICKLE_SECONDS_PER_BYTE, body=body)
    uncut_seconds = len(body) * TRICKLE_SECONDS_PER_BYTE

    # When the message is delivered
    started = time.monotonic()
    with pytest.raises(BatchProcessingError):
        consumer.invoke(consumer.receive_event())
    elapsed = time.monotonic() - started

    # Then the call was cut off as a whole (long before its answer's end), as a timeout, and
    # the record was rescheduled
    assert uncut_seconds >= 24
    assert elapsed < uncut_seconds / 2
    emitted = consumer.emitted()
    assert emitted.metric_total("DownstreamFailedTimeout") == 1
    assert len(consumer.visibility_changes) == 1


def test_no_call_outlives_the_invocation(consumer: Harness) -> None:
    # Given a trickling downstream, a 10 s call timeout, and an invocation with 5 s left (3 s of
    # which the consumer keeps for rescheduling)
    consumer.send('{"n": 1}')
    consumer.downstream.default = Answer(
        200, trickle_seconds=TRICKLE_SECONDS_PER_BYTE, body=b"{}" * 100
    )

    # When the message is delivered
    started = time.monotonic()
    with pytest.raises(BatchProcessingError):
        consumer.invoke(consumer.receive_event(), FakeLambdaContext(remaining_ms=5_000))

    # Then the call stopped at what the invocation had left (2 s), not at the 10 s call timeout
    # it would otherwise have reached (the answer trickles for 40 s)
    assert time.monotonic() - started < 10
    assert consumer.emitted().metric_total("DownstreamFailedTimeout") == 1


@pytest.mark.parametrize("status", [200, 500])
def test_a_huge_answer_is_not_read_into_memory(consumer: Harness, status: int) -> None:
    # Given a downstream answering with a 32 MiB body
    consumer.send('{"n": 1}')
    consumer.downstream.default = Answer(status, body=b"x" * (32 * 1024 * 1024))
    tracemalloc.start()
    try:
        # When the message is delivered
        with contextlib.suppress(BatchProcessingError):
            consumer.invoke(consumer.receive_event())
        _, peak_bytes = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    # Then the function's memory grew by a small multiple of what it reads, never the body
    assert peak_bytes < 40 * MAX_BODY_BYTES
    assert consumer.emitted().metric_total("Delivered") == (1 if status == 200 else 0)


def test_cookies_set_by_the_downstream_are_never_sent_back(consumer: Harness) -> None:
    # Given a downstream that sets a cookie on its first answer
    consumer.downstream.answer(Answer(200, headers={"Set-Cookie": "session=first-message"}))
    consumer.send('{"n": 1}')
    consumer.send('{"n": 2}')
    consumer.invoke(consumer.receive_event())

    # When later messages are delivered, in the same process (a warm start)
    consumer.send('{"n": 3}')
    consumer.invoke(consumer.receive_event())

    # Then no request after the first carried the cookie
    assert len(consumer.downstream.requests) == 3
    for request in consumer.downstream.requests:
        assert "Cookie" not in request["headers"]


@pytest.mark.parametrize("parameter_overrides", [{"NonRetryableStatusCodes": "400"}], indirect=True)
def test_an_absurd_retry_after_is_ignored_and_a_non_retryable_status_still_dead_letters(
    consumer: Harness,
) -> None:
    # Given a downstream answering 400 (declared non-retryable) with a 5,000-digit Retry-After
    message_id = consumer.send('{"n": 1}')
    consumer.downstream.default = Answer(400, headers={"Retry-After": "9" * 5000})

    # When the message is delivered
    response = consumer.invoke(consumer.receive_event())

    # Then it went to the dead-letter queue, as a 400 should
    assert response == {"batchItemFailures": []}
    [dead_letter] = consumer.dead_letters()
    assert dead_letter["MessageAttributes"]["SourceMessageId"]["StringValue"] == message_id


def test_a_connection_reset_is_a_retryable_failure(consumer: Harness) -> None:
    # Given a downstream that resets the connection instead of answering
    consumer.send(json.dumps({"n": 1}))
    consumer.downstream.default = Answer(reset=True)

    # When the message is delivered
    with pytest.raises(BatchProcessingError):
        consumer.invoke(consumer.receive_event())

    # Then the record was rescheduled by the backoff
    assert len(consumer.visibility_changes) == 1
    assert consumer.emitted().metric_total("RetriesScheduled") == 1
