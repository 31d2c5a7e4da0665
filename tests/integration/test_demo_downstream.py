"""The demo downstream's failure plan: the outage counts from the first delivery."""

from __future__ import annotations

import pytest

from local import demo_downstream
from local.demo_downstream import DemoDownstream, FailurePlan


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_outage_counts_from_the_first_request_not_from_the_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a downstream with a 3 s outage, started long before the first message arrives
    clock = Clock()
    monkeypatch.setattr(f"{demo_downstream.__name__}.time.monotonic", clock)
    downstream = DemoDownstream(FailurePlan(outage_seconds=3))
    try:
        with downstream.serving():
            clock.now += 30  # a slow deploy, a cold start, a long send

            # When the first requests arrive, and more after the outage
            first = downstream.answer("a", "{}")
            clock.now += 2.9
            within = downstream.answer("b", "{}")
            clock.now += 0.2
            after = downstream.answer("c", "{}")
    finally:
        monkeypatch.undo()

    # Then the outage still fails the first 3 s of deliveries, and only those
    assert (first.status, within.status, after.status) == (503, 503, 200)
    assert [call.reason for call in downstream.calls()] == ["outage", "outage", "ok"]
