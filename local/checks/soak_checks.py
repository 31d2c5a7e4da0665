"""What a soak run must show: nothing lost, nothing unfinished, every duplicate explained (by an
injected fault, or by a timeout the run saw: a downstream call that outlived its timeout, an
invocation that outlived its message's visibility), every gap between two receives of a
message within its strategy's bounds.

Pure functions of what the run recorded: the downstream's calls, the mapping's receives, the
faults injected and the visibility changes the emulator accepted. All times are the runner's
monotonic clock.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from local.checks.reconciliation import Reconciliation
from local.downstream.demo_downstream import Call
from local.downstream.faults import (
    DELETE_FAILED,
    DUPLICATING_FAULTS,
    InjectedFault,
    VisibilityChange,
)
from local.lambda_service.event_source_mapping import Receive
from shared.backoff import BackoffPolicy, delay_range_seconds

# A change is recorded at its request's arrival, before SQS counted from it, and a receive when
# its answer is back, after it happened: a receive before the recorded end is early. Where no
# change went through, the queue's own timeout counts from the emulator's hand-out. The
# emulator's SQS counts on the same monotonic clock as the runner (local.aws.emulator's steady
# clock), so this much only allows for a request's own time; it once had to be 1.5 s on the
# queue's timeout, when moto counted on the wall clock and a step of it showed as a batch back
# exactly 1.0 s early (docs/soak.md).
EARLY_TOLERANCE_SECONDS = 0.1
# Around the moment a message becomes visible again: the queue's counts are sampled from
# another thread, a request's time apart.
SAMPLE_TOLERANCE_SECONDS = 1.5


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str

    def render(self) -> str:
        return f"{'PASS' if self.passed else 'FAIL'}  {self.name}: {self.detail}"


def _two_xx(call: Call) -> bool:
    return 200 <= call.status <= 299


def _duplicating_fault_times(
    faults: Iterable[InjectedFault], receives: Sequence[Receive]
) -> dict[str, list[float]]:
    """Message id -> when a fault that can duplicate it was injected."""
    message_of_receipt = {r.receipt_handle: r.message_id for r in receives}
    fault_times: dict[str, list[float]] = defaultdict(list)
    for fault in faults:
        if fault.kind not in DUPLICATING_FAULTS:
            continue
        message_id = fault.message_id
        if fault.kind == DELETE_FAILED and fault.receipt_handle is not None:
            message_id = message_of_receipt.get(fault.receipt_handle)
        if message_id is not None:
            fault_times[message_id].append(fault.at)
    return fault_times


# Why a duplicate happened, as the run saw it.
BY_FAULT = "an injected fault"
BY_TIMEOUT = "a downstream call that outlived its timeout"
BY_OVERLAP = "an invocation that outlived its message's visibility"


@dataclass(frozen=True)
class DuplicateReport:
    # Explained duplicates, by what explains them.
    explained: dict[str, int]
    unexplained: list[str]


def unexplained_duplicates(
    calls: Iterable[Call],
    faults: Iterable[InjectedFault],
    receives: Iterable[Receive],
    dead_lettered: Iterable[str] = (),
    *,
    finished_at: Mapping[str, float] | None = None,
    timeouts: Collection[tuple[str, int]] = (),
) -> list[str]:
    """Messages delivered again (or dead-lettered) after a 2xx that nothing the run saw
    explains: see `duplicate_report`."""
    return duplicate_report(
        calls, faults, receives, dead_lettered, finished_at=finished_at, timeouts=timeouts
    ).unexplained


def duplicate_report(
    calls: Iterable[Call],
    faults: Iterable[InjectedFault],
    receives: Iterable[Receive],
    dead_lettered: Iterable[str] = (),
    *,
    finished_at: Mapping[str, float] | None = None,
    timeouts: Collection[tuple[str, int]] = (),
) -> DuplicateReport:
    """Every delivery after a 2xx (and every dead letter after one), explained or not.

    A 2xx that is followed by another delivery of the message was not acknowledged. The run
    can see three reasons, checked in this order:

    - an injected fault that keeps a success from being acknowledged, between the two
      (DUPLICATING_FAULTS: the answer after the read timeout, a kill, a refused delete);
    - a downstream call that outlived its timeout: the function reported a timeout for that
      message at the receive that carried the 2xx (`timeouts`: (message id, receive count)),
      as a loaded machine produces without any injected fault;
    - an invocation that outlived its message's visibility: the message was received again
      while the invocation that carried the 2xx still ran (`finished_at`: receipt handle ->
      when the mapping was done with that delivery), so two invocations held it at once.

    Anything else is a defect.
    """
    receives = list(receives)
    receives_of: dict[str, list[Receive]] = defaultdict(list)
    for receive in receives:
        receives_of[receive.message_id].append(receive)
    fault_times = _duplicating_fault_times(faults, receives)
    successes: dict[str, list[float]] = defaultdict(list)
    for call in calls:
        if _two_xx(call) and call.idempotency_key:
            successes[call.idempotency_key].append(call.received_at)
    done_at = finished_at or {}
    explained: dict[str, int] = defaultdict(int)
    unexplained: list[str] = []

    def carriers(message_id: str, at: float) -> list[Receive]:
        """The deliveries of the message whose invocation may have made the call at `at`."""
        return [
            r
            for r in receives_of.get(message_id, [])
            if r.at <= at <= done_at.get(r.receipt_handle, math.inf)
        ]

    def why(message_id: str, start: float, end: float) -> str | None:
        if any(start - 1.0 <= at <= end for at in fault_times.get(message_id, [])):
            return BY_FAULT
        carried = carriers(message_id, start)
        if any((message_id, r.receive_count) in timeouts for r in carried):
            return BY_TIMEOUT
        for r in carried:
            ends = done_at.get(r.receipt_handle)
            if ends is not None and any(
                r.at < other.at < ends for other in receives_of[message_id] if other is not r
            ):
                return BY_OVERLAP
        return None

    for message_id, times in successes.items():
        for earlier, later in itertools.pairwise(sorted(times)):
            reason = why(message_id, earlier, later)
            if reason is None:
                unexplained.append(f"{message_id} delivered again at +{later - earlier:.1f}s")
            else:
                explained[reason] += 1
    for message_id in dead_lettered:
        times = sorted(successes.get(message_id, []))
        if not times:
            continue
        reason = why(message_id, times[0], math.inf)
        if reason is None:
            unexplained.append(f"{message_id} delivered and dead-lettered")
        else:
            explained[reason] += 1
    return DuplicateReport(dict(explained), unexplained)


@dataclass(frozen=True)
class GapReport:
    gaps_checked: int
    delays_checked: int
    violations: list[str]
    # The latest a receive came after its message became visible again (a backlog of visible
    # messages, all pollers busy).
    max_late_seconds: float


def receive_gap_violations(
    receives: Sequence[Receive],
    changes: Sequence[VisibilityChange],
    policy: BackoffPolicy,
    queue_visibility_timeout_seconds: float,
    *,
    retry_after_seconds: float = 0.0,
    queue_samples: Sequence[tuple[float, int]] = (),
    received_at: Mapping[str, float] | None = None,
) -> GapReport:
    """Check every visibility the function set against its strategy's bounds, and every gap
    between two receives of a message against that visibility (or, where no change went
    through, after a crash or a refused change, against the queue's own visibility timeout).

    A receive must not come before the message became visible again. How long after is up to
    the pollers (SQS hands out visible messages in no promised order, and a backlog waits), so
    the upper bound is what can be observed: once visible, the message stays visible until it
    is received, so the queue never shows zero visible messages in between (`queue_samples`).
    """
    change_of = {c.receipt_handle: c for c in changes}
    receive_of = {r.receipt_handle: r for r in receives}
    violations: list[str] = []
    for change in changes:
        received = receive_of.get(change.receipt_handle)
        if received is None:
            continue
        problem = _delay_problem(change.timeout_seconds, received.receive_count, policy,
                                 retry_after_seconds)  # fmt: skip
        if problem:
            violations.append(f"{received.message_id}: {problem}")
    by_message: dict[str, list[Receive]] = defaultdict(list)
    for receive in receives:
        by_message[receive.message_id].append(receive)
    gaps = 0
    max_late = 0.0
    for message_id, message_receives in by_message.items():
        for earlier, later in itertools.pairwise(sorted(message_receives, key=lambda r: r.at)):
            changed = change_of.get(earlier.receipt_handle)
            if changed is not None:
                visible_at, why = changed.at + changed.timeout_seconds, "its backoff"
            else:
                # From when SQS handed the message out (`received_at`, by receipt handle),
                # which the poller's record of the receive follows by its answer's way back.
                handed_out = (received_at or {}).get(earlier.receipt_handle, earlier.at)
                visible_at = handed_out + queue_visibility_timeout_seconds
                why = "the queue's visibility timeout (no change went through)"
            gaps += 1
            late = later.at - visible_at
            max_late = max(max_late, late)
            hidden_at = _empty_between(
                queue_samples,
                visible_at + SAMPLE_TOLERANCE_SECONDS,
                later.at - SAMPLE_TOLERANCE_SECONDS,
            )
            if late < -EARLY_TOLERANCE_SECONDS or hidden_at is not None:
                still_hidden = (
                    f", and the queue had no visible message {hidden_at - visible_at:.1f}s "
                    "after it should have become visible"
                    if hidden_at is not None
                    else ""
                )
                violations.append(
                    f"{message_id}: receive {later.receive_count} came "
                    f"{later.at - earlier.at:.1f}s after receive {earlier.receive_count}, "
                    f"{late:+.1f}s from the end of {why}{still_hidden}"
                )
    return GapReport(gaps, len(changes), violations, max_late)


def _empty_between(samples: Sequence[tuple[float, int]], start: float, end: float) -> float | None:
    """When the queue showed no visible message between `start` and `end`, if it did."""
    for at, visible in samples:
        if start < at < end and visible == 0:
            return at
    return None


def _delay_problem(
    timeout_seconds: int, receive_count: int, policy: BackoffPolicy, retry_after_seconds: float
) -> str | None:
    if receive_count >= policy.max_receive_count:
        if timeout_seconds != 0:
            return f"final attempt {receive_count} got visibility {timeout_seconds}s, not 0"
        return None
    low, high = delay_range_seconds(receive_count, policy)
    high = max(high, int(retry_after_seconds))
    if not low <= timeout_seconds <= high:
        return (
            f"after receive {receive_count} visibility {timeout_seconds}s is outside {low}..{high}s"
        )
    return None


def soak_checks(
    reconciliation: Reconciliation,
    calls: Sequence[Call],
    faults: Sequence[InjectedFault],
    gaps: GapReport,
    receives: Sequence[Receive],
    *,
    finished_at: Mapping[str, float] | None = None,
    timeouts: Collection[tuple[str, int]] = (),
) -> list[Check]:
    rec = reconciliation
    settled = len(rec.delivered | rec.dead_lettered)
    report = duplicate_report(
        calls, faults, receives, rec.dead_lettered, finished_at=finished_at, timeouts=timeouts
    )
    duplicates = report.unexplained
    shown = "; ".join(duplicates[:5])
    explained = ", ".join(
        f"{report.explained.get(reason, 0)} by {reason}"
        for reason in (BY_FAULT, BY_TIMEOUT, BY_OVERLAP)
    )
    return [
        Check("nothing lost", not rec.lost, f"lost={len(rec.lost)}"),
        Check("nothing unfinished", not rec.unfinished, f"unfinished={len(rec.unfinished)}"),
        Check(
            "every message delivered or dead-lettered",
            settled == len(rec.sent),
            f"{settled} of {len(rec.sent)}",
        ),
        Check(
            "every duplicate explained by a fault or a timeout the run saw",
            not duplicates,
            f"duplicates={rec.duplicates}, unexplained={len(duplicates)}; explained: {explained}"
            + (f" (unexplained: {shown})" if shown else ""),
        ),
        Check(
            "receive gaps within the strategy's bounds",
            gaps.gaps_checked > 0 and not gaps.violations,
            f"{gaps.gaps_checked} gaps and {gaps.delays_checked} visibility changes checked, "
            f"{len(gaps.violations)} outside; the latest receive came "
            f"{gaps.max_late_seconds:.1f}s after its message became visible (a backlog)"
            + (f" ({'; '.join(gaps.violations[:5])})" if gaps.violations else ""),
        ),
    ]
