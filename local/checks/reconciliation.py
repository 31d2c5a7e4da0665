"""Every message sent is delivered (the downstream answered 2xx), in the dead-letter queue, or
still on the source queue (unfinished); anything else is lost.

Redriven messages keep their message id in the dead-letter queue; messages the function sends
there itself (poison, non-retryable) are new messages naming the original in SourceMessageId.
Lost means lost: acknowledged without a successful delivery and without a DLQ copy, or gone
from every queue. A message still on the source queue when the run ends (visible, or hidden
by a backoff or an invocation) is not lost but unfinished: the run ended before its story did.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from local.downstream.demo_downstream import Call

# Why a message is on the dead-letter queue, as a reader of the reconciliation says it: the
# consumer's own copies carry DeadLetterReason; a message SQS moved by the redrive policy
# carries none (it was received MaxReceiveCount times without being deleted).
MOVED_BY_SQS = "moved-by-sqs"
REDRIVEN = "redriven"
REASON_WORDS = {
    MOVED_BY_SQS: "after MaxReceiveCount receives",
    "max-receive-count": "after MaxReceiveCount receives",
    "invalid-json": "not JSON (never sent downstream)",
    "non-retryable-status": "answered a non-retryable status",
    "would-expire": "next attempt after the queue's retention",
    REDRIVEN: "redriven while up",
}


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    source_message_id: str | None = None
    # The consumer copy's DeadLetterReason, MOVED_BY_SQS, or REDRIVEN (left the DLQ while up).
    reason: str = MOVED_BY_SQS

    @property
    def original_id(self) -> str:
        return self.source_message_id or self.message_id


def dead_letter_reasons(dead_letters: Iterable[DeadLetter], sent: Collection[str]) -> str:
    """How the run's dead letters got there, in words, the most common first: `1 after
    MaxReceiveCount receives, 2 not JSON (never sent downstream)`. One entry per message sent
    (a message redriven and dead-lettered again counts once, for its latest reason)."""
    latest: dict[str, str] = {}
    for letter in dead_letters:
        if letter.original_id in sent:
            latest[letter.original_id] = letter.reason
    counts = Counter(REASON_WORDS.get(reason, reason) for reason in latest.values())
    return ", ".join(f"{count} {words}" for words, count in counts.most_common())


@dataclass(frozen=True)
class Reconciliation:
    sent: tuple[str, ...]
    delivered: frozenset[str]
    dead_lettered: frozenset[str]
    lost: tuple[str, ...]
    # Neither delivered nor dead-lettered, but still on the source queue.
    unfinished: tuple[str, ...]
    # 2xx answers beyond the first for one message: what the downstream's idempotency absorbs.
    duplicates: int
    downstream_calls: int
    # Messages that got a 2xx and are in the dead-letter queue as well.
    delivered_and_dead_lettered: frozenset[str]

    def summary(
        self, elapsed_seconds: float, moving_seconds: float = 0.0, control_plane_calls: int = 0
    ) -> str:
        """The run's counts and times; with `moving_seconds` (from the first send to the end of
        the last invocation), also the messages moved a second in that time.
        `control_plane_calls`: the account's requests to Lambda's control plane in the run."""
        line = (
            f"summary: sent={len(self.sent)} delivered={len(self.delivered)} "
            f"dead_lettered={len(self.dead_lettered)} lost={len(self.lost)} "
            f"unfinished={len(self.unfinished)} duplicates={self.duplicates} "
            f"downstream_calls={self.downstream_calls} "
            f"control_plane_calls={control_plane_calls} elapsed_s={elapsed_seconds:.1f}"
        )
        if moving_seconds > 0:
            line += (
                f" moving_s={moving_seconds:.1f} msg_per_s={len(self.sent) / moving_seconds:.1f}"
            )
        return line


def reconcile(
    sent_ids: Sequence[str],
    calls: Iterable[Call],
    dead_letters: Iterable[DeadLetter],
    on_source_queue: Collection[str] = (),
    acknowledged: Iterable[str] | None = None,
) -> Reconciliation:
    """`on_source_queue`: ids of the messages still on the source queue when the run ended.

    `acknowledged`: with a downstream whose answers the run cannot see (the user's own), the
    ids the function reported done, once per report. A message reported done and not in the
    dead-letter queue was then delivered: the function reports a message done only after a
    2xx or after its DLQ copy was accepted.
    """
    sent = set(sent_ids)
    calls = list(calls)
    dead_lettered = frozenset(d.original_id for d in dead_letters if d.original_id in sent)
    if acknowledged is None:
        successes = Counter(
            call.idempotency_key
            for call in calls
            if 200 <= call.status <= 299 and call.idempotency_key
        )
    else:
        successes = Counter(m for m in acknowledged if m not in dead_lettered)
    delivered = frozenset(key for key in successes if key in sent)
    open_ = [m for m in sent_ids if m not in delivered and m not in dead_lettered]
    return Reconciliation(
        sent=tuple(sent_ids),
        delivered=delivered,
        dead_lettered=dead_lettered,
        lost=tuple(m for m in open_ if m not in on_source_queue),
        unfinished=tuple(m for m in open_ if m in on_source_queue),
        duplicates=sum(count - 1 for key, count in successes.items() if key in sent),
        downstream_calls=len(calls),
        delivered_and_dead_lettered=delivered & dead_lettered,
    )


def out_of_group_order(sent: Sequence[tuple[str, str]], calls: Iterable[Call]) -> tuple[str, ...]:
    """The delivered messages of a FIFO run whose first 2xx came before an earlier message of
    their group (in send order) had its own: `sent` is (message id, group) in send order."""
    first_success: dict[str, float] = {}
    for call in calls:
        if 200 <= call.status <= 299 and call.idempotency_key:
            key = call.idempotency_key
            first_success[key] = min(first_success.get(key, call.received_at), call.received_at)
    latest: dict[str, float] = {}
    violations: list[str] = []
    for message_id, group in sent:
        delivered_at = first_success.get(message_id)
        if delivered_at is None:
            continue
        if delivered_at < latest.get(group, float("-inf")):
            violations.append(message_id)
        latest[group] = max(latest.get(group, float("-inf")), delivered_at)
    return tuple(violations)
