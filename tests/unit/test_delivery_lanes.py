"""A batch's units of work on the delivery threads, or one after another on the calling thread
while the downstream makes its records wait on next to nothing: what one batch shows sets where
the next one starts.

The pace's limits are set wide or narrow here, so that what a test shows does not hang on how
loaded the machine is; the defaults are reasoned in consumer/delivery.py."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from consumer.delivery import DownstreamPace
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


def units(count: int) -> list[list[int]]:
    return [[n] for n in range(count)]


def test_a_fresh_environment_overlaps_its_first_batch(pool: ThreadPoolExecutor) -> None:
    # Given units that each wait 10 ms and then until four are in flight at once
    in_flight = InFlight()
    together = threading.Barrier(4, timeout=30)

    def work(unit: list[int]) -> int:
        with in_flight:
            time.sleep(0.01)
            together.wait()
            return unit[0]

    # When a fresh environment's first batch of eight runs
    pace = DownstreamPace()
    results = in_lanes(units(8), work, pool, threads=4, pace=pace)

    # Then four ran at once (or the barrier would have broken), in the units' order, and the
    # next batch stays on the threads: each round waited more than 5 ms
    assert results == list(range(8))
    assert in_flight.most == 4
    assert pace.one_thread is False


def test_a_batch_that_waited_on_nothing_sends_the_next_to_the_calling_thread(
    pool: ThreadPoolExecutor,
) -> None:
    # Given a fresh environment, and units that return at once
    def work(unit: list[int]) -> int:
        return unit[0]

    # When a batch of them runs on the threads
    pace = DownstreamPace(round_wait_seconds=10.0)
    in_lanes(units(40), work, pool, threads=4, pace=pace)

    # Then the next batch tries the calling thread
    assert pace.one_thread is True


def test_after_a_hand_off_the_batches_stay_on_the_threads_for_a_while(
    pool: ThreadPoolExecutor,
) -> None:
    # Given an environment whose records waited too long on the calling thread an hour ago
    pace = DownstreamPace(round_wait_seconds=10.0, threads_until=time.monotonic() + 3600)

    # When a batch that waits on nothing runs on the threads
    in_lanes(units(40), lambda unit: unit[0], pool, threads=4, pace=pace)

    # Then the next one stays there too: the while is not over
    assert pace.one_thread is False


def test_records_that_wait_within_the_allowance_stay_on_the_calling_thread(
    pool: ThreadPoolExecutor,
) -> None:
    # Given a batch on the calling thread whose allowance is a second, and units that wait 2 ms
    pace = DownstreamPace(one_thread=True, wait_allowance_seconds=1.0)
    in_flight = InFlight()

    def work(unit: list[int]) -> int:
        with in_flight:
            time.sleep(0.002)
            return unit[0] * 10

    # When a batch of twenty runs
    results = in_lanes(units(20), work, pool, threads=4, pace=pace)

    # Then the calling thread did it all, one unit at a time, in order, and the next batch
    # starts there too
    assert results == [n * 10 for n in range(20)]
    assert in_flight.threads == {threading.get_ident()}
    assert in_flight.most == 1
    assert pace.one_thread is True


def test_records_that_wait_past_the_allowance_hand_the_rest_to_the_threads(
    pool: ThreadPoolExecutor,
) -> None:
    # Given a batch on the calling thread allowed no wait beyond 1 ms a record, and units that
    # each wait 10 ms and then, after the first, until three of them are in flight at once
    pace = DownstreamPace(
        one_thread=True, wait_allowance_seconds=0.0, wait_per_record_seconds=0.001
    )
    in_flight = InFlight()
    together = threading.Barrier(3, timeout=30)

    def slow(unit: list[int]) -> int:
        with in_flight:
            time.sleep(0.01)
            if unit[0] > 0:
                together.wait()
            return unit[0]

    # When a batch of seven runs
    before = time.monotonic()
    results = in_lanes(units(7), slow, pool, threads=4, pace=pace)

    # Then the first went alone on the calling thread, the six after it three at a time on the
    # threads (or the barrier would have broken), in order, and the batches stay on the threads
    # for the pace's while
    assert results == list(range(7))
    assert in_flight.most >= 3
    assert pace.one_thread is False
    assert pace.threads_until >= before + pace.retry_one_thread_seconds


def test_the_wait_counts_records_not_units(pool: ThreadPoolExecutor) -> None:
    # Given a batch on the calling thread allowed 50 ms a record and nothing more, and one unit
    # of ten records (a FIFO group) that waits 100 ms in all
    pace = DownstreamPace(one_thread=True, wait_allowance_seconds=0.0, wait_per_record_seconds=0.05)

    def group(unit: list[int]) -> int:
        time.sleep(0.1)
        return len(unit)

    # When it runs
    results = in_lanes([list(range(10))], group, pool, threads=4, pace=pace)

    # Then its 10 ms a record is within the allowance of 50 (a unit's 100 ms would not be):
    # the next batch starts there too
    assert results == [10]
    assert pace.one_thread is True
