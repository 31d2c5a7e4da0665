"""Fault plans: each fault a fraction, drawn from a seed; kills armed per batch."""

from __future__ import annotations

from local.commands.run import options_from
from local.downstream.faults import (
    KILLED_IDLE,
    KILLED_IDLE_DURING_INVOCATION,
    KILLED_MID_BATCH,
    READ_TIMEOUT,
    SERVER_ERROR,
    EnvironmentFaults,
    FaultLog,
    FaultPlan,
)


class Environment:
    def __init__(self) -> None:
        self.kills = 0

    def kill(self) -> None:
        self.kills += 1


def test_downstream_faults_are_drawn_per_message_and_attempt_in_their_fractions() -> None:
    # Given a plan with 10 % read timeouts and 20 % 5xx answers
    plan = FaultPlan(downstream_read_timeout=0.1, downstream_5xx=0.2, seed="s")
    # When the first attempts of 5000 messages draw their faults
    draws = [plan.downstream_fault(f"m-{n}", "{}", 1) for n in range(5000)]
    # Then each fault comes in its fraction, give or take 2 points
    assert 0.08 < draws.count(READ_TIMEOUT) / 5000 < 0.12
    assert 0.18 < draws.count(SERVER_ERROR) / 5000 < 0.22
    assert draws.count(None) + draws.count(READ_TIMEOUT) + draws.count(SERVER_ERROR) == 5000
    # The same message and attempt always draw the same fault, whatever the calling order
    assert [plan.downstream_fault(f"m-{n}", "{}", 1) for n in range(5000)] == draws
    assert not FaultPlan().any
    assert plan.any


def test_a_mid_batch_kill_fires_after_the_drawn_number_of_the_batchs_calls() -> None:
    # Given a kill armed on every batch
    log = FaultLog()
    faults = EnvironmentFaults(FaultPlan(kill_mid_batch=1.0), log)
    environment = Environment()
    armed = faults.arm(("a", "b", "c"), environment)
    assert armed is not None

    # When the downstream sees the batch's calls (and another message's)
    for key in ["x", "a", "b", "c"][: armed.after_calls + 1]:
        faults.on_downstream_call(key)

    # Then the environment was killed once, after that many calls: one fault, each message named
    assert environment.kills == 1
    assert faults.disarm(armed)
    assert log.counts() == {KILLED_MID_BATCH: 1}
    assert len(log.snapshot()[0]) == 3


def test_a_kill_not_due_yet_fires_before_the_response_and_idle_kills_are_drawn() -> None:
    # Given a plan that kills every batch and every idle environment, and a batch armed
    log = FaultLog()
    faults = EnvironmentFaults(FaultPlan(kill_mid_batch=1.0, kill_idle=1.0), log)
    environment = Environment()
    armed = faults.arm(("a",) * 10, environment)
    assert armed is not None
    # When the armed kill fires twice and an idle kill is drawn
    faults.fire(armed)
    faults.fire(armed)  # once only
    faults.maybe_kill_idle(environment)
    # Then the environment was killed once for each, and both were recorded
    assert environment.kills == 2
    assert log.counts() == {KILLED_MID_BATCH: 1, KILLED_IDLE: 1}
    # ...and a plan without kills arms none
    assert EnvironmentFaults(FaultPlan(), log).arm(("a",), environment) is None


def test_fault_flags_build_the_plan() -> None:
    # Given fault flags, When they are read, Then they build the plan with the seed
    options = options_from(["--fault-429", "0.25", "--fault-kill-idle", "0.5", "--fault-seed", "x"])
    assert options.faults == FaultPlan(downstream_429=0.25, kill_idle=0.5, seed="x")


def test_an_idle_kill_that_lands_on_an_invocation_names_that_batch() -> None:
    # Given an environment killed while idle, which a poller had just taken
    log = FaultLog()
    faults = EnvironmentFaults(FaultPlan(kill_idle=1.0), log)
    killed, other = Environment(), Environment()
    faults.maybe_kill_idle(killed)

    # When invocations crash on it and on another environment
    faults.on_crash(killed, ("a", "b"))
    faults.on_crash(other, ("c",))

    # Then only the batch on the killed one is recorded as having met the kill
    met = [f.message_id for f in log.snapshot()[0] if f.kind == KILLED_IDLE_DURING_INVOCATION]
    assert met == ["a", "b"]
