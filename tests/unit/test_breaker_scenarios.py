"""Credential failures and outages message by message against the real breaker code
(tests/support/breaker_scenarios.py, which prints the figures): nothing dead-lettered."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared.observability import metrics
from tests.support.breaker_scenarios import outage, run


@pytest.fixture(autouse=True)
def no_metrics_left_behind() -> Iterator[None]:
    yield
    metrics.clear_metrics()


@pytest.mark.parametrize("message_probe", [False, True])
def test_credentials_refused_for_30_minutes_dead_letter_nothing(message_probe: bool) -> None:
    # Given 2 messages a second for an hour, and a downstream answering 401 for 30 minutes
    # (a credential rotation) from the first minute, then 200
    result = run(
        outage(60, 1800, 401),
        seconds=7200,
        send_for_s=3600,
        actuation_s=60,
        message_probe=message_probe,
    )
    # Then every message is delivered and none dead-lettered; the breaker opened once
    assert (result.delivered, result.dead_lettered, result.left) == (result.sent, 0, 0)
    assert result.transitions == 3


def test_without_the_breaker_the_same_credential_failure_dead_letters() -> None:
    # Given the same run with no controller acting on the reports
    result = run(outage(60, 1800, 401), seconds=7200, send_for_s=3600, breaker_on=False)
    # Then the messages of the first minutes spend their receives and are dead-lettered
    assert result.dead_lettered > 0


def test_a_ten_minute_outage_dead_letters_nothing_with_a_few_requests() -> None:
    # Given a 10-minute outage (503) and changes of the mapping that take 60 s to land
    result = run(outage(60, 600), seconds=3600, send_for_s=1800, actuation_s=60)
    # Then nothing is dead-lettered, and the control plane sees a read a minute and the
    # transitions' updates: never more than 2 requests in a second
    assert (result.dead_lettered, result.left) == (0, 0)
    assert result.peak_control_plane_per_s <= 2
    assert result.control_plane_requests <= 3600 // 60 + 2 * result.transitions
