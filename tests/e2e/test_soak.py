"""A small soak: a few hundred messages under every fault at once, judged as make soak judges."""

from __future__ import annotations

from dataclasses import fields, replace

import pytest

from local.commands import soak
from local.commands.run_options import RunResult
from local.downstream.faults import FRACTION_PREFIXES, KILLED_IDLE_DURING_INVOCATION, FaultPlan
from tests.e2e.background import BackgroundRun, register

# Higher fractions than make soak's, so that each fault occurs in a few hundred messages (the
# chance that one of them does not is below 1 % in all); a 60 s visibility timeout (the
# function timeout, the least Lambda accepts) keeps the run's waits short.
FAULTS = FaultPlan(
    downstream_read_timeout=0.03,
    downstream_reset=0.03,
    downstream_beyond_function_timeout=0.02,
    downstream_429=0.04,
    downstream_5xx=0.05,
    sqs_change_visibility=0.15,
    sqs_expired_receipt=0.15,
    sqs_dlq_send=0.5,
    sqs_throttle=0.1,
    sqs_delete=0.1,
    kill_mid_batch=0.1,
    kill_idle=0.1,
    seed="small-soak",
)
OPTIONS = replace(
    soak.SOAK,
    messages=400,
    poison_fraction=0.03,
    visibility_timeout_seconds=60,
    faults=FAULTS,
)


register("soak", lambda built, work: replace(OPTIONS, build_dir=built, work_dir=work))


@pytest.fixture(scope="module")
def soaked(background_runs: dict[str, BackgroundRun]) -> tuple[RunResult, str]:
    return background_runs["soak"].result()


@pytest.mark.slow
def test_every_fault_was_injected(soaked: tuple[RunResult, str]) -> None:
    # Given the soak run of the module's fixture, every fault's fraction above zero
    result, _ = soaked
    configured = [f.name for f in fields(FAULTS) if f.name.startswith(FRACTION_PREFIXES)]
    assert all(getattr(FAULTS, name) > 0 for name in configured)
    # Then the fault log holds as many kinds of fault as there are fault flags
    # One kind of fault each flag injects (an idle kill may also land on an invocation)
    injected = set(result.fault_log.counts()) - {KILLED_IDLE_DURING_INVOCATION}
    assert len(injected) == len(configured), injected


@pytest.mark.slow
def test_nothing_is_lost_and_every_check_of_the_soak_passes(
    soaked: tuple[RunResult, str],
) -> None:
    # Given the soak run of the module's fixture
    result, output = soaked
    # When the soak's checks judge it
    lines = soak.check(result, OPTIONS)
    # Then every check passes, nothing is lost or unfinished and all 400 were sent
    assert all(line.startswith("PASS") for line in lines), "\n".join(lines)
    assert result.lost == 0
    assert result.unfinished == 0
    assert output.rstrip("\n").splitlines()[-1].startswith("summary: sent=400 ")
    # The faults did cause duplicates, and the checks explained each of them
    assert result.reconciliation.duplicates > 0
