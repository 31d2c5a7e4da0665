"""The simulator core: time order, ties in scheduling order, no scheduling into the past."""

from __future__ import annotations

import pytest

from benchmarks.des import Simulation


def test_events_run_in_time_order_and_ties_in_the_order_they_were_scheduled() -> None:
    # Given events scheduled out of order, two of them at the same time
    sim = Simulation()
    seen: list[tuple[float, str]] = []

    def record(name: str) -> None:
        seen.append((sim.now, name))

    for at, name in [(3.0, "c"), (1.0, "a"), (2.0, "b1"), (2.0, "b2")]:
        sim.schedule(at, record, name)

    # When the simulation runs
    end = sim.run()

    # Then they ran by time, ties first-scheduled first, and the clock stopped at the last one
    assert seen == [(1.0, "a"), (2.0, "b1"), (2.0, "b2"), (3.0, "c")]
    assert end == 3.0
    assert sim.events == 4


def test_handlers_schedule_further_events() -> None:
    # Given a handler that schedules itself half a second later, three more times
    sim = Simulation()
    ticks: list[float] = []

    def tick(remaining: int) -> None:
        ticks.append(sim.now)
        if remaining:
            sim.schedule(sim.now + 0.5, tick, remaining - 1)

    # When it is scheduled once and the simulation runs
    sim.schedule(0.0, tick, 3)
    sim.run()
    # Then it ran four times, half a second apart
    assert ticks == [0.0, 0.5, 1.0, 1.5]


def test_scheduling_before_now_is_refused() -> None:
    # Given a handler that schedules an event a second before the current time
    sim = Simulation()
    failures: list[Exception] = []

    def late(_: None) -> None:
        try:
            sim.schedule(sim.now - 1, late)
        except ValueError as error:
            failures.append(error)

    # When it runs
    sim.schedule(5.0, late)
    sim.run()
    # Then that scheduling was refused
    assert len(failures) == 1


def test_progress_is_reported_with_the_simulated_time() -> None:
    # Given a long run and a progress interval of zero wall seconds
    sim = Simulation()
    reported: list[float] = []
    for index in range(200_000):
        sim.schedule(float(index), lambda _: None)

    # When it runs, Then progress was reported, with simulated times that only grow
    sim.run(progress=reported.append, progress_every_s=0.0)
    assert reported
    assert reported == sorted(reported)
    assert reported[-1] <= 199_999.0


def test_nan_time_is_refused() -> None:
    # Given an event at NaN, When it is scheduled, Then it is refused: NaN compares false with
    # everything, so accepted it would break the heap's order silently
    with pytest.raises(ValueError, match="cannot schedule"):
        Simulation().schedule(float("nan"), lambda _: None)
