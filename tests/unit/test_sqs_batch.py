"""The record fields the consumer relies on, and the errors for records that lack them."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from consumer.sqs_batch import queued_message, receive_count_carried_in
from local.shared.paths import ROOT
from shared.backoff import BackoffPolicy
from shared.errors import InvalidRecordError

SAMPLE: dict[str, Any] = json.loads((ROOT / "events/sqs-single-success.json").read_text())[
    "Records"
][0]


def test_fields_of_a_lambda_record() -> None:
    # Given the sample event's record, When it is parsed, Then its fields are the consumer's
    message = queued_message(SQSRecord(copy.deepcopy(SAMPLE)))
    assert message.message_id == SAMPLE["messageId"]
    assert message.receive_count == 1
    assert message.queue_arn == SAMPLE["eventSourceARN"]
    assert message.sent_timestamp_ms == int(SAMPLE["attributes"]["SentTimestamp"])
    assert message.message_attributes["tenant"]["stringValue"] == "acme"
    assert message.receipt_handle == SAMPLE["receiptHandle"]
    assert message.body == SAMPLE["body"]
    # (a standard queue's record without a MessageGroupId has none)
    assert message.message_group_id is None


def test_a_fifo_records_group_is_kept_and_an_empty_one_is_none() -> None:
    # Given a record with a MessageGroupId, and one whose MessageGroupId is empty
    raw = copy.deepcopy(SAMPLE)
    raw["attributes"]["MessageGroupId"] = "orders-7"
    empty = copy.deepcopy(SAMPLE)
    empty["attributes"]["MessageGroupId"] = ""
    # When they are parsed, Then the first keeps its group and the second has none
    assert queued_message(SQSRecord(raw)).message_group_id == "orders-7"
    assert queued_message(SQSRecord(empty)).message_group_id is None


def test_message_attributes_that_are_not_a_mapping_are_none() -> None:
    # Given a record whose messageAttributes is not an object
    raw = copy.deepcopy(SAMPLE)
    raw["messageAttributes"] = ["not", "a", "mapping"]
    # When it is parsed, Then it carries no attributes
    assert queued_message(SQSRecord(raw)).message_attributes == {}


def test_a_fifteen_digit_receive_count_is_the_longest_read() -> None:
    # Given receive counts of 15 and 16 digits (SQS's are far below 10^15)
    fifteen = copy.deepcopy(SAMPLE)
    fifteen["attributes"]["ApproximateReceiveCount"] = "9" * 15
    sixteen = copy.deepcopy(SAMPLE)
    sixteen["attributes"]["ApproximateReceiveCount"] = "9" * 16
    # When they are parsed, Then 15 digits are read and 16 refused
    assert queued_message(SQSRecord(fifteen)).receive_count == 10**15 - 1
    with pytest.raises(InvalidRecordError, match="ApproximateReceiveCount"):
        queued_message(SQSRecord(sixteen))


def test_an_unreadable_sent_timestamp_is_unknown_not_an_error() -> None:
    # Given a record whose SentTimestamp is not a number
    raw = copy.deepcopy(SAMPLE)
    raw["attributes"]["SentTimestamp"] = "yesterday"
    # When it is parsed, Then the record is still valid, its enqueue time unknown
    assert queued_message(SQSRecord(raw)).sent_timestamp_ms is None


@pytest.mark.parametrize(
    ("path", "value", "error"),
    [
        (("eventSource",), "aws:sns", "not an SQS record"),
        (("receiptHandle",), "", "no receiptHandle"),
        (("body",), None, "no body string"),
        (("attributes", "ApproximateReceiveCount"), "0", "ApproximateReceiveCount"),
        (("attributes", "ApproximateReceiveCount"), "two", "ApproximateReceiveCount"),
        (("attributes", "ApproximateReceiveCount"), "9" * 5000, "ApproximateReceiveCount"),
        (("attributes", "ApproximateReceiveCount"), 3, "ApproximateReceiveCount"),
        (("attributes",), "none", "ApproximateReceiveCount"),
        (("eventSourceARN",), "arn:aws:sns:us-east-1:123456789012:topic", "eventSourceARN"),
        (("eventSourceARN",), "queue-name", "eventSourceARN"),
    ],
)
def test_invalid_records(path: tuple[str, ...], value: Any, error: str) -> None:
    # Given a record with one field broken, When it is parsed, Then the error names the field
    raw = copy.deepcopy(SAMPLE)
    target = raw
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(InvalidRecordError, match=error):
        queued_message(SQSRecord(raw))


@pytest.mark.parametrize(("receive_count", "carried_in"), [(9, False), (10, False), (11, True)])
def test_only_a_count_above_max_receive_count_is_taken_for_a_carried_one(
    receive_count: int, carried_in: bool
) -> None:
    # Given the default MaxReceiveCount (10): the queue's redrive policy lets a message be
    # received 10 times, so 10 is its own final attempt and only 11 or more was carried in.
    # When the count is judged, Then only 11 is (10 taken for carried in would send the final
    # attempt again as a new message instead of letting SQS dead-letter it)
    assert receive_count_carried_in(receive_count, BackoffPolicy()) is carried_in
