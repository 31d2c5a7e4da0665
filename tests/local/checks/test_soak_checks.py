"""The soak's judgement: duplicates explained by injected faults, receive gaps within bounds."""

from __future__ import annotations

from local.checks.soak_checks import (
    BY_OVERLAP,
    BY_TIMEOUT,
    duplicate_report,
    receive_gap_violations,
    unexplained_duplicates,
)
from local.downstream.demo_downstream import Call
from local.downstream.faults import (
    DELETE_FAILED,
    KILLED_MID_BATCH,
    READ_TIMEOUT,
    SERVER_ERROR,
    InjectedFault,
    VisibilityChange,
)
from local.lambda_service.event_source_mapping import Receive
from shared.backoff import BackoffPolicy

POLICY = BackoffPolicy(base_seconds=1, jitter_seconds=3, max_receive_count=4)


def ok(key: str, at: float) -> Call:
    return Call(key, "{}", 1, 200, received_at=at, reason="ok")


def test_a_second_delivery_after_a_read_timeout_or_a_kill_is_explained() -> None:
    # Given messages delivered twice, after a read timeout and after a mid-batch kill
    calls = [ok("a", 10.0), ok("a", 40.0), ok("b", 10.0), ok("b", 400.0)]
    faults = [
        InjectedFault(READ_TIMEOUT, 10.0, message_id="a"),
        InjectedFault(KILLED_MID_BATCH, 10.5, message_id="b"),
    ]
    # When the duplicates are judged, Then each is explained
    assert unexplained_duplicates(calls, faults, []) == []


def test_a_failed_delete_explains_through_the_receipt_handle_it_named() -> None:
    # Given a message delivered twice after a failed delete of its receipt handle
    receives = [Receive("a", "receipt-1", 1, 9.0)]
    faults = [InjectedFault(DELETE_FAILED, 11.0, receipt_handle="receipt-1")]
    # When the duplicates are judged, Then it is explained
    assert unexplained_duplicates([ok("a", 10.0), ok("a", 380.0)], faults, receives) == []


def test_a_duplicate_without_a_fault_that_could_cause_it_is_reported() -> None:
    # Given a 5xx (which cannot hide a success) and a kill that came after the repeat
    calls = [ok("a", 10.0), ok("a", 40.0)]
    faults = [
        InjectedFault(SERVER_ERROR, 20.0, message_id="a"),
        InjectedFault(KILLED_MID_BATCH, 50.0, message_id="a"),
    ]
    # When the duplicates are judged
    [report] = unexplained_duplicates(calls, faults, [])
    # Then the repeat is reported
    assert report.startswith("a delivered again")


def test_a_message_delivered_and_dead_lettered_needs_an_explanation_too() -> None:
    # Given a message delivered and dead-lettered without a fault, When judged, Then it is reported
    assert unexplained_duplicates([ok("a", 10.0)], [], [], dead_lettered=["a"]) == [
        "a delivered and dead-lettered"
    ]


def test_a_timeout_the_function_reported_explains_the_next_delivery() -> None:
    # Given a message whose first delivery the downstream answered 2xx (no fault injected) but
    # the function gave up on at receive 1 (a loaded machine), and a second receive
    receives = [Receive("a", "r1", 1, 9.0), Receive("a", "r2", 2, 14.0)]
    calls = [ok("a", 10.0), ok("a", 15.0)]
    finished = {"r1": 11.5, "r2": 15.5}

    # When the duplicates are judged with the function's timeouts
    report = duplicate_report(calls, [], receives, finished_at=finished, timeouts={("a", 1)})

    # Then the repeat is explained by that timeout; and without it, it is reported
    assert (report.unexplained, report.explained) == ([], {BY_TIMEOUT: 1})
    timeout_at_another_receive = {("a", 2)}
    assert unexplained_duplicates(
        calls, [], receives, finished_at=finished, timeouts=timeout_at_another_receive
    ) == ["a delivered again at +5.0s"]


def test_an_invocation_that_outlived_the_visibility_explains_the_repeat() -> None:
    # Given a message received again at 70 s while the invocation of its first receive (at
    # 9 s, 60 s of visibility) was still running until 72 s: two invocations held it
    receives = [Receive("a", "r1", 1, 9.0), Receive("a", "r2", 2, 70.0)]
    calls = [ok("a", 10.0), ok("a", 70.5)]

    # When the duplicates are judged
    overlapping = duplicate_report(calls, [], receives, finished_at={"r1": 72.0, "r2": 71.0})
    # Then the repeat is explained by the overlap; had the first invocation ended at 12 s, not
    overlapping_not = duplicate_report(calls, [], receives, finished_at={"r1": 12.0, "r2": 71.0})
    assert (overlapping.unexplained, overlapping.explained) == ([], {BY_OVERLAP: 1})
    assert overlapping_not.unexplained == ["a delivered again at +60.5s"]


def test_a_dead_letter_after_a_timed_out_success_is_explained() -> None:
    # Given a final attempt whose 2xx the function gave up on: the next receive dead-letters it
    receives = [Receive("a", "r4", 4, 9.0)]
    report = duplicate_report(
        [ok("a", 10.0)], [], receives, ["a"], finished_at={"r4": 11.0}, timeouts={("a", 4)}
    )
    # Then it is explained by the timeout
    assert (report.unexplained, report.explained) == ([], {BY_TIMEOUT: 1})


def test_gaps_follow_the_backoff_set_or_the_queues_visibility_timeout() -> None:
    # Given a message whose first failure set a 4 s backoff (delay(1) is 3..5 s), and whose
    # second receive got no visibility change (a crash): 60 s of queue visibility
    receives = [
        Receive("a", "r1", 1, 100.0),
        Receive("a", "r2", 2, 105.5),
        Receive("a", "r3", 3, 166.0),
    ]
    changes = [VisibilityChange("r1", 4, 101.0)]

    # When the receive gaps are checked
    report = receive_gap_violations(receives, changes, POLICY, 60)

    # Then both gaps are within bounds, and the one backoff set was checked against the strategy
    assert report.violations == []
    assert report.gaps_checked == 2
    assert report.delays_checked == 1


def test_a_receive_before_its_backoff_ended_or_a_delay_outside_the_strategy_is_reported() -> None:
    # Given a message received again 1 s after a 4 s backoff was set
    receives = [Receive("a", "r1", 1, 100.0), Receive("a", "r2", 2, 102.0)]
    # When the gaps are checked, Then the early receive is reported
    early = receive_gap_violations(receives, [VisibilityChange("r1", 4, 101.0)], POLICY, 60)
    assert len(early.violations) == 1
    assert "from the end of its backoff" in early.violations[0]

    # ...and a backoff of 30 s, outside delay(1)'s 3..5 s, is reported too
    too_long = receive_gap_violations(receives[:1], [VisibilityChange("r1", 30, 101.0)], POLICY, 60)
    assert too_long.violations == ["a: after receive 1 visibility 30s is outside 3..5s"]


def test_retry_after_raises_the_upper_bound_and_the_final_attempt_must_be_zero() -> None:
    # Given a Retry-After of 8 s, a first backoff of 8 s and a final attempt given 5 s
    receives = [Receive("a", "r1", 1, 100.0), Receive("b", "r4", 4, 200.0)]
    changes = [VisibilityChange("r1", 8, 101.0), VisibilityChange("r4", 5, 201.0)]
    # When the visibility changes are checked
    report = receive_gap_violations(receives, changes, POLICY, 60, retry_after_seconds=8)
    # Then only the final attempt is reported: it must leave the visibility at 0
    assert report.violations == ["b: final attempt 4 got visibility 5s, not 0"]


def test_a_receive_late_behind_a_backlog_passes_but_one_kept_hidden_does_not() -> None:
    # Given a message that became visible at 105 s and was received at 150 s
    receives = [Receive("a", "r1", 1, 100.0), Receive("a", "r2", 2, 150.0)]
    changes = [VisibilityChange("r1", 4, 101.0)]

    # When the queue showed visible messages all along (a backlog), the late receive is fine
    backlog = [(t, 50) for t in range(100, 151)]
    report = receive_gap_violations(receives, changes, POLICY, 60, queue_samples=backlog)
    # Then it passes, and its lateness is measured
    assert report.violations == []
    assert report.max_late_seconds == 45.0

    # But if the queue showed no visible message meanwhile, the message was still hidden
    hidden = [*backlog[:20], (120.0, 0), *backlog[21:]]
    [violation] = receive_gap_violations(
        receives, changes, POLICY, 60, queue_samples=hidden
    ).violations
    assert "no visible message 15.0s after it should have become visible" in violation


def test_the_queues_timeout_counts_from_when_sqs_handed_the_message_out() -> None:
    # Given a receive recorded at 100.0 s whose answer took 2 s to reach the poller (SQS handed
    # the message out at 98.0 s), no change after it, and the next receive at 158.2 s
    receives = [Receive("a", "r1", 1, 100.0), Receive("a", "r2", 2, 158.2)]

    # When the gap is judged against a 60 s visibility timeout from each moment
    handed_out = receive_gap_violations(receives, [], POLICY, 60, received_at={"r1": 98.0})
    recorded = receive_gap_violations(receives, [], POLICY, 60)

    # Then it is in bounds from the hand-out, and early from the poller's own record
    assert handed_out.violations == []
    assert len(recorded.violations) == 1


def test_a_batch_back_a_second_before_the_queues_timeout_is_early() -> None:
    # Given a message handed out at 98.0 s with no change after it, and received again at
    # 157.0 s: a second before the queue's 60 s timeout ended (what moto's wall clock, stepped
    # by a second, once produced)
    receives = [Receive("a", "r1", 1, 100.0), Receive("a", "r2", 2, 157.0)]

    # When the gap is judged
    [violation] = receive_gap_violations(
        receives, [], POLICY, 60, received_at={"r1": 98.0}
    ).violations

    # Then it is early, as a backoff honoured early would be
    assert "-1.0s from the end of the queue's visibility timeout" in violation
