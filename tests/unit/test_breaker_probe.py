"""The scheduled probe closing a quiet half-open breaker, on a fake wall clock, a fake mapping and
a fake source queue: it closes when the queue is empty (nothing visible, in flight or delayed)
and the mapping has been half-open for close_after_s, and otherwise leaves it half-open. The
same against moto: tests/integration/test_circuit_breaker.py."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

import pytest

from consumer.breaker import BreakerPolicy, MappingView
from consumer.breaker_probe import probe
from consumer.deadline import Deadline
from consumer.downstream import DownstreamClient, ProbeResult
from consumer.errors import MappingUnavailable, QueueUnavailable
from consumer.observability import metrics
from consumer.sqs_actions import QueueCounts

CONFIGURED = 10
NOW = 1_800_000_000.0
CLOSE_AFTER_S = BreakerPolicy().close_after_s


class FakeMapping:
    """The event source mapping as GetEventSourceMapping would show it, and every change."""

    def __init__(
        self,
        concurrency: int = 3,
        state: str = "Enabled",
        last_modified: float | None = NOW - CLOSE_AFTER_S,
    ) -> None:
        self.state = state
        self.concurrency = concurrency
        self.last_modified = last_modified
        self.changes: list[tuple[int, bool]] = []
        self.fail_updates = False

    def read(self) -> MappingView | None:
        return MappingView("mapping-1", self.state, self.concurrency, 10, self.last_modified)

    def disable(self, uuid: str) -> None:
        raise AssertionError("the probe never disables the mapping")

    def set_concurrency(self, uuid: str, maximum_concurrency: int, *, enable: bool) -> None:
        assert uuid == "mapping-1"
        if self.fail_updates:
            raise MappingUnavailable("UpdateEventSourceMapping failed: TooManyRequestsException")
        self.concurrency = maximum_concurrency
        if enable:
            self.state = "Enabled"
        self.changes.append((maximum_concurrency, enable))


class FakeQueue:
    """The source queue's GetQueueAttributes counts, and how often they were asked."""

    def __init__(self, visible: int = 0, not_visible: int = 0, delayed: int = 0) -> None:
        self.counts = QueueCounts(visible=visible, not_visible=not_visible, delayed=delayed)
        self.reads = 0
        self.fail = False

    def __call__(self) -> QueueCounts:
        self.reads += 1
        if self.fail:
            raise QueueUnavailable("GetQueueAttributes refused (AccessDenied): not allowed")
        return self.counts


class FakeDownstream:
    """The downstream's probe, up; the calls asked of it."""

    def __init__(self) -> None:
        self.probes = 0

    def probe(self, probe_url: str | None, deadline: Deadline) -> ProbeResult:
        self.probes += 1
        return ProbeResult(up=True, detail="HEAD https://downstream.example/messages answered 200")


def run_probe(
    mapping: FakeMapping, queue: FakeQueue, now: float = NOW, downstream: Any = None
) -> dict[str, Any]:
    return probe(
        mapping,
        CONFIGURED,
        cast("DownstreamClient", downstream or FakeDownstream()),
        None,
        Deadline(lambda: 60_000),
        queue_counts=queue,
        clock=lambda: now,
    )


def metric(name: str) -> list[float]:
    entry = metrics.metric_set.get(name)
    return [] if entry is None else list(entry["Value"])


@pytest.fixture(autouse=True)
def no_metrics_left_behind() -> Iterator[None]:
    metrics.clear_metrics()
    yield
    metrics.clear_metrics()


def test_it_closes_a_half_open_mapping_whose_queue_is_empty_after_close_after_s() -> None:
    # Given a mapping half-open (3 pollers) since exactly close_after_s ago, and an empty queue
    mapping, queue = FakeMapping(), FakeQueue()
    # When the probe runs
    report = run_probe(mapping, queue)
    # Then it restored the configured concurrency without touching the mapping's state
    assert mapping.changes == [(CONFIGURED, False)]
    assert report == {"breaker": "closed", "maximumConcurrency": CONFIGURED}
    # ...with the transition's metric, and the state's gauge says closed
    assert metric("BreakerClosed") == [1.0]
    assert metric("BreakerState") == [0.0]


@pytest.mark.parametrize(
    ("counts", "shown"),
    [
        ({"visible": 1}, "1 visible, 0 in flight, 0 delayed"),
        # Messages waiting out a backoff are in flight: they come back.
        ({"not_visible": 4}, "0 visible, 4 in flight, 0 delayed"),
        ({"delayed": 2}, "0 visible, 0 in flight, 2 delayed"),
    ],
)
def test_messages_visible_in_flight_or_delayed_keep_it_half_open(
    counts: dict[str, int], shown: str
) -> None:
    # Given a mapping half-open long enough, and a queue still holding messages
    mapping, queue = FakeMapping(last_modified=NOW - 3600), FakeQueue(**counts)
    # When the probe runs, Then the mapping is left half-open, saying why
    report = run_probe(mapping, queue)
    assert mapping.changes == []
    assert report == {"breaker": "half-open", "quiet": f"source queue: {shown}"}
    assert metric("BreakerClosed") == []
    assert metric("BreakerState") == [1.0]


def test_it_does_not_close_before_close_after_s() -> None:
    # Given an empty queue and a mapping that changed less than close_after_s ago
    mapping, queue = FakeMapping(last_modified=NOW - CLOSE_AFTER_S + 1), FakeQueue()
    # When the probe runs, Then it stays half-open, and the queue is not even asked
    report = run_probe(mapping, queue)
    assert mapping.changes == []
    assert report == {"breaker": "half-open", "quiet": "half-open for 59s of 60s"}
    assert queue.reads == 0
    # When the probe runs again once close_after_s has passed, Then it closes
    assert run_probe(mapping, queue, now=NOW + 1)["breaker"] == "closed"
    assert mapping.changes == [(CONFIGURED, False)]


def test_without_last_modified_it_stays_half_open() -> None:
    mapping, queue = FakeMapping(last_modified=None), FakeQueue()
    report = run_probe(mapping, queue)
    assert (report["breaker"], mapping.changes, queue.reads) == ("half-open", [], 0)


def test_an_unreadable_queue_leaves_it_half_open() -> None:
    # Given a half-open mapping long enough, and a queue whose counts cannot be read
    mapping, queue = FakeMapping(), FakeQueue()
    queue.fail = True
    # When the probe runs, Then nothing changes and the error is reported, not raised
    report = run_probe(mapping, queue)
    assert mapping.changes == []
    assert report["breaker"] == "half-open"
    assert "AccessDenied" in report["error"]
    assert metric("BreakerState") == [1.0]


def test_a_refused_update_leaves_it_half_open() -> None:
    mapping, queue = FakeMapping(), FakeQueue()
    mapping.fail_updates = True
    report = run_probe(mapping, queue)
    assert (report["breaker"], mapping.concurrency) == ("half-open", 3)
    assert "TooManyRequestsException" in report["error"]
    assert metric("BreakerClosed") == []
    assert metric("BreakerState") == [1.0]


def test_a_closed_mapping_is_only_reported() -> None:
    mapping, queue = FakeMapping(concurrency=CONFIGURED), FakeQueue()
    assert run_probe(mapping, queue) == {"breaker": "closed"}
    assert (mapping.changes, queue.reads) == ([], 0)


def test_the_probe_that_half_opens_does_not_close_in_the_same_run() -> None:
    # Given an open mapping disabled long ago, an empty queue and a downstream that is back
    mapping = FakeMapping(concurrency=CONFIGURED, state="Disabled", last_modified=NOW - 3600)
    queue, downstream = FakeQueue(), FakeDownstream()
    # When the probe runs, Then it half-opens the mapping, and goes no further
    report = run_probe(mapping, queue, downstream=downstream)
    assert report["breaker"] == "half-open"
    assert mapping.changes == [(3, True)]
    assert (downstream.probes, queue.reads) == (1, 0)
