"""The invocation's time budget, so that a slow downstream fails records instead of the batch.

A batch that runs past the function timeout fails as a whole, successes included, and its
failures get no backoff; stopping early lets the records already delivered be acknowledged and
the rest be rescheduled. What must be kept back for that grows with the batch: every record not
yet settled may need its visibility changed (ChangeMessageVisibilityBatch, 10 a call) and its
log line written before the response, so the reserve is computed from the work still to do.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from shared.errors import DeadlineExceeded

# Kept back at least, whatever the batch: one visibility call with the SQS client's 3 s read
# timeout, and the response.
RESERVE_SECONDS = 3.0
# A downstream call given less than this cannot reasonably succeed.
MIN_CALL_SECONDS = 0.5
# ChangeMessageVisibilityBatch takes at most 10 entries.
ENTRIES_PER_VISIBILITY_CALL = 10
# One round of concurrent ChangeMessageVisibilityBatch calls: in-Region SQS answers in tens of
# milliseconds; 0.1 s leaves room for a slow answer in every round.
VISIBILITY_ROUND_SECONDS = 0.1
# One failed record's log line and metrics. At 256 MB a function gets about a seventh of a
# vCPU: a Powertools log line that takes ~70 us of a full core takes ~0.5 ms there; a batch of
# 10,000 failures measured ~0.75 ms a record on a loaded machine (make bench-big-batch), so
# 1 ms, to return with a margin.
REPORT_SECONDS_PER_RECORD = 0.001
# The response, the metrics' flush and the runtime's own work after the handler returns.
RESPONSE_SECONDS = 1.0


@dataclass(frozen=True)
class WrapUp:
    """What settling a batch's unsettled records costs once the deliveries stop: their
    visibility changes, `parallel_calls` ChangeMessageVisibilityBatch calls at a time, their
    log lines, and the response."""

    parallel_calls: int

    def seconds(self, unsettled_records: int) -> float:
        calls = math.ceil(unsettled_records / ENTRIES_PER_VISIBILITY_CALL)
        rounds = math.ceil(calls / max(1, self.parallel_calls))
        return (
            RESPONSE_SECONDS
            + rounds * VISIBILITY_ROUND_SECONDS
            + unsettled_records * REPORT_SECONDS_PER_RECORD
        )


class Deadline:
    def __init__(
        self, remaining_ms: Callable[[], int], clock: Callable[[], float] = time.monotonic
    ):
        self._remaining_ms = remaining_ms
        self._clock = clock
        self._started = clock()
        self._work_left: Callable[[], float] = lambda: 0.0

    def elapsed_seconds(self) -> float:
        return self._clock() - self._started

    def remaining_seconds(self) -> float:
        return max(0.0, self._remaining_ms() / 1000)

    def keep_back_for(self, work_left_seconds: Callable[[], float]) -> None:
        """Keep back, from now on, what the caller will need after its last downstream call
        (asked afresh each time: it shrinks as records are settled)."""
        self._work_left = work_left_seconds

    def reserve_seconds(self) -> float:
        return max(RESERVE_SECONDS, self._work_left())

    def call_timeout_seconds(self, configured_seconds: float) -> float:
        """The timeout to give the next downstream call, or DeadlineExceeded if none fits."""
        reserve = self.reserve_seconds()
        remaining = self._remaining_ms() / 1000
        available = remaining - reserve
        if available < MIN_CALL_SECONDS:
            raise DeadlineExceeded(
                f"only {remaining:.1f}s of the invocation left, {reserve:.1f}s of it kept "
                "back to settle the batch: not calling the downstream"
            )
        return min(configured_seconds, available)

    def check_time_for_a_call(self) -> None:
        """Raise DeadlineExceeded unless a call (to the downstream or to SQS) still fits."""
        self.call_timeout_seconds(MIN_CALL_SECONDS)
