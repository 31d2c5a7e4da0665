"""Which invocations are SQS batches, which are direct jobs, and the error for the rest."""

from __future__ import annotations

from typing import Any

import pytest

from consumer.app import EventShape, classify
from shared.errors import UnsupportedEventError


@pytest.mark.parametrize(
    ("event", "shape"),
    [
        ({"Records": []}, EventShape.SQS_BATCH),
        ({"Records": [{"eventSource": "aws:sqs"}]}, EventShape.SQS_BATCH),
        # A stray non-SQS record among SQS ones fails alone, in the batch
        (
            {"Records": [{"eventSource": "aws:sqs"}, {"eventSource": "aws:sns"}]},
            EventShape.SQS_BATCH,
        ),
        ({"body": {"a": 1}}, EventShape.DIRECT_JOB),
        ({"body": None}, EventShape.DIRECT_JOB),
    ],
)
def test_accepted_shapes(event: dict[str, Any], shape: EventShape) -> None:
    # Given an SQS batch or a direct job, When it is classified, Then its shape is recognised
    assert classify(event) is shape


def test_the_error_names_keys_but_never_values() -> None:
    # Given an event of no accepted shape that carries a secret, When it is classified
    with pytest.raises(UnsupportedEventError) as raised:
        classify({"password": "hunter2", "Records": [{"eventSource": "aws:s3"}]})

    # Then the error names the event's keys but not the secret
    message = str(raised.value)
    assert "['Records', 'password']" in message
    assert "hunter2" not in message


@pytest.mark.parametrize("event", [{"breakerProbe": {}}, {"breakerReport": {}}])
def test_the_breakers_events_are_not_the_consumers(event: dict[str, Any]) -> None:
    # Given the breaker controller's events (its schedule's tick, a report): the consumer never
    # receives them, and does not mistake them for a job
    with pytest.raises(UnsupportedEventError) as raised:
        classify(event)
    # Then they are refused, and the error lists the two shapes accepted
    message = str(raised.value)
    assert '{"Records": [...]}' in message
    assert '{"body": <JSON value>}' in message
    assert "breakerProbe" not in message.split("got", maxsplit=1)[0]
