"""The local system with IdempotentDelivery=Enabled: the stack's DynamoDB table is deployed into
the emulator, and the function records the outcome of every message it delivers there."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import pytest

from local.system import RunOptions, run_local_system

pytestmark = pytest.mark.slow


def test_an_idempotent_run_records_every_outcome_and_loses_nothing(
    built: Path, tmp_path: Path
) -> None:
    # Given a run of 12 messages with idempotent delivery, some calls failing and retried
    options = dataclasses.replace(
        RunOptions(),
        idempotent_delivery="Enabled",
        messages=12,
        failure_rate=0.3,
        outage_seconds=0,
        latency_ms=0,
        max_receive_count=6,
        backoff_base_seconds=0,
        backoff_jitter_seconds=2,
        seed="5",
        build_dir=built,
        work_dir=tmp_path / "run",
    )

    # When it runs to its end
    out = io.StringIO()
    result = run_local_system(options, out)

    # Then nothing was lost, and exactly the delivered messages have their outcome recorded (a
    # failed attempt records nothing, so its retry was a real call; no body here is poison)
    assert result.lost == 0
    assert result.unfinished == 0
    assert any(call.status != 200 for call in result.calls)
    assert result.recorded_outcomes == len(result.reconciliation.delivered)
    assert result.reconciliation.duplicates == 0
    assert "outcomes recorded in the table" in out.getvalue()
