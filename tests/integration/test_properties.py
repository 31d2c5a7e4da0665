"""Properties over arbitrary input: any SQS event, any other event, any downstream answer.

The handler runs against moto's SQS and a real local downstream, as in the other integration
tests; hypothesis draws the events and the answers. Whatever it draws:
- the handler returns a partial batch response naming only messageIds of the event, raises
  BatchProcessingError (every record failed), or raises UnsupportedEventError for an event it
  cannot read, naming keys and never values;
- no record is acknowledged (left out of batchItemFailures) without a 2xx from the downstream
  or a copy in the dead-letter queue;
- no call outlives the invocation; a log line that names a message names one of the event's.
"""

from __future__ import annotations

import json
import string
import time
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from local.lambda_service.lambda_context import FakeLambdaContext
from shared.errors import UnsupportedEventError
from tests.integration.conftest import Harness
from tests.support.downstream import Answer

# Shared function-scoped fixtures are reset by each example itself (see fresh()).
PROPERTY_SETTINGS = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
REMAINING_MS = 8_000
OTHER_QUEUE = "sqs-backoff-consumer-other"

SECRET = "VALUE-THAT-MUST-NOT-BE-LOGGED"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
json_bodies = json_values.map(json.dumps)
bodies = st.one_of(
    json_bodies,
    json_bodies,
    json_bodies,
    json_bodies,
    st.text(max_size=40),
    st.sampled_from(["", "NaN", '{"x": -Infinity}', "[" * 5000 + "]" * 5000, "{" * 100_000]),
    st.just("x" * (1024 * 1024 - 64)),
    st.just('{"simulate": {"status": 400}}'),
)
# Mostly what SQS writes, so that most records reach the downstream; the rest is odd.
valid_receive_counts = st.integers(min_value=1, max_value=30).map(str)
receive_counts = st.one_of(
    valid_receive_counts,
    valid_receive_counts,
    valid_receive_counts,
    valid_receive_counts,
    st.sampled_from(["0", "-1", "1.5", "ten", "", "9" * 5000, "\uff11"]),
    st.integers(),
    st.none(),
)
timestamps = st.one_of(
    st.just("now"),
    st.just("now"),
    st.just("now"),
    st.sampled_from(["0", "-5", "x", "9" * 40]),
    st.integers(),
    st.none(),
)
attribute_values = st.one_of(
    st.fixed_dictionaries({"dataType": st.just("String"), "stringValue": st.text(max_size=10)}),
    st.fixed_dictionaries({"dataType": st.just("Binary"), "binaryValue": st.text(max_size=10)}),
    st.dictionaries(st.text(max_size=5), st.text(max_size=5) | st.none(), max_size=3),
    st.text(max_size=5),
    st.none(),
    st.integers(),
)
message_attributes = st.one_of(
    st.dictionaries(st.text(min_size=1, max_size=8), attribute_values, max_size=12),
    st.none(),
    st.text(max_size=5),
)
answers = st.builds(
    Answer,
    status=st.sampled_from([200, 201, 204, 301, 302, 400, 404, 409, 429, 500, 502, 503, 599]),
    headers=st.one_of(
        st.just({}),
        st.fixed_dictionaries(
            {
                "Retry-After": st.one_of(
                    st.integers(min_value=0, max_value=10**6).map(str),
                    st.sampled_from(
                        [
                            "-1",
                            "soon",
                            "9" * 5000,
                            "Wed, 21 Oct 2015 07:28:00 GMT",
                            "Fri, 31 Dec 9999 23:59:59 GMT",
                            "",
                        ]
                    ),
                )
            }
        ),
        st.just({"Set-Cookie": "session=" + SECRET}),
    ),
    body=st.sampled_from([b"{}", b"", b"x" * 200_000]),
    trickle_seconds=st.sampled_from([0.0] * 12 + [0.3]),
    reset=st.sampled_from([False] * 10 + [True]),
)


@st.composite
def records(draw: st.DrawFn, source_arn: str, other_arn: str, ids: list[str]) -> dict[str, Any]:
    record: dict[str, Any] = {
        "messageId": draw(st.sampled_from(ids)),
        "receiptHandle": draw(st.text(string.ascii_letters, min_size=1, max_size=20)),
        "body": draw(bodies),
        "attributes": {},
        "messageAttributes": draw(message_attributes),
        "md5OfBody": "0",
        "eventSource": draw(st.sampled_from(["aws:sqs"] * 9 + ["aws:sns"])),
        "eventSourceARN": draw(st.sampled_from([source_arn] * 6 + [other_arn, "queue", ""])),
        "awsRegion": "us-east-1",
    }
    count = draw(receive_counts)
    if count is not None:
        record["attributes"]["ApproximateReceiveCount"] = count
    sent = draw(timestamps)
    if sent == "now":
        sent = str(int(time.time() * 1000))
    if sent is not None:
        record["attributes"]["SentTimestamp"] = sent
    missing = draw(st.sampled_from([None] * 12 + ["receiptHandle", "body", "attributes"]))
    if missing is not None:
        del record[missing]
    return record


@pytest.fixture
def other_queue_arn(consumer: Harness) -> str:
    consumer.sqs.create_queue(QueueName=OTHER_QUEUE)
    return consumer.source_arn.rsplit(":", 1)[0] + ":" + OTHER_QUEUE


def fresh(consumer: Harness, script: list[Answer]) -> None:
    """Forget what earlier examples left: requests seen, answers, dead letters, log lines."""
    consumer.downstream.requests.clear()
    consumer.downstream.script.clear()
    consumer.downstream.default = Answer()
    consumer.downstream.answer(*script)
    dead_lettered_sources(consumer)
    consumer.forget_emitted()


def dead_lettered_sources(consumer: Harness) -> set[str]:
    return {
        message.get("MessageAttributes", {}).get("SourceMessageId", {}).get("StringValue", "")
        for message in consumer.drain_dead_letters()
    }


def sent_again(consumer: Harness) -> set[str]:
    """The records sent again to their queue as new messages (a count above the queue's
    maxReceiveCount: a redrive kept it); the log line comes only with SQS's new message id."""
    return {
        line["message_id"]
        for line in consumer.emitted().logs
        if "so it was sent again as a new message" in line["message"] and line["new_message_id"]
    }


@PROPERTY_SETTINGS
@given(data=st.data())
@pytest.mark.parametrize(
    "env_overrides",
    [{"DOWNSTREAM_TIMEOUT_SECONDS": "0.5", "NON_RETRYABLE_STATUS_CODES": "400,404"}],
    indirect=True,
)
def test_any_sqs_event_loses_nothing_and_fails_only_what_it_concerns(
    consumer: Harness, other_queue_arn: str, data: st.DataObject
) -> None:
    # Given an arbitrary batch (odd attributes, duplicate ids, two queues, any body) and a
    # downstream answering anything
    ids = [f"id-{n}" for n in range(data.draw(st.integers(1, 6), label="distinct ids"))]
    batch = data.draw(
        st.lists(records(consumer.source_arn, other_queue_arn, ids), min_size=1, max_size=8),
        label="records",
    )
    fresh(consumer, data.draw(st.lists(answers, max_size=8), label="answers"))

    # When the handler gets it
    started = time.monotonic()
    outcome: Any
    try:
        outcome = consumer.invoke({"Records": batch}, FakeLambdaContext(remaining_ms=REMAINING_MS))
    except (BatchProcessingError, UnsupportedEventError) as error:
        outcome = error
    elapsed = time.monotonic() - started
    # What the examples covered, in --hypothesis-show-statistics
    event(f"outcome: {type(outcome).__name__}")
    event(f"downstream calls: {min(len(consumer.downstream.requests), 3)}+")

    # Then it answered in time, with a response naming only the event's records...
    assert elapsed < REMAINING_MS / 1000
    if isinstance(outcome, UnsupportedEventError):
        # ...refused only when no record is an SQS record (every record here has a messageId),
        # before any call
        assert not any(record.get("eventSource") == "aws:sqs" for record in batch)
        assert consumer.downstream.requests == []
        assert dead_lettered_sources(consumer) == set()
        return
    if isinstance(outcome, BatchProcessingError):
        # ...every record failed (Lambda returns the whole batch): none was acknowledged, so
        # none may have been delivered or dead-lettered, and each failure was counted
        failed = {str(record.get("messageId")) for record in batch}
        # (a 2xx trickled a byte every 0.3 s is cut off by the call's 0.5 s deadline: the
        # downstream answered it, the client never read it, and the message comes back, as
        # after any read timeout)
        assert not any(
            request["answered_status"] is not None
            and 200 <= request["answered_status"] <= 299
            and not request["trickled"]
            for request in consumer.downstream.requests
        )
        assert dead_lettered_sources(consumer) == set()
        # (the project's short error names the count; one record keeps Powertools' own)
        assert (
            f"All records failed processing ({len(batch)})"
            if len(batch) > 1
            else f"{len(batch)} individual errors"
        ) in str(outcome)
    else:
        assert set(outcome) == {"batchItemFailures"}
        failed = {item["itemIdentifier"] for item in outcome["batchItemFailures"]}
        assert failed <= {record["messageId"] for record in batch}
    # ...and every record it acknowledged was delivered (a 2xx) or dead-lettered
    delivered = {
        request["headers"].get("Idempotency-Key")
        for request in consumer.downstream.requests
        if request["answered_status"] is not None and 200 <= request["answered_status"] <= 299
    }
    dead_lettered = dead_lettered_sources(consumer)
    for record in batch:
        if record["messageId"] not in failed:
            assert record["messageId"] in delivered | dead_lettered | sent_again(consumer), record
    # ...and no log line names a message the event does not hold, or a cookie's value
    emitted = consumer.emitted()
    for line in emitted.logs:
        assert line.get("message_id") in {None, *ids}
        assert SECRET not in json.dumps(line)
    # ...and no request carried a cookie a downstream set
    assert all("Cookie" not in request["headers"] for request in consumer.downstream.requests)


@PROPERTY_SETTINGS
@given(
    event=st.one_of(
        json_values,
        st.dictionaries(st.text(max_size=8), json_values, max_size=4),
        st.fixed_dictionaries({"Records": json_values}),
        st.fixed_dictionaries({"Records": st.lists(json_values, min_size=1, max_size=3)}),
        st.fixed_dictionaries({"Records": st.just([]), "body": json_values}),
    )
)
def test_any_other_event_is_refused_naming_keys_never_values(consumer: Harness, event: Any) -> None:
    # Given an event that is neither an SQS batch nor a direct job, carrying a secret value
    if isinstance(event, dict):
        event = {**event, "secretKey": SECRET}
    consumer.downstream.requests.clear()
    refusal: UnsupportedEventError | None = None
    batch_error: BatchProcessingError | None = None
    try:
        # When the handler gets it
        consumer.invoke(event)
    except UnsupportedEventError as error:
        refusal = error
    except BatchProcessingError as error:
        batch_error = error
    if batch_error is not None:
        # (an SQS-looking batch whose every record was invalid is refused record by record:
        # each counted, none delivered)
        assert isinstance(event, dict)
        assert isinstance(event.get("Records"), list)
        assert f"{len(event['Records'])} individual errors" in str(batch_error)
        assert consumer.downstream.requests == []
        return
    if refusal is None:
        # Then only a direct job or an SQS batch is accepted...
        assert isinstance(event, dict)
        assert "body" in event or "Records" in event
    else:
        # ...and a refusal names what was expected, and never a value
        assert "expected" in str(refusal)
        assert SECRET not in str(refusal)
