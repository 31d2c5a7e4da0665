"""The invocation's time budget, so that a slow downstream fails records instead of the batch.

A batch that runs past the function timeout fails as a whole, successes included; stopping early
lets the records already delivered be acknowledged and the rest be rescheduled.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from consumer.errors import DeadlineExceeded

# Kept back for rescheduling the remaining records and returning the response.
RESERVE_SECONDS = 3.0
# A downstream call given less than this cannot reasonably succeed.
MIN_CALL_SECONDS = 0.5


class Deadline:
    def __init__(
        self, remaining_ms: Callable[[], int], clock: Callable[[], float] = time.monotonic
    ):
        self._remaining_ms = remaining_ms
        self._clock = clock
        self._started = clock()

    def elapsed_seconds(self) -> float:
        return self._clock() - self._started

    def remaining_seconds(self) -> float:
        return max(0.0, self._remaining_ms() / 1000)

    def call_timeout_seconds(self, configured_seconds: float) -> float:
        """The timeout to give the next downstream call, or DeadlineExceeded if none fits."""
        available = self._remaining_ms() / 1000 - RESERVE_SECONDS
        if available < MIN_CALL_SECONDS:
            raise DeadlineExceeded(
                f"only {available + RESERVE_SECONDS:.1f}s of the invocation left: "
                "not calling the downstream"
            )
        return min(configured_seconds, available)
