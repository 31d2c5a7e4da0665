"""An outage run with the circuit breaker (the template's default): the function disables its
mapping, the scheduled probe enables it again after the outage, half-open closes on traffic, and
nothing is dead-lettered. The run `make run RUN_ARGS="--outage 60"` makes, with the real
1-minute probe schedule: about three and a half minutes (see docs/local-system.md, "The whole
system once")."""

from __future__ import annotations

import dataclasses
import itertools

import pytest

from local.commands.run import options_from
from local.commands.run_options import RunResult
from local.lambda_service.event_source_mapping import LONG_POLL_SECONDS
from tests.e2e.background import BackgroundRun, register

OUTAGE_SECONDS = 60
# A receive in its long poll when the mapping is disabled still returns (what Lambda has
# received is processed); the watcher sees a change within about a second, more on a loaded
# machine. After that, a disabled mapping receives nothing.
LAST_RECEIVE_AFTER_OPEN_SECONDS = LONG_POLL_SECONDS + 10


register(
    "breaker-run",
    lambda built, work: dataclasses.replace(
        options_from(["--outage", str(OUTAGE_SECONDS)]), build_dir=built, work_dir=work
    ),
)


@pytest.fixture(scope="module")
def outage_run(background_runs: dict[str, BackgroundRun]) -> tuple[RunResult, str]:
    return background_runs["breaker-run"].result()


@pytest.mark.slow
def test_the_breaker_opens_closes_after_the_outage_and_nothing_is_dead_lettered(
    outage_run: tuple[RunResult, str],
) -> None:
    # Given a 60 s outage run with the template's circuit breaker
    result, output = outage_run
    rec = result.reconciliation

    # Then the breaker opened, went half-open after the outage and closed, in that order
    stages = [t.after for t in result.transitions]
    assert stages[0] == "open", output
    assert "half-open" in stages
    assert stages[-1] == "closed", output
    [opened] = [t for t in result.transitions if t.after == "open"]
    [half_opened, *_] = [t for t in result.transitions if t.after == "half-open"]
    assert half_opened.at - opened.at > 0
    # ...the scheduled probe found the downstream down, then up
    statuses = [status for _, status in result.probes]
    assert 503 in statuses
    assert statuses[-1] == 200
    # ...each transition was printed as it happened
    assert "breaker: open at " in output
    assert "breaker: closed at " in output
    assert "| mapping: off" in output

    # Then every message was delivered, none dead-lettered, lost or left on the queue
    assert rec.dead_lettered == frozenset()
    assert rec.lost == ()
    assert rec.unfinished == ()
    assert rec.delivered == frozenset(result.sent)
    assert result.mapping_disabled_seconds > 0
    assert "breaker           1  times opened, the mapping disabled" in output
    assert output.rstrip("\n").splitlines()[-1].startswith("summary: ")


@pytest.mark.slow
def test_a_disabled_mapping_receives_nothing_after_its_last_long_poll(
    outage_run: tuple[RunResult, str],
) -> None:
    # Given the outage run's mapping states and every receive the mapping made
    result, _ = outage_run
    states = result.mapping_states
    disabled = [
        (at, next_at)
        for (at, state), (next_at, _) in itertools.pairwise(states)
        if not state.polling
    ]
    assert disabled, "the mapping was never disabled"
    for off_at, on_at in disabled:
        # Then while it was disabled, no receive returned after the long polls under way: the
        # messages waiting (the producer kept sending) spent no receive of their MaxReceiveCount
        while_off = [r for r in result.receives if off_at <= r.at < on_at]
        assert all(r.at <= off_at + LAST_RECEIVE_AFTER_OPEN_SECONDS for r in while_off)
        assert on_at - off_at > LAST_RECEIVE_AFTER_OPEN_SECONDS
