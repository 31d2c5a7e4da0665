"""Live progress of a local run: one line, rewritten in place on a terminal, appended otherwise."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TextIO


@dataclass(frozen=True)
class Snapshot:
    elapsed_seconds: float
    sent: int
    delivered: int
    # Received and inside an invocation right now.
    processing: int
    # Hidden on the source queue but in no invocation: waiting out a backoff.
    waiting_backoff: int
    visible: int
    # Messages on the dead-letter queue (its depth: visible and in flight).
    dead_lettered: int
    downstream_by_status: Mapping[int, int]
    # Hidden on the source queue: in an invocation or waiting out a backoff.
    in_flight: int = 0
    # False with the user's own downstream, whose answers the local system does not see.
    downstream_observed: bool = True
    # The event source mapping as the pollers follow it ("off", "on x3"); empty: not followed.
    mapping: str = ""

    def render(self) -> str:
        statuses = " ".join(f"{s}={n}" for s, n in sorted(self.downstream_by_status.items()))
        return (
            f"[{self.elapsed_seconds:5.1f}s] sent={self.sent} delivered={self.delivered} "
            f"processing={self.processing} waiting_backoff={self.waiting_backoff} "
            f"| {self.queues()} | downstream {self._downstream(statuses)}"
            + (f" | mapping: {self.mapping}" if self.mapping else "")
        )

    def _downstream(self, statuses: str) -> str:
        if not self.downstream_observed:
            return "yours (its answers not seen here)"
        # The demo downstream counts a call when it answers: calls in flight are not in it yet.
        return statuses or "no answers yet"

    def queues(self) -> str:
        """The queues' state as SQS counts it (ApproximateNumberOfMessages and
        ApproximateNumberOfMessagesNotVisible of the source queue, the DLQ's depth)."""
        return f"queue visible={self.visible} in_flight={self.in_flight} dlq={self.dead_lettered}"

    def _comparable(self) -> tuple[object, ...]:
        return (
            self.sent,
            self.delivered,
            self.processing,
            self.waiting_backoff,
            self.visible,
            self.dead_lettered,
            self.in_flight,
            tuple(sorted(self.downstream_by_status.items())),
            self.mapping,
        )


class ProgressDisplay:
    def __init__(self, out: TextIO, quiet_seconds: float = 5.0) -> None:
        self.out = out
        self.interactive = out.isatty()
        self.quiet_seconds = quiet_seconds
        self._last: Snapshot | None = None
        self._last_printed_at = 0.0

    def show(self, snapshot: Snapshot) -> None:
        if self.interactive:
            self.out.write("\r\033[K" + snapshot.render())
            self.out.flush()
            self._last = snapshot
            return
        # Appended lines: one per change, or a heartbeat while nothing changes.
        changed = self._last is None or snapshot._comparable() != self._last._comparable()
        if changed or time.monotonic() - self._last_printed_at >= self.quiet_seconds:
            print(snapshot.render(), file=self.out, flush=True)
            self._last_printed_at = time.monotonic()
        self._last = snapshot

    def note(self, line: str) -> None:
        """A line of its own (an event), above the rewritten progress line on a terminal."""
        if self.interactive:
            self.out.write("\r\033[K" + line + "\n")
            if self._last is not None:
                self.out.write(self._last.render())
            self.out.flush()
            return
        print(line, file=self.out, flush=True)

    def finish(self) -> None:
        if self.interactive and self._last is not None:
            self.out.write("\n")
            self.out.flush()
