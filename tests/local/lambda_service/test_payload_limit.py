"""Lambda's 6 MB invocation payload: how many records of an SQS event fit."""

from __future__ import annotations

import json

from local.lambda_service.lambda_sqs_event import (
    MAX_EVENT_BYTES,
    event_bytes,
    lambda_sqs_event,
    record_bytes,
    records_within_limit,
)


def event_of(count: int, body_chars: int) -> dict[str, object]:
    messages = [
        {
            "MessageId": f"id-{n}",
            "ReceiptHandle": f"handle-{n}",
            "Body": json.dumps("y" * body_chars),
            "Attributes": {"ApproximateReceiveCount": "1"},
        }
        for n in range(count)
    ]
    return lambda_sqs_event(messages, "arn:aws:sqs:us-east-1:123456789012:source")


def test_the_limit_is_lambdas_synchronous_payload_limit() -> None:
    # Given Lambda's refusal "Request must be smaller than 6291456 bytes", Then the limit is it
    assert MAX_EVENT_BYTES == 6_291_456


def test_the_records_that_fit_make_an_event_within_the_limit_and_one_more_would_not() -> None:
    # Given an event of 50 records of about 1 kB each
    event = event_of(50, 1_000)
    records = event["Records"]
    assert isinstance(records, list)
    sizes = [record_bytes(record) for record in records]
    # ...and a limit between the size of the first 20 records' event and the first 21's
    limit = (event_bytes({"Records": records[:20]}) + event_bytes({"Records": records[:21]})) // 2

    # When the records within the limit are counted
    fits = records_within_limit(sizes, limit)

    # Then they are the first 20, whose event, measured as sent, is within the limit
    assert fits == 20
    assert (
        event_bytes({"Records": records[:fits]})
        <= limit
        < event_bytes({"Records": records[: fits + 1]})
    )


def test_every_record_fits_an_event_below_the_limit() -> None:
    # Given an event of 10 small records, When counted against 6 MB, Then all fit
    records = event_of(10, 10)["Records"]
    assert isinstance(records, list)
    assert records_within_limit([record_bytes(r) for r in records]) == 10


def test_one_record_always_fits() -> None:
    # Given a single record larger than the limit, When counted, Then it still goes alone
    # (SQS caps a message at 1 MiB, so only a tiny limit can do this)
    records = event_of(2, 500)["Records"]
    assert isinstance(records, list)
    assert records_within_limit([record_bytes(r) for r in records], 100) == 1
