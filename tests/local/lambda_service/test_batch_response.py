"""What the event source mapping deletes after a batch, by Lambda's documented rules."""

from __future__ import annotations

from typing import Any

import pytest

from local.lambda_service.batch_response import batch_outcome

IDS = ("m-1", "m-2", "m-3")


@pytest.mark.parametrize(
    "response", [None, {}, {"batchItemFailures": []}, {"batchItemFailures": None}]
)
def test_empty_or_null_responses_are_complete_success(response: Any) -> None:
    # Given an empty or null response from a successful invocation
    # When the event source mapping reads it
    outcome = batch_outcome(IDS, True, response, report_batch_item_failures=True)
    # Then every record is deleted: complete success
    assert outcome.delete == IDS
    assert outcome.failed == ()


def test_listed_records_return_and_the_others_are_deleted() -> None:
    # Given a response listing the second record
    response = {"batchItemFailures": [{"itemIdentifier": "m-2"}]}
    # When the event source mapping reads it
    outcome = batch_outcome(IDS, True, response, report_batch_item_failures=True)
    # Then that record returns to the queue and the others are deleted
    assert outcome.delete == ("m-1", "m-3")
    assert outcome.failed == ("m-2",)


@pytest.mark.parametrize(
    "response",
    [
        {"batchItemFailures": [{"itemIdentifier": "not-in-batch"}]},
        {"batchItemFailures": [{"itemIdentifier": ""}]},
        {"batchItemFailures": [{"itemIdentifier": None}]},
        {"batchItemFailures": [{"itemIdentifer": "m-1"}]},  # misspelt key
        {"batchItemFailures": [{"itemIdentifier": "m-1"}, "m-2"]},
        {"batchItemFailures": "m-1"},
        "ok",
        ["m-1"],
    ],
)
def test_a_malformed_response_fails_the_whole_batch(response: Any) -> None:
    # Given a malformed response (unknown id, empty or null id, misspelt key, wrong types)
    # When the event source mapping reads it
    outcome = batch_outcome(IDS, True, response, report_batch_item_failures=True)
    # Then the whole batch fails, and the reason says the response was invalid
    assert outcome.delete == ()
    assert outcome.failed == IDS
    assert outcome.reason.startswith("invalid partial batch response")


def test_a_function_error_fails_the_whole_batch_whatever_it_returned() -> None:
    # Given a function error, When the event source mapping reads a response
    outcome = batch_outcome(IDS, False, None, report_batch_item_failures=True)
    # Then no record is deleted, whatever the function returned
    assert (outcome.delete, outcome.failed) == ((), IDS)


def test_without_report_batch_item_failures_any_response_is_success() -> None:
    # Given a response listing a record, on a mapping without ReportBatchItemFailures
    response = {"batchItemFailures": [{"itemIdentifier": "m-2"}]}
    # When the event source mapping reads it
    outcome = batch_outcome(IDS, True, response, report_batch_item_failures=False)
    # Then every record is deleted: the response is ignored
    assert (outcome.delete, outcome.failed) == (IDS, ())
