"""A poison flood against the real breaker code: the consumer environments' CircuitBreaker and
the Controller, on one simulated clock, with a downstream that is up (its health check answers
200) while a share of the messages is answered 500 for ever.

Each second, each poller the mapping allows (its MaximumConcurrency; none while disabled) takes
a batch of 10 messages; each message is poison with the given probability. A report reaches
the controller at once; a change of the mapping lands `actuation_s` later (AWS does not
document how long a disable takes to stop the pollers). The tick runs once a minute.

What it measures over the run: transitions per hour, the share of the time the mapping held
good messages back (disabled, or half-open below the configured concurrency), and the longest
stretch without a receive (how long a good message waits beyond its own backoff).

    .venv/bin/python -m tests.support.poison_flood [poison share] [hours]
"""

from __future__ import annotations

import random
import sys
from dataclasses import dataclass

from breaker_controller.controller import Controller, ControllerSettings, Memory
from breaker_controller.mapping import MappingView
from breaker_controller.probe import ProbeOutcome
from consumer.breaker import CircuitBreaker
from shared.breaker_policy.rules import TripRules
from shared.breaker_policy.timing import ControllerPolicy
from shared.deadline import Deadline
from shared.errors import BreakerOpen, DownstreamFailure
from shared.observability import metrics

CONFIGURED = 10
BATCH = 10


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class SimulatedMapping:
    """The mapping as the controller sees it; a change lands actuation_s after it is asked."""

    def __init__(self, clock: Clock, actuation_s: float) -> None:
        self.clock = clock
        self.actuation_s = actuation_s
        self.enabled, self.concurrency = True, CONFIGURED
        self.pending: tuple[float, bool, int] | None = None
        self.last_modified = clock.now
        self.requests = 0
        self.transitions = 0

    def land(self) -> None:
        if self.pending is not None and self.clock.now >= self.pending[0]:
            _, self.enabled, self.concurrency = self.pending
            self.pending = None
            # "the date that the event source mapping was last updated or that its state
            # changed": the landing moves it too.
            self.last_modified = self.clock.now

    def pollers(self) -> int:
        return self.concurrency if self.enabled else 0

    def _view(self) -> MappingView:
        if self.pending is not None:
            state = "Enabling" if self.pending[1] else "Disabling"
            concurrency = self.pending[2]
        else:
            state, concurrency = ("Enabled" if self.enabled else "Disabled"), self.concurrency
        return MappingView("uuid", state, concurrency, self.last_modified)

    def read(self) -> MappingView:
        self.requests += 1
        return self._view()

    def _change(self, enabled: bool, concurrency: int) -> MappingView:
        self.requests += 1
        self.transitions += 1
        self.last_modified = self.clock.now
        self.pending = (self.clock.now + self.actuation_s, enabled, concurrency)
        return self._view()

    def disable(self) -> MappingView:
        return self._change(False, self.concurrency)

    def enable(self, maximum_concurrency: int) -> MappingView:
        return self._change(True, maximum_concurrency)


@dataclass(frozen=True)
class FloodResult:
    hours: float
    transitions_per_hour: float
    held_back_share: float
    longest_without_receive_s: float
    control_plane_requests_per_hour: float


def simulate(
    poison_share: float = 0.95,
    hours: float = 1.0,
    actuation_s: float = 30.0,
    seed: int = 7,
    policy: ControllerPolicy | None = None,
) -> FloodResult:
    rng = random.Random(seed)
    clock = Clock()
    mapping = SimulatedMapping(clock, actuation_s)
    controller = Controller(
        ControllerSettings(
            enabled=True,
            configured_concurrency=CONFIGURED,
            retention_seconds=345_600,
            policy=policy or ControllerPolicy(),
        ),
        mapping,
        visible_messages=lambda: 1000,
        clock=clock,
        memory=Memory(),
    )

    class Direct:
        def send(self, report: object) -> None:
            controller.on_report(report)  # type: ignore[arg-type]

    environments = [
        CircuitBreaker(TripRules(), Direct(), clock=clock, wall_clock=clock)
        for _ in range(CONFIGURED)
    ]
    deadline = Deadline(lambda: 60_000)
    up = ProbeOutcome(True, "GET /health answered 200")
    held_back = 0
    without_receive = longest = 0.0
    seconds = int(hours * 3600)
    for second in range(seconds):
        clock.now += 1
        mapping.land()
        if second % 60 == 0:
            controller.tick(lambda: up)
        pollers = mapping.pollers()
        held_back += pollers < CONFIGURED
        without_receive = 0.0 if pollers else without_receive + 1
        longest = max(longest, without_receive)
        for breaker in environments[:pollers]:
            calls = breaker.start_batch()
            for _ in range(BATCH):
                try:
                    calls.before_call(deadline)
                except BreakerOpen:
                    continue
                poison = rng.random() < poison_share
                calls.after_call(
                    DownstreamFailure("answered 500", outcome="status", status_code=500)
                    if poison
                    else None
                )
            breaker.finish_batch(calls)
        metrics.clear_metrics()
    return FloodResult(
        hours=hours,
        transitions_per_hour=mapping.transitions / hours,
        held_back_share=held_back / seconds,
        longest_without_receive_s=longest,
        control_plane_requests_per_hour=mapping.requests / hours,
    )


def main(argv: list[str]) -> None:
    share = float(argv[1]) if len(argv) > 1 else 0.95
    hours = float(argv[2]) if len(argv) > 2 else 6.0
    for actuation_s in (0.0, 30.0, 60.0):
        result = simulate(share, hours, actuation_s)
        print(
            f"poison={share:.0%} actuation_s={actuation_s:g} hours={hours:g} "
            f"transitions_per_hour={result.transitions_per_hour:.1f} "
            f"held_back={result.held_back_share:.1%} "
            f"longest_without_receive_s={result.longest_without_receive_s:.0f} "
            f"control_plane_requests_per_hour={result.control_plane_requests_per_hour:.0f}"
        )


if __name__ == "__main__":
    main(sys.argv)
