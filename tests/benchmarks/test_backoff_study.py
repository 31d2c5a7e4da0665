"""The study's command line: tables, the JSON last line, plots, the Brooker verdict."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import backoff_study
from benchmarks.report import duration

SCENARIO_KEYS = {
    "strategy",
    "outage_s",
    "max_receive_count",
    "retention_s",
    "calls_per_message",
    "peak_over_capacity",
    "drain_s",
    "p99_added_latency_s",
    "dead_lettered",
    "expired",
    "failure_rate",
    "stranded_dead_lettered",
    "calls_during_outage",
    "breaker_trips",
    "breaker_actuation_delay_s",
}


def test_a_small_study_prints_tables_writes_plots_and_ends_with_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given two outages, two strategies, one receive count and retention, small Brooker runs
    argv = [
        "--json",
        "--outages-s=60,600",
        "--max-receive-counts=5",
        "--retentions-days=4",
        "--strategies=S0,CB",
        "--partial-outages-s=600",
        "--partial-failure-rates=0.5",
        "--breaker-actuation-delays-s=120",
        "--messages-per-day=20000",
        "--arrivals-after-recovery-s=600",
        "--workers=1",
        "--brooker-runs=3",
        f"--plots-dir={tmp_path}",
    ]

    # When the study runs
    status = backoff_study.main(argv)

    # Then it passed the validation, printed the tables and a JSON document as its last line
    captured = capsys.readouterr()
    assert status == 0
    lines = captured.out.rstrip("\n").split("\n")
    document = json.loads(lines[-1])
    # ...4 of the grid, 2 partial outages, CB with a 2-minute actuation delay for each outage
    assert len(document["scenarios"]) == 8
    full = [
        s
        for s in document["scenarios"]
        if s["failure_rate"] == 1.0 and s["breaker_actuation_delay_s"] == 0
    ]
    delayed = [s for s in document["scenarios"] if s["breaker_actuation_delay_s"] == 120]
    partial = [s for s in document["scenarios"] if s["failure_rate"] == 0.5]
    assert len(full) == 4
    assert {(s["strategy"], s["max_receive_count"]) for s in delayed} == {("CB", 10)}
    for scenario in full:
        assert set(scenario) == SCENARIO_KEYS
        assert scenario["max_receive_count"] == 5
        assert scenario["calls_per_message"] >= 1.0
    assert {s["strategy"] for s in document["scenarios"]} == {"S0", "CB"}
    # ...the partial outages at the template's MaxReceiveCount (10)
    assert {(s["strategy"], s["max_receive_count"]) for s in partial} == {("S0", 10), ("CB", 10)}
    assert "## The circuit breaker against its goals" in captured.out
    assert "| CB | 50% | 10 min |" in captured.out
    assert "| 10 min | 2 min | 0 |" in captured.out
    brooker = document["brooker"]
    assert set(brooker) == {"full_jitter_calls", "no_jitter_calls"}
    assert brooker["full_jitter_calls"] < brooker["no_jitter_calls"]
    assert "| S0 | 1 min | 5 | 4 d |" in captured.out
    assert "PASS: full jitter needs" in captured.out
    # ...one plot per outage
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "calls-per-minute-outage-600s.png",
        "calls-per-minute-outage-60s.png",
    ]
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in tmp_path.iterdir())
    # ...and progress went to stderr, not into the table
    assert "[8/8]" in captured.err


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (45, "45 s"),
        (60, "1 min"),
        (600, "10 min"),
        (5_400, "1.5 h"),
        (86_400, "24 h"),
        (345_600, "4 d"),
    ],
)
def test_durations_read_as_a_person_would(seconds: float, text: str) -> None:
    # Given a number of seconds, When it is formatted, Then it reads in the largest sensible unit
    assert duration(seconds) == text
