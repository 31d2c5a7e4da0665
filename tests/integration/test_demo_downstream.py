"""The demo downstream's failure plan: the outage counts from the first delivery."""

from __future__ import annotations

import urllib.error
import urllib.request

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


def test_a_head_probe_is_down_during_the_outage_only_and_is_not_a_delivery() -> None:
    def head(url: str) -> int:
        try:
            with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=5):
                return 200
        except urllib.error.HTTPError as error:
            return error.code

    # Given a downstream with an outage far longer than the test
    downstream = DemoDownstream(FailurePlan(outage_seconds=3600))
    with downstream.serving():
        # When probed before any delivery, Then it is up: the outage has not begun
        before = head(downstream.url)
        # When a delivery has started the outage, Then the probe finds it down (503)
        downstream.answer("a", "{}")
        during = head(downstream.url)

    # ...and the probes are recorded apart from the deliveries
    assert (before, during) == (200, 503)
    assert [status for _, status in downstream.probes()] == [200, 503]
    assert [call.idempotency_key for call in downstream.calls()] == ["a"]
