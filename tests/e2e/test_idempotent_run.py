"""The local system with IdempotentDelivery=Enabled: the stack's DynamoDB table is deployed into
the emulator, and the function records the outcome of every message it delivers there."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import short_run

pytestmark = pytest.mark.slow


def test_an_idempotent_run_records_every_outcome_and_loses_nothing(
    built: Path, tmp_path: Path
) -> None:
    # Given a run of 12 messages with idempotent delivery, some calls failing and retried
    # When it runs to its end
    result, printed = short_run(
        built,
        tmp_path / "run",
        idempotent_delivery="Enabled",
        messages=12,
        failure_rate=0.3,
        max_receive_count=6,
        seed="5",
    )

    # Then nothing was lost, and exactly the delivered messages have their outcome recorded (a
    # failed attempt records nothing, so its retry was a real call; no body here is poison)
    assert result.lost == 0
    assert result.unfinished == 0
    assert any(call.status != 200 for call in result.calls)
    assert result.recorded_outcomes == len(result.reconciliation.delivered)
    assert result.reconciliation.duplicates == 0
    assert "outcomes recorded in the table" in printed
