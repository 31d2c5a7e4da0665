"""The discrete-event core both backoff models run on: a clock and a time-ordered event heap.

An event is a handler and one argument, run when the clock reaches its time; handlers schedule
further events. Events at the same time run in the order they were scheduled, so a run is a pure
function of the models' seeded random sources.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable
from typing import Any

type Handler = Callable[[Any], None]
type Progress = Callable[[float], None]

# How often run() looks at the wall clock: often enough for a progress line every few seconds,
# rarely enough to cost nothing next to the events themselves.
_PROGRESS_CHECK_EVENTS = 1 << 16


class Simulation:
    def __init__(self) -> None:
        self.now = 0.0
        self.events = 0
        self._heap: list[tuple[float, int, Handler, Any]] = []
        self._sequence = 0

    def schedule(self, at: float, handler: Handler, argument: Any = None) -> None:
        # Written so that NaN fails too: it would silently break the heap's order.
        if not at >= self.now:
            raise ValueError(f"cannot schedule at {at} before now ({self.now})")
        self._sequence += 1
        heapq.heappush(self._heap, (at, self._sequence, handler, argument))

    def run(self, progress: Progress | None = None, progress_every_s: float = 10.0) -> float:
        """Run events until none is left; returns the time of the last one.

        `progress` is called with the simulated time every `progress_every_s` of wall time.
        """
        heap = self._heap
        pop = heapq.heappop
        next_report = time.monotonic() + progress_every_s
        while heap:
            at, _, handler, argument = pop(heap)
            self.now = at
            handler(argument)
            self.events += 1
            if (
                progress is not None
                and not self.events % _PROGRESS_CHECK_EVENTS
                and time.monotonic() >= next_report
            ):
                progress(self.now)
                next_report = time.monotonic() + progress_every_s
        return self.now
