"""The breaker's transitions read from the mapping's state changes, and the progress line."""

from __future__ import annotations

import io

from local.checks.mapping_timeline import MappingTimeline
from local.lambda_service.event_source_mapping import MappingState
from local.shared.progress import ProgressDisplay, Snapshot

CLOSED = MappingState("Enabled", True, 10)
OPEN = MappingState("Disabled", False, 10)


def half_open(concurrency: int) -> MappingState:
    return MappingState("Enabled", True, concurrency)


def test_an_outage_reads_open_half_open_closed_with_the_time_disabled() -> None:
    # Given a run started at t=100 with the mapping at its configured concurrency 10
    timeline = MappingTimeline(CLOSED, configured_concurrency=10, started=100.0)
    # When the breaker disables it at 112, the probe enables it x3 at 172, half-open raises it
    # to x4 at 182, and it is back to x10 at 240
    timeline.on_change(CLOSED, OPEN, 112.0)
    timeline.on_change(OPEN, half_open(3), 172.0)
    timeline.on_change(half_open(3), half_open(4), 182.0)
    timeline.on_change(half_open(4), CLOSED, 240.0)

    # Then three transitions are told, each once, at the run's elapsed seconds
    assert [t.render() for t in timeline.transitions()] == [
        "breaker: open at 12 s (mapping disabled)",
        "breaker: half-open at 72 s (mapping enabled x3)",
        "breaker: closed at 140 s (MaximumConcurrency 10)",
    ]
    # ...and the time in each state is counted up to the end of the run
    assert timeline.seconds_in("open", until=300.0) == 60.0
    assert timeline.seconds_in("half-open", until=300.0) == 68.0
    assert timeline.seconds_in("closed", until=300.0) == 12.0 + 60.0
    assert timeline.current == CLOSED


def test_a_mapping_still_disabled_at_the_end_counts_until_the_end() -> None:
    timeline = MappingTimeline(CLOSED, configured_concurrency=10, started=0.0)
    timeline.on_change(CLOSED, OPEN, 5.0)
    assert timeline.seconds_in("open", until=65.0) == 60.0


def test_the_progress_line_shows_the_mapping_and_an_event_gets_a_line_of_its_own() -> None:
    # Given a progress display on a file (not a terminal)
    out = io.StringIO()
    display = ProgressDisplay(out)
    snapshot = Snapshot(1.0, 5, 2, 0, 3, 0, 0, {503: 3}, mapping=OPEN.render())
    # When it shows a snapshot and then a transition
    display.show(snapshot)
    display.note("breaker: open at 1 s (mapping disabled)")
    # Then the line ends with the mapping's state, and the transition follows on its own line
    first, second = out.getvalue().splitlines()
    assert first.endswith("| downstream 503=3 | mapping: off")
    assert second == "breaker: open at 1 s (mapping disabled)"
    assert half_open(3).render() == "on x3"
