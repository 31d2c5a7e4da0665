"""Outages and credential failures against the real breaker code, message by message: each
message's receive count and visibility as SQS keeps them, the consumer's backoff
(shared.backoff.plan_retry) and final-attempt rule, SQS's redrive after MaxReceiveCount,
each environment's CircuitBreaker and the Controller, on one simulated clock (1 s steps).

Each second, each poller the mapping allows takes up to a batch of 10 visible messages (a
receive: the count grows; past MaxReceiveCount SQS moves the message to the dead-letter queue
instead). A change of the mapping lands `actuation_s` after it is asked. The tick runs once a
minute with a probe: a health check (up when the downstream answers 2xx at that moment, auth
included) or one real message (delivered, or released with its backoff; a receive spent).

    PYTHONPATH=functions:. .venv/bin/python -m tests.support.breaker_scenarios
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from breaker_controller.controller import Controller, ControllerSettings, Memory
from breaker_controller.probe import ProbeOutcome
from consumer.breaker import BatchCalls, CircuitBreaker
from shared.backoff import BackoffPolicy, plan_retry
from shared.breaker_policy.report import BreakerReport
from shared.breaker_policy.rules import TripRules
from shared.deadline import Deadline
from shared.errors import BreakerOpen, DownstreamFailure
from shared.observability import metrics
from tests.support.poison_flood import Clock, SimulatedMapping

CONFIGURED = 10
BATCH = 10
POLICY = BackoffPolicy()  # the template's defaults: 30 s base, 60 s jitter, 10 receives


@dataclass
class Message:
    receive_count: int = 0


@dataclass
class Queue:
    """Visible messages (FIFO for simplicity) and hidden ones by the time they come back."""

    visible: list[Message] = field(default_factory=list)
    hidden: list[tuple[float, int, Message]] = field(default_factory=list)
    serial: int = 0

    def hide(self, message: Message, until: float) -> None:
        self.serial += 1
        heapq.heappush(self.hidden, (until, self.serial, message))

    def surface(self, now: float) -> None:
        while self.hidden and self.hidden[0][0] <= now:
            self.visible.append(heapq.heappop(self.hidden)[2])


@dataclass(frozen=True)
class ScenarioResult:
    sent: int
    delivered: int
    dead_lettered: int
    left: int
    transitions: int
    control_plane_requests: int
    peak_control_plane_per_s: int


class Simulation:
    def __init__(
        self,
        status_at: Callable[[float], int],
        *,
        arrivals_per_s: float,
        send_for_s: int | None,
        actuation_s: float,
        message_probe: bool,
        breaker_on: bool,
        seed: int,
    ) -> None:
        self.status_at = status_at
        self.arrivals_per_s = arrivals_per_s
        self.send_for_s = send_for_s
        self.message_probe = message_probe
        self.breaker_on = breaker_on
        self.rng = random.Random(seed)
        self.clock = Clock()
        self.start = self.clock.now
        self.mapping = SimulatedMapping(self.clock, actuation_s)
        self.queue = Queue()
        self.sent = self.delivered = self.dead_lettered = 0
        self.peak = self._requests_before = 0
        self.controller = Controller(
            ControllerSettings(
                enabled=True, configured_concurrency=CONFIGURED, retention_seconds=345_600
            ),
            self.mapping,
            visible_messages=lambda: len(self.queue.visible),
            clock=self.clock,
            memory=Memory(),
        )
        self.environments = [
            CircuitBreaker(TripRules(), self, clock=self.clock, wall_clock=self.clock)
            for _ in range(CONFIGURED)
        ]
        self.deadline = Deadline(lambda: 60_000)

    def send(self, report: BreakerReport) -> None:
        """The channel: a report reaches the controller at once."""
        if self.breaker_on:
            self.controller.on_report(report)

    def step(self, second: int) -> None:
        self.clock.now += 1
        if self.send_for_s is None or second < self.send_for_s:
            whole, fraction = divmod(self.arrivals_per_s, 1)
            for _ in range(int(whole) + (self.rng.random() < fraction)):
                self.queue.visible.append(Message())
                self.sent += 1
        self.mapping.land()
        self.queue.surface(self.clock.now)
        if second % 60 == 0 and self.breaker_on:
            self.controller.tick(self.probe)
        for breaker in self.environments[: self.mapping.pollers()]:
            if not self.queue.visible:
                break
            batch = [self.queue.visible.pop(0) for _ in range(min(BATCH, len(self.queue.visible)))]
            calls = breaker.start_batch()
            for message in batch:
                if not self.receive(message):
                    continue
                try:
                    calls.before_call(self.deadline)
                except BreakerOpen:
                    self.back_off(message)
                    continue
                self.attempt(message, calls)
            breaker.finish_batch(calls)
        self.peak = max(self.peak, self.mapping.requests - self._requests_before)
        self._requests_before = self.mapping.requests
        metrics.clear_metrics()

    def probe(self) -> ProbeOutcome:
        if not self.message_probe:
            status = self.answer()
            return ProbeOutcome(200 <= status <= 299, f"GET answered {status}")
        self.queue.surface(self.clock.now)
        if not self.queue.visible:
            return ProbeOutcome(False, "no visible message")
        message = self.queue.visible.pop(0)
        if not self.receive(message):
            return ProbeOutcome(False, "dead-lettered by SQS")
        return ProbeOutcome(self.attempt(message, None), "one message")

    def answer(self) -> int:
        return self.status_at(self.clock.now - self.start)

    def receive(self, message: Message) -> bool:
        """False when SQS moves it to the dead-letter queue instead (redrive policy)."""
        message.receive_count += 1
        if message.receive_count > POLICY.max_receive_count:
            self.dead_lettered += 1
            return False
        return True

    def attempt(self, message: Message, calls: BatchCalls | None) -> bool:
        status = self.answer()
        failure = (
            None
            if 200 <= status <= 299
            else DownstreamFailure(f"answered {status}", outcome="status", status_code=status)
        )
        if calls is not None:
            calls.after_call(failure)
        if failure is None:
            self.delivered += 1
            return True
        self.back_off(message)
        return False

    def back_off(self, message: Message) -> None:
        plan = plan_retry(message.receive_count, POLICY, self.rng)
        self.queue.hide(message, self.clock.now + plan.visibility_seconds)

    def result(self) -> ScenarioResult:
        return ScenarioResult(
            sent=self.sent,
            delivered=self.delivered,
            dead_lettered=self.dead_lettered,
            left=len(self.queue.visible) + len(self.queue.hidden),
            transitions=self.mapping.transitions,
            control_plane_requests=self.mapping.requests,
            peak_control_plane_per_s=self.peak,
        )


def run(
    status_at: Callable[[float], int],
    *,
    seconds: int,
    arrivals_per_s: float = 2.0,
    send_for_s: int | None = None,
    actuation_s: float = 30.0,
    message_probe: bool = False,
    breaker_on: bool = True,
    seed: int = 11,
) -> ScenarioResult:
    """`status_at(t)`: the downstream's answer t seconds into the run (t from 0)."""
    simulation = Simulation(
        status_at,
        arrivals_per_s=arrivals_per_s,
        send_for_s=send_for_s,
        actuation_s=actuation_s,
        message_probe=message_probe,
        breaker_on=breaker_on,
        seed=seed,
    )
    for second in range(seconds):
        simulation.step(second)
    return simulation.result()


def outage(start_s: int, length_s: int, status: int = 503) -> Callable[[float], int]:
    return lambda t: status if start_s <= t < start_s + length_s else 200


def main() -> None:
    without = run(outage(60, 1800, 401), seconds=7200, send_for_s=3600, breaker_on=False)
    print(
        f"401 for 30 min, then 200, breaker off: sent={without.sent} "
        f"delivered={without.delivered} dead_lettered={without.dead_lettered} left={without.left}"
    )
    scenarios = {
        "401 for 30 min, then 200 (health check)": (outage(60, 1800, 401), 7200, False),
        "401 for 30 min, then 200 (message probe)": (outage(60, 1800, 401), 7200, True),
        "503 for 10 min (health check)": (outage(60, 600), 3600, False),
        "503 for 10 min (message probe)": (outage(60, 600), 3600, True),
        "503 for 2 h (message probe)": (outage(60, 7200), 14400, True),
    }
    for name, (status_at, seconds, message_probe) in scenarios.items():
        for actuation_s in (0.0, 60.0):
            result = run(
                status_at,
                seconds=seconds,
                send_for_s=seconds // 2,
                actuation_s=actuation_s,
                message_probe=message_probe,
            )
            print(
                f"{name}: actuation_s={actuation_s:g} sent={result.sent} "
                f"delivered={result.delivered} dead_lettered={result.dead_lettered} "
                f"left={result.left} transitions={result.transitions} "
                f"control_plane_requests={result.control_plane_requests} "
                f"peak_per_s={result.peak_control_plane_per_s}"
            )


if __name__ == "__main__":
    main()
