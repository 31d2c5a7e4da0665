"""The breaker's story as the mapping tells it: every change of the deployed mapping's state,
read as the circuit breaker's transitions (the breaker's state is the mapping's: see
docs/reference.md, "The circuit breaker in production"): disabled = open, enabled below its
configured MaximumConcurrency = half-open, enabled at it = closed."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Literal

from local.lambda_service.event_source_mapping import MappingState

Breaker = Literal["closed", "half-open", "open"]


def breaker_of(state: MappingState, configured_concurrency: int) -> Breaker:
    if not state.polling:
        return "open"
    return "half-open" if state.maximum_concurrency < configured_concurrency else "closed"


@dataclass(frozen=True)
class Transition:
    # Seconds since the run started.
    at: float
    before: Breaker
    after: Breaker
    state: MappingState

    def render(self) -> str:
        why = (
            "mapping disabled"
            if self.after == "open"
            else f"mapping enabled x{self.state.maximum_concurrency}"
            if self.before == "open"
            else f"MaximumConcurrency {self.state.maximum_concurrency}"
        )
        return f"breaker: {self.after} at {self.at:.0f} s ({why})"


class MappingTimeline:
    """Fed by the MappingWatcher's changes (on its thread); read by the progress loop."""

    def __init__(self, initial: MappingState, configured_concurrency: int, started: float) -> None:
        self.configured_concurrency = configured_concurrency
        self.started = started
        self._lock = threading.Lock()
        self._states: list[tuple[float, MappingState]] = [(started, initial)]
        self._transitions: list[Transition] = []

    def on_change(self, old: MappingState, new: MappingState, now: float) -> None:
        with self._lock:
            self._states.append((now, new))
            before = breaker_of(old, self.configured_concurrency)
            after = breaker_of(new, self.configured_concurrency)
            if before != after:
                self._transitions.append(Transition(now - self.started, before, after, new))

    @property
    def breaker(self) -> Breaker:
        return breaker_of(self.current, self.configured_concurrency)

    @property
    def current(self) -> MappingState:
        with self._lock:
            return self._states[-1][1]

    def states(self) -> list[tuple[float, MappingState]]:
        """(monotonic seconds, state) from the start, each change as the watcher saw it."""
        with self._lock:
            return list(self._states)

    def transitions(self) -> list[Transition]:
        with self._lock:
            return list(self._transitions)

    def seconds_in(self, breaker: Breaker, until: float) -> float:
        """How long the breaker was in `breaker` between the start and `until`."""
        with self._lock:
            states = list(self._states)
        total = 0.0
        for (at, state), (next_at, _) in zip(
            states, [*states[1:], (until, states[-1][1])], strict=True
        ):
            if breaker_of(state, self.configured_concurrency) == breaker:
                total += max(0.0, min(next_at, until) - at)
        return total
