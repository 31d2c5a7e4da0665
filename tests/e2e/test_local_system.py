"""The whole local system, small: sam build, deploy into the emulator, poll, reconcile."""

from __future__ import annotations

import io
import itertools
import re
from collections import defaultdict
from pathlib import Path

import pytest

from local.commands.run_options import RunOptions, RunResult
from local.commands.system import run_local_system
from local.downstream.demo_downstream import Call

# The function sets the visibility after the call returns, so the next call can come no earlier
# than the delay after the previous one; clocks of one process, a little rounding aside.
CLOCK_TOLERANCE_SECONDS = 0.2

# delay(n) = 2^n + 0 + J, J in {0, 1}, computed by hand for OPTIONS' BackoffBaseSeconds 0 and
# BackoffJitterSeconds 2: receive count -> (least, most) seconds.
DELAYS = {1: (2, 3), 2: (4, 5)}

OPTIONS = RunOptions(
    messages=8,
    failure_rate=0.5,
    outage_seconds=0,
    latency_ms=0,
    max_receive_count=3,
    backoff_base_seconds=0,
    backoff_jitter_seconds=2,
    # Seed 7 gives these 8 messages one that fails every attempt, retried recoveries and
    # first-attempt deliveries (asserted below, so a changed draw cannot pass unnoticed).
    seed="7",
)


@pytest.fixture(scope="module")
def run(built: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[RunResult, str]:
    options = RunOptions(
        **{**OPTIONS.__dict__, "build_dir": built, "work_dir": tmp_path_factory.mktemp("run")}
    )
    out = io.StringIO()
    result = run_local_system(options, out)
    return result, out.getvalue()


def calls_by_message(result: RunResult) -> dict[str, list[Call]]:
    grouped: dict[str, list[Call]] = defaultdict(list)
    for call in result.calls:
        grouped[str(call.idempotency_key)].append(call)
    return grouped


def failed(call: Call) -> bool:
    return not 200 <= call.status <= 299


@pytest.mark.slow
def test_nothing_is_lost_and_the_summary_says_so(run: tuple[RunResult, str]) -> None:
    # Given the run of the module's fixture (8 messages, a downstream failure rate of 0.5)
    result, output = run
    # Then every message sent was delivered or dead-lettered, none lost or unfinished, within
    # the deadline, and the summary line's counts are the run's
    rec = result.reconciliation
    assert len(result.sent) == OPTIONS.messages
    assert rec.lost == ()
    assert rec.unfinished == ()
    assert len(rec.delivered) + len(rec.dead_lettered) == len(result.sent)
    assert not rec.delivered_and_dead_lettered
    assert not result.deadline_reached
    last_line = output.rstrip("\n").splitlines()[-1]
    match = re.fullmatch(
        r"summary: sent=(\d+) delivered=(\d+) dead_lettered=(\d+) lost=(\d+) unfinished=(\d+) "
        r"duplicates=(\d+) downstream_calls=(\d+) control_plane_calls=(\d+) elapsed_s=\d+\.\d "
        r"moving_s=\d+\.\d msg_per_s=\d+\.\d",
        last_line,
    )
    assert match is not None, last_line
    assert [int(n) for n in match.groups()] == [
        len(result.sent),
        len(rec.delivered),
        len(rec.dead_lettered),
        0,
        0,
        rec.duplicates,
        len(result.calls),
        result.control_plane_calls,
    ]


@pytest.mark.slow
def test_the_run_says_its_estimate_before_the_first_send(run: tuple[RunResult, str]) -> None:
    # Given the run of the module's fixture, whose downstream fails at random
    _, output = run
    lines = output.splitlines()
    # Then its estimate comes before the first progress line, and counts the schedule's longest
    # span: the delays after the first and the second of its three attempts
    [estimate] = [i for i, line in enumerate(lines) if line.startswith("estimate   ")]
    first_progress = next(i for i, line in enumerate(lines) if line.startswith("["))
    assert estimate < first_progress
    longest = sum(DELAYS[n][1] for n in (1, 2))
    assert longest == 8
    assert (
        f"then up to {longest} s of retries for a message failing every attempt"
        in (lines[estimate])
    )


@pytest.mark.slow
def test_dead_lettered_are_exactly_the_messages_whose_every_call_failed(
    run: tuple[RunResult, str],
) -> None:
    # Given the run of the module's fixture, and its downstream calls grouped by message
    result, _ = run
    calls = calls_by_message(result)
    # Then the dead-lettered messages are exactly those none of whose calls succeeded
    assert set(calls) == set(result.sent)
    every_call_failed = {m for m, message_calls in calls.items() if all(map(failed, message_calls))}
    assert result.reconciliation.dead_lettered == every_call_failed
    # The scenario did exercise every path: dead letters, recoveries, first-attempt successes
    recovered = {m for m, c in calls.items() if failed(c[0]) and not failed(c[-1])}
    first_attempt = {m for m, c in calls.items() if not failed(c[0])}
    assert every_call_failed
    assert recovered
    assert first_attempt
    # ...and a message is delivered at most MaxReceiveCount times, dead letters exactly that
    for message_id, message_calls in calls.items():
        expected = OPTIONS.max_receive_count if message_id in every_call_failed else None
        assert len(message_calls) <= OPTIONS.max_receive_count
        if expected is not None:
            assert len(message_calls) == expected
        assert sum(not failed(call) for call in message_calls) <= 1


@pytest.mark.slow
def test_redeliveries_are_spaced_as_the_backoff_formula_allows(run: tuple[RunResult, str]) -> None:
    # Given the run of the module's fixture and the backoff policy it deployed
    result, _ = run
    # Then no redelivery came before its delay's least value after the delivery before it (the
    # hand-computed table; how much later it came is the pollers' and the machine's business,
    # which a loaded machine stretches: make soak bounds that by the queue's own counts), and
    # there were redeliveries to check
    gaps_checked = 0
    for message_calls in calls_by_message(result).values():
        for receive_count, (earlier, later) in enumerate(itertools.pairwise(message_calls), 1):
            low, high = DELAYS[receive_count]
            gap = later.received_at - earlier.received_at
            assert low - CLOCK_TOLERANCE_SECONDS <= gap, (
                f"redelivery {receive_count + 1} came {gap:.2f}s after delivery {receive_count}; "
                f"delay({receive_count}) is {low}..{high}s"
            )
            gaps_checked += 1
    assert gaps_checked > 0
