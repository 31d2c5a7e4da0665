"""The demo downstream's failure plan: the outage counts from the first delivery."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from local.downstream import demo_downstream
from local.downstream.demo_downstream import DemoDownstream, FailurePlan


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


def get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return error.code


def test_the_health_path_is_down_during_the_outage_and_up_with_a_2xx_after() -> None:
    # Given a downstream with an outage far longer than the test (the run's BreakerProbeUrl is
    # its health path)
    downstream = DemoDownstream(FailurePlan(outage_seconds=3600))
    with downstream.serving():
        assert downstream.probe_url.endswith("/health")
        # When the breaker's probe GETs it before and during the outage
        before = get(downstream.probe_url)
        downstream.answer("a", "{}")
        during = get(downstream.probe_url)
        # and some other path is asked for
        elsewhere = get(downstream.probe_url.replace("/health", "/nothing-here"))
    # Then it is up (2xx) before, down (503) during, and not a delivery
    assert (before, during) == (200, 503)
    assert [status for _, status in downstream.probes()] == [200, 503]
    assert elsewhere == 404
    assert [call.idempotency_key for call in downstream.calls()] == ["a"]


def test_a_probe_fault_answers_the_health_path_404_whatever_the_outage() -> None:
    # Given --probe-fault 404: a downstream that is up (no outage) but whose probe URL is wrong
    downstream = DemoDownstream(FailurePlan(outage_seconds=0), probe_fault_status=404)
    with downstream.serving():
        # When the probe GETs it, and a delivery is made
        probed = get(downstream.probe_url)
        delivered = downstream.answer("a", "{}")
    # Then the probe reads 404 while deliveries succeed: the fault is the probe's alone
    assert probed == 404
    assert delivered.status == 200
