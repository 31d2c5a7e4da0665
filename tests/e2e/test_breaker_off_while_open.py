"""Issue 22, item 3: the circuit breaker turned off (CircuitBreaker=Disabled) by a stack update
while it holds the mapping disabled. What owns the restore: the controller stays deployed with
the parameter off (template.yaml, BreakerProbeSchedule), its environment says
BREAKER_ENABLED=false, and its next scheduled tick enables the mapping at the configured
MaximumConcurrency without a probe or a half-open (functions/breaker_controller/controller.py,
_restore). The local system follows the update as Lambda would: the controller's new
configuration reaches its next invocation, and the schedules are read again.

The run: a 60 s outage (counted from the first call) opens the breaker; the update lands once
it is open; the downstream comes back; the controller's next minute restores the mapping. About
three minutes, in the background beside the rest of the suite."""

from __future__ import annotations

import dataclasses

import pytest

from local.commands.run import options_from
from local.commands.run_options import RunResult
from tests.e2e.background import BackgroundRun, register

OUTAGE_SECONDS = 60
CONFIGURED_CONCURRENCY = 10  # the template's MaximumConcurrency

register(
    "breaker-off-while-open",
    lambda built, work: dataclasses.replace(
        options_from(
            [
                "--outage",
                str(OUTAGE_SECONDS),
                "--stack-update",
                "open:CircuitBreaker=Disabled",
            ]
        ),
        build_dir=built,
        work_dir=work,
    ),
)


@pytest.fixture(scope="module")
def off_while_open(background_runs: dict[str, BackgroundRun]) -> tuple[RunResult, str]:
    return background_runs["breaker-off-while-open"].result()


@pytest.mark.slow
def test_turning_the_breaker_off_while_open_restores_the_mapping_and_loses_nothing(
    off_while_open: tuple[RunResult, str],
) -> None:
    # Given an outage run whose stack update turns the breaker off once it is open
    result, output = off_while_open

    # Then the breaker opened, and the update landed while it was open
    [applied] = result.stack_updates
    assert (applied.status, applied.detail) == ("UPDATE_COMPLETE", "CircuitBreaker=Disabled"), (
        output
    )
    [opened, *after_open] = result.transitions
    assert opened.after == "open", output
    assert opened.at < applied.at - _started(result)
    assert "update     once the breaker is open: CircuitBreaker=Disabled -> UPDATE_COMPLETE" in (
        output
    )
    # ...and both functions run with their new configuration from then on
    assert "function   BreakerControllerFunction configuration updated" in output
    assert "function   ConsumerFunction configuration updated" in output

    # Then the controller's next tick restored the mapping at once, enabled at the configured
    # MaximumConcurrency: no probe, no half-open (what the breaker, still on, would have done)
    restores = [
        tick.invocation.response
        for tick in result.scheduled_invocations
        if (tick.invocation.response or {}).get("breaker") == "off"
    ]
    assert {
        "breaker": "off",
        "mappingState": "Disabled",
        "action": f"restored: enabled at MaximumConcurrency {CONFIGURED_CONCURRENCY}",
        "trigger": "schedule",
    } in restores, output
    assert [t.after for t in after_open] == ["closed"], output
    assert after_open[0].state.maximum_concurrency == CONFIGURED_CONCURRENCY
    assert result.probes == []
    final = result.mapping_states[-1][1]
    assert (final.state, final.polling, final.maximum_concurrency) == (
        "Enabled",
        True,
        CONFIGURED_CONCURRENCY,
    )

    # Then every message was delivered after the outage: nothing lost, dead-lettered or left
    rec = result.reconciliation
    assert rec.lost == ()
    assert rec.unfinished == ()
    assert rec.dead_lettered == frozenset()
    assert rec.delivered == frozenset(result.sent)
    assert "lost=0 unfinished=0" in output


def _started(result: RunResult) -> float:
    """The run's start on the monotonic clock (transitions count from it; updates do not)."""
    return result.mapping_states[0][0]
