"""What the event source mapping deletes after a batch, by Lambda's documented rules."""

from __future__ import annotations

from typing import Any

import pytest

from local.batch_response import batch_outcome

IDS = ("m-1", "m-2", "m-3")


@pytest.mark.parametrize(
    "response", [None, {}, {"batchItemFailures": []}, {"batchItemFailures": None}]
)
def test_empty_or_null_responses_are_complete_success(response: Any) -> None:
    outcome = batch_outcome(IDS, True, response, report_batch_item_failures=True)
    assert outcome.delete == IDS
    assert outcome.failed == ()


def test_listed_records_return_and_the_others_are_deleted() -> None:
    response = {"batchItemFailures": [{"itemIdentifier": "m-2"}]}
    outcome = batch_outcome(IDS, True, response, report_batch_item_failures=True)
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
    outcome = batch_outcome(IDS, True, response, report_batch_item_failures=True)
    assert outcome.delete == ()
    assert outcome.failed == IDS
    assert outcome.reason.startswith("invalid partial batch response")


def test_a_function_error_fails_the_whole_batch_whatever_it_returned() -> None:
    outcome = batch_outcome(IDS, False, None, report_batch_item_failures=True)
    assert (outcome.delete, outcome.failed) == ((), IDS)


def test_without_report_batch_item_failures_any_response_is_success() -> None:
    response = {"batchItemFailures": [{"itemIdentifier": "m-2"}]}
    outcome = batch_outcome(IDS, True, response, report_batch_item_failures=False)
    assert (outcome.delete, outcome.failed) == (IDS, ())
