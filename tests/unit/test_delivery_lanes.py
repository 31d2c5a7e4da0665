"""A batch's units of work on the delivery threads, or on the calling thread alone while the
downstream answers fast: the pace learnt from one batch sets where the next one starts."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from consumer.delivery import HAND_OFF_SECONDS, DownstreamPace
from consumer.sqs_batch import in_lanes


class InFlight:
    """Counts the units running at once, and which threads ran them."""

    def __init__(self) -> None:
        self.now = 0
        self.most = 0
        self.threads: set[int] = set()
        self._lock = threading.Lock()

    def __enter__(self) -> None:
        with self._lock:
            self.now += 1
            self.most = max(self.most, self.now)
            self.threads.add(threading.get_ident())

    def __exit__(self, *_: object) -> None:
        with self._lock:
            self.now -= 1


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(4) as executor:
        yield executor


def test_a_fresh_environment_overlaps_its_first_batch(pool: ThreadPoolExecutor) -> None:
    # Given units that each take two hand-off times and wait until four are in flight at once
    in_flight = InFlight()
    together = threading.Barrier(4, timeout=30)

    def work(unit: int) -> int:
        with in_flight:
            time.sleep(2 * HAND_OFF_SECONDS)
            together.wait()
            return unit

    # When a fresh environment's first batch of eight runs
    pace = DownstreamPace()
    results = in_lanes(list(range(8)), work, pool, threads=4, pace=pace)

    # Then four ran at once (or the barrier would have broken), in the units' order, and the
    # pace stays slow: they took their time
    assert results == list(range(8))
    assert in_flight.most == 4
    assert pace.fast is False


def test_a_batch_that_waited_on_nothing_makes_the_pace_fast(pool: ThreadPoolExecutor) -> None:
    # Given a fresh environment's pace, and units that return at once
    def work(unit: int) -> int:
        return unit

    # When a batch of them runs on the threads
    pace = DownstreamPace()
    in_lanes(list(range(40)), work, pool, threads=4, pace=pace)

    # Then the pace is fast: the batch spent under 5 ms a round on anything but CPU
    assert pace.fast is True


def test_after_fast_calls_a_batch_stays_on_the_calling_thread(pool: ThreadPoolExecutor) -> None:
    # Given a fast downstream so far, and units that return at once
    pace = DownstreamPace(fast=True)
    in_flight = InFlight()

    def work(unit: int) -> int:
        with in_flight:
            return unit * 10

    # When a batch runs
    results = in_lanes(list(range(20)), work, pool, threads=4, pace=pace)

    # Then the calling thread did it all, one unit at a time, in order, and the pace stays fast
    assert results == [unit * 10 for unit in range(20)]
    assert in_flight.threads == {threading.get_ident()}
    assert in_flight.most == 1
    assert pace.fast is True


def test_a_slow_unit_hands_the_rest_of_the_batch_to_the_threads(pool: ThreadPoolExecutor) -> None:
    # Given a fast downstream so far, and then units that each take four hand-off times and
    # wait until three of them are in flight at once
    pace = DownstreamPace(fast=True)
    in_flight = InFlight()
    together = threading.Barrier(3, timeout=30)

    def slow(unit: int) -> int:
        with in_flight:
            time.sleep(4 * HAND_OFF_SECONDS)
            if unit > 0:
                together.wait()
            return unit

    # When a batch of seven runs
    results = in_lanes(list(range(7)), slow, pool, threads=4, pace=pace)

    # Then the first went alone on the calling thread, the six after it three at a time on the
    # threads (or the barrier would have broken), in order, and the next batch starts there too
    assert results == list(range(7))
    assert in_flight.most >= 3
    assert pace.fast is False
