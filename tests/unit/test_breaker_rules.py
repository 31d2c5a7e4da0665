"""The trip and pause rules shared by the consumer and the controller (shared.breaker_policy.rules),
each condition on its own: removing any one of them from the code fails a test here."""

from __future__ import annotations

import pytest

from shared.breaker_policy.report import BreakerReport, InvalidReport
from shared.breaker_policy.rules import (
    CallOutcome,
    TripRules,
    Verdict,
    WindowCounts,
    batch_failed_whole,
)

RULES = TripRules()


@pytest.mark.parametrize(
    ("status_code", "has_retry_after", "outcome"),
    [
        (None, False, CallOutcome.NO_ANSWER),
        (500, False, CallOutcome.DOWN),
        (503, False, CallOutcome.DOWN),
        # 429 without Retry-After: overloaded with no guidance, counted as down
        (429, False, CallOutcome.DOWN),
        # Any answer with Retry-After: up, asking for a pause; never a failure
        (429, True, CallOutcome.PACED),
        (503, True, CallOutcome.PACED),
        (401, False, CallOutcome.AUTH),
        (403, False, CallOutcome.AUTH),
        # A message's own 4xx, and any other answer: the downstream is up
        (400, False, CallOutcome.NEUTRAL),
        (404, False, CallOutcome.NEUTRAL),
        (422, False, CallOutcome.NEUTRAL),
        (302, False, CallOutcome.NEUTRAL),
        (200, False, CallOutcome.NEUTRAL),
    ],
)
def test_each_answer_has_its_outcome(
    status_code: int | None, has_retry_after: bool, outcome: CallOutcome
) -> None:
    assert RULES.classify(status_code, has_retry_after=has_retry_after) is outcome


def test_the_pause_statuses_are_a_setting() -> None:
    # Given the pause statuses set to 401 only, Then 403 is a message's own answer
    rules = TripRules(pause_status_codes=frozenset({401}))
    assert rules.classify(403, has_retry_after=False) is CallOutcome.NEUTRAL
    assert rules.classify(401, has_retry_after=False) is CallOutcome.AUTH


def counts(calls: int, failures: int, whole: int, auth: int = 0) -> WindowCounts:
    return WindowCounts(
        calls=calls, down_failures=failures - auth, auth_failures=auth, whole_batch_failures=whole
    )


def test_every_condition_met_trips() -> None:
    assert RULES.verdict(counts(calls=20, failures=18, whole=3)) is Verdict.TRIP


def test_the_failure_ratio_is_a_condition() -> None:
    # Given 17 failures of 20 calls (85 %) with enough failures and whole batches
    assert RULES.verdict(counts(calls=20, failures=17, whole=3)) is Verdict.NONE


def test_the_minimum_failures_is_a_condition() -> None:
    # Given 9 failures of 9 calls (100 %) in 3 whole batches
    assert RULES.verdict(counts(calls=9, failures=9, whole=3)) is Verdict.NONE
    assert RULES.verdict(counts(calls=10, failures=10, whole=3)) is Verdict.TRIP


def test_the_whole_batch_failures_are_a_condition() -> None:
    # Given 30 failures of 30 calls but only 2 batches that failed as a whole
    assert RULES.verdict(counts(calls=30, failures=30, whole=2)) is Verdict.NONE


def test_credential_failures_pause_instead_of_tripping() -> None:
    # Given a window whose failures are mostly 401/403
    assert RULES.verdict(counts(calls=15, failures=15, whole=3, auth=15)) is Verdict.PAUSE
    assert RULES.verdict(counts(calls=15, failures=15, whole=3, auth=8)) is Verdict.PAUSE
    # ...and mostly down: a trip
    assert RULES.verdict(counts(calls=15, failures=15, whole=3, auth=7)) is Verdict.TRIP


@pytest.mark.parametrize(
    ("calls", "down", "auth", "whole"),
    [(10, 10, 0, True), (10, 4, 6, True), (10, 9, 0, False), (0, 0, 0, False), (1, 1, 0, True)],
)
def test_what_a_whole_batch_failure_is(calls: int, down: int, auth: int, whole: bool) -> None:
    # A batch failed as a whole when it made calls and every one failed (down or auth)
    assert batch_failed_whole(calls, down, auth) is whole


def test_a_report_survives_its_round_trip() -> None:
    report = BreakerReport(Verdict.PAUSE, counts(15, 15, 3, auth=15), 1_700_000_000.5, "env")
    assert BreakerReport.from_event(report.to_event()) == report


@pytest.mark.parametrize(
    "event",
    [
        {"breakerReport": {}},
        {"breakerReport": {"verdict": "trip", "calls": -1}},
        {
            "breakerReport": {
                "verdict": "trip",
                "calls": 1,
                "downFailures": 5,
                "authFailures": 0,
                "wholeBatchFailures": 1,
                "observedAt": 1.0,
            }
        },
        {"body": {}},
        ["breakerReport"],
    ],
)
def test_a_malformed_report_is_refused(event: object) -> None:
    with pytest.raises(InvalidReport):
        BreakerReport.from_event(event)
