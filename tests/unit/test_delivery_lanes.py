"""A batch's units of work in lanes: the calling thread alone while it keeps going, more lanes,
never more than asked, once a call keeps it waiting."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

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


def test_units_that_finish_at_once_stay_on_the_calling_thread_in_order() -> None:
    # Given units whose work returns at once, and four lanes
    in_flight = InFlight()

    def work(unit: int) -> int:
        with in_flight:
            return unit * 10

    # When they are run in lanes
    with ThreadPoolExecutor(4) as pool:
        results = in_lanes(list(range(20)), work, pool, lanes=4)

    # Then the calling thread did them all, one at a time, and the results keep the units' order
    assert results == [unit * 10 for unit in range(20)]
    assert in_flight.threads == {threading.get_ident()}
    assert in_flight.most == 1


def test_a_unit_that_waits_opens_the_other_lanes_and_no_more() -> None:
    # Given units that each wait until four are in flight at once (a slow downstream), and four
    # lanes
    in_flight = InFlight()
    together = threading.Barrier(4, timeout=30)

    def work(unit: int) -> int:
        with in_flight:
            together.wait()
            return unit

    # When eight units are run in lanes
    with ThreadPoolExecutor(4) as pool:
        results = in_lanes(list(range(8)), work, pool, lanes=4)

    # Then four ran at once (or the barrier would have broken), never five, all in order
    assert results == list(range(8))
    assert in_flight.most == 4
    assert threading.get_ident() in in_flight.threads
