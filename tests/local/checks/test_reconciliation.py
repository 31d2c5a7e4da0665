"""Reconciling what was sent with what the downstream saw and what the DLQ holds."""

from __future__ import annotations

from local.checks.reconciliation import (
    REDRIVEN,
    DeadLetter,
    dead_letter_reasons,
    out_of_group_order,
    reconcile,
)
from local.downstream.demo_downstream import Call


def call(key: str, status: int, attempt: int = 1) -> Call:
    return Call(key, "{}", attempt, status, received_at=float(attempt), reason="test")


def test_every_message_is_delivered_dead_lettered_or_lost() -> None:
    # Given a delivery after a retry, a redriven message, a poison copy and a vanished message
    calls = [call("a", 503), call("a", 200, 2), call("b", 503), call("b", 503, 2)]
    dead_letters = [DeadLetter("b"), DeadLetter("new-id", source_message_id="c")]

    # When they are reconciled
    result = reconcile(["a", "b", "c", "d"], calls, dead_letters)

    # Then each message has its fate, and the summary line counts them
    assert result.delivered == {"a"}
    assert result.dead_lettered == {"b", "c"}
    assert result.lost == ("d",)
    assert result.unfinished == ()
    assert result.duplicates == 0
    assert result.downstream_calls == 4
    assert result.summary(12.34, control_plane_calls=7) == (
        "summary: sent=4 delivered=1 dead_lettered=2 lost=1 unfinished=0 duplicates=0 "
        "downstream_calls=4 control_plane_calls=7 elapsed_s=12.3"
    )
    # and, given the messages' own time (first send to last invocation), their pace
    assert result.summary(12.34, moving_seconds=2.0).endswith(
        " elapsed_s=12.3 moving_s=2.0 msg_per_s=2.0"
    )


def test_a_message_still_on_the_source_queue_is_unfinished_not_lost() -> None:
    # Given one message waiting out a backoff, one that vanished, one delivered but whose
    # delete failed (so it is still on the queue too)
    calls = [call("waiting", 503), call("delivered", 200)]

    # When the run ends with two of them still on the source queue
    result = reconcile(
        ["waiting", "gone", "delivered"], calls, [], on_source_queue={"waiting", "delivered"}
    )

    # Then only the vanished one is lost; the delivered one is done, not unfinished
    assert result.unfinished == ("waiting",)
    assert result.lost == ("gone",)
    assert result.delivered == {"delivered"}
    assert "lost=1 unfinished=1 " in result.summary(1.0)


def test_second_successes_are_duplicates_and_strangers_are_ignored() -> None:
    # Given a message delivered twice, and a call and a dead letter for messages never sent
    calls = [call("a", 200), call("a", 201, 2), call("x", 200)]
    # When they are reconciled
    result = reconcile(["a"], calls, [DeadLetter("y")])
    # Then the second success is a duplicate and the strangers count for nothing
    assert result.delivered == {"a"}
    assert result.duplicates == 1
    assert result.dead_lettered == frozenset()
    assert result.lost == ()


def test_a_message_both_delivered_and_dead_lettered_is_reported() -> None:
    # Given a message both delivered and dead-lettered, When reconciled, Then it is reported
    result = reconcile(["a"], [call("a", 200)], [DeadLetter("a")])
    assert result.delivered_and_dead_lettered == {"a"}


def call_at(key: str, status: int, at: float) -> Call:
    return Call(key, "{}", 1, status, received_at=at, reason="test")


def test_a_fifo_group_delivered_in_send_order_has_no_violation() -> None:
    # Given two groups whose messages succeeded in send order, one after a failure and a retry
    sent = [("a1", "A"), ("b1", "B"), ("a2", "A"), ("b2", "B")]
    calls = [
        call_at("a1", 503, 1.0),
        call_at("b1", 200, 1.1),
        call_at("a1", 200, 5.0),
        call_at("a2", 200, 6.0),
    ]
    calls.append(call_at("b2", 200, 1.2))
    # When the order is checked, Then nothing is out of order
    assert out_of_group_order(sent, calls) == ()


def test_a_message_delivered_before_an_earlier_one_of_its_group_is_named() -> None:
    # Given a group whose second message succeeded before its first
    sent = [("a1", "A"), ("a2", "A"), ("b1", "B")]
    calls = [call_at("a2", 200, 2.0), call_at("a1", 200, 3.0), call_at("b1", 200, 1.0)]
    # When the order is checked, Then the message delivered ahead of its turn is named
    assert out_of_group_order(sent, calls) == ("a2",)


def test_dead_lettered_messages_do_not_hold_their_group_back() -> None:
    # Given a group whose first message never succeeded (dead-lettered) and whose second did
    sent = [("a1", "A"), ("a2", "A")]
    calls = [call_at("a1", 503, 1.0), call_at("a2", 200, 2.0)]
    # When the order is checked, Then the group is in order
    assert out_of_group_order(sent, calls) == ()


def test_with_a_downstream_unseen_the_function_s_reports_tell_what_was_delivered() -> None:
    # Given the user's own downstream (no call seen): "a" reported done twice, the poison "p"
    # reported done after its DLQ copy was accepted, "w" still on the queue, "x" gone
    dead_letters = [DeadLetter("copy-of-p", source_message_id="p")]

    # When they are reconciled from the function's reports
    result = reconcile(
        ["a", "p", "w", "x"], [], dead_letters, on_source_queue=["w"], acknowledged=["a", "p", "a"]
    )

    # Then a report is a delivery unless the message is in the DLQ
    assert result.delivered == {"a"}
    assert result.dead_lettered == {"p"}
    assert result.unfinished == ("w",)
    assert result.lost == ("x",)
    assert result.duplicates == 1


def test_dead_letters_are_worded_by_what_happened() -> None:
    # Given a message SQS moved after MaxReceiveCount, two poison copies, a non-retryable
    # answer, one redriven while up and dead-lettered again (its latest reason counts), and a
    # dead letter of a message never sent
    dead_letters = [
        DeadLetter("a"),
        DeadLetter("copy-b", source_message_id="b", reason="invalid-json"),
        DeadLetter("copy-c", source_message_id="c", reason="invalid-json"),
        DeadLetter("copy-d", source_message_id="d", reason="non-retryable-status"),
        DeadLetter("e", reason=REDRIVEN),
        DeadLetter("copy-e", source_message_id="e", reason="invalid-json"),
        DeadLetter("stranger"),
    ]
    # When they are described
    words = dead_letter_reasons(dead_letters, {"a", "b", "c", "d", "e"})
    # Then each message counts once, under what happened to it, the most common first; no
    # poison message is said to have failed a downstream call
    assert words == (
        "3 not JSON (never sent downstream), 1 after MaxReceiveCount receives, "
        "1 answered a non-retryable status"
    )
    assert dead_letter_reasons([], {"a"}) == ""
