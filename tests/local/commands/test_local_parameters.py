"""The local run's parameters: checked as CloudFormation checks them; demo defaults that show
retries, recoveries and a dead letter whatever the timing."""

from __future__ import annotations

import pytest

from local.aws.template import SOURCE_TEMPLATE, ParameterError, load_template, resolved_parameters
from local.commands.run import options_from
from local.commands.run_options import RunOptions
from local.commands.send import generated_bodies
from local.downstream.demo_downstream import FailurePlan

TEMPLATE = load_template(SOURCE_TEMPLATE)


def test_the_demo_parameters_are_accepted_by_the_template() -> None:
    # Given the demo's options, When the template resolves their parameters
    options = RunOptions()
    values = resolved_parameters(TEMPLATE, options.parameter_overrides("http://127.0.0.1:1/m"))
    # Then it accepts them and each value reaches its parameter
    assert values["MaxReceiveCount"] == str(options.max_receive_count)
    assert values["BackoffBaseSeconds"] == str(options.backoff_base_seconds)
    assert values["BatchSize"] == "auto"  # untouched parameters keep their defaults


def test_every_violation_is_reported_at_once() -> None:
    # Given overrides with an unknown name and four bad values
    overrides = {
        "DownstreamUrl": "ftp://nope",
        "BackoffJitterSeconds": 0,
        "MaxReceiveCount": "many",
        "LogLevel": "LOUD",
        "Unknown": 1,
    }
    # When the template resolves them
    with pytest.raises(ParameterError) as raised:
        resolved_parameters(TEMPLATE, overrides)
    # Then every violation is in the one error, each with its reason
    message = str(raised.value)
    assert "Unknown is not a parameter" in message
    assert "BackoffJitterSeconds='0': below the minimum 1" in message
    assert "MaxReceiveCount='many': not a number" in message
    assert "LogLevel='LOUD': not one of DEBUG, INFO, WARNING, ERROR" in message
    assert "DownstreamUrl='ftp://nope': an https:// URL, or http:// to a loopback host" in message


def test_a_required_parameter_without_value_is_refused() -> None:
    # Given no DownstreamUrl, When the parameters are resolved, Then they are refused
    with pytest.raises(ParameterError, match="DownstreamUrl has no default"):
        resolved_parameters(TEMPLATE, {})


def test_defaults_dead_letter_a_message_and_recover_others_whatever_the_timing() -> None:
    # Given the demo defaults, When the downstream draws its failures for each attempt
    options = RunOptions()
    plan = FailurePlan(failure_rate=options.failure_rate, seed=options.seed)
    attempts = range(1, options.max_receive_count + 1)
    fates = {
        body: [plan.draws_failure(body, attempt) for attempt in attempts]
        for body in generated_bodies(options.messages)
    }
    # Then at least one message fails every attempt even without the outage (a dead letter),
    # and some fail their second attempt and still get through later (visible retries).
    assert any(all(fate) for fate in fates.values())
    assert any(fate[1] and not all(fate) for fate in fates.values())


@pytest.mark.parametrize(
    ("flags", "complaint"),
    [
        (["--messages", "0"], "--messages: 0 is out of range"),
        (["--failure-rate", "1.5"], "--failure-rate: 1.5 is out of range"),
        (["--backoff-jitter", "x"], "--backoff-jitter: 'x' is not a whole number"),
        (["--outage", "-1"], "--outage: -1.0 is out of range"),
        (["--queue-type", "lifo"], "--queue-type: 'lifo' is not a queue type"),
        (["--probe-fault", "500"], "--probe-fault: '500' is not a probe fault"),
        (["--source-retention-seconds", "59"], "--source-retention-seconds: 59 is out of range"),
    ],
)
def test_bad_flags_are_refused_with_a_clear_message(
    flags: list[str], complaint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a bad flag, When it is read, Then the run refuses it, saying why
    with pytest.raises(SystemExit) as exited:
        options_from(flags)
    assert exited.value.code == 2
    assert complaint in capsys.readouterr().err


def test_flags_become_template_parameters() -> None:
    # Given flags for the template's parameters, When they are read
    options = options_from(
        ["--max-receive-count", "6", "--backoff-base", "0", "--backoff-jitter", "2", "--seed", "x",
         "--downstream-timeout", "3", "--queue-type", "fifo", "--fifo-groups", "5"]
    )  # fmt: skip
    # Then each reaches its parameter
    assert options.parameter_overrides("http://127.0.0.1:1/m") == {
        "DownstreamUrl": "http://127.0.0.1:1/m",
        "DownstreamTimeoutSeconds": 3,
        "MaxReceiveCount": 6,
        "BackoffBaseSeconds": 0,
        "BackoffJitterSeconds": 2,
        "QueueType": "fifo",
        "IdempotentDelivery": "Disabled",
    }
    assert options.seed == "x"
    assert options.fifo_groups == 5


def test_a_fault_fraction_outside_0_to_1_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    # Given a fault fraction of 1.5, When it is read, Then the run refuses it, saying why
    with pytest.raises(SystemExit):
        options_from(["--fault-reset", "1.5"])
    assert "--fault-reset: 1.5 is out of range: expected from 0.0 to 1.0" in capsys.readouterr().err


def test_an_outage_run_shows_the_outage_alone_and_keeps_a_producer_going() -> None:
    # Given no flags, When they are read, Then the demo's failure rate and short outage hold
    default = options_from([])
    assert (default.failure_rate, default.outage_seconds, default.trickle_seconds) == (
        RunOptions().failure_rate,
        RunOptions().outage_seconds,
        0.0,
    )
    assert "CircuitBreaker" not in default.parameter_overrides("http://127.0.0.1:1/m")

    # When --outage is given, Then no random failures are added and the producer trickles on
    outage = options_from(["--outage", "600"])
    assert (outage.failure_rate, outage.outage_seconds, outage.trickle_seconds) == (0.0, 600, 5.0)

    # When a failure rate is given as well, Then it holds
    assert options_from(["--outage", "600", "--failure-rate", "0.1"]).failure_rate == 0.1

    # When --outage 0 is given, Then there is no outage and so no outage run
    no_outage = options_from(["--outage", "0"])
    assert (no_outage.outage_seconds, no_outage.trickle_seconds) == (0, 0.0)
    assert no_outage.failure_rate == RunOptions().failure_rate


def test_the_circuit_breaker_flag_reaches_its_parameter() -> None:
    options = options_from(["--circuit-breaker", "Disabled"])
    assert options.parameter_overrides("http://127.0.0.1:1/m")["CircuitBreaker"] == "Disabled"


def test_retention_and_probe_flags_reach_the_template_and_the_emulator() -> None:
    # Given the stuck-breaker flags, When they are read
    options = options_from(
        ["--source-retention-seconds", "600", "--probe-fault", "404",
         "--mapping-transition-seconds", "12"]
    )  # fmt: skip
    overrides = options.parameter_overrides("http://127.0.0.1:1/m", "http://127.0.0.1:1/health")
    # Then the retention is the template's parameter (the emulator expires at it), the probe
    # URL is the demo downstream's health path, and the fault and transition are the run's
    assert overrides["SourceQueueRetentionSeconds"] == 600
    assert overrides["BreakerProbeUrl"] == "http://127.0.0.1:1/health"
    assert options.probe_fault == "404"
    assert options.mapping_transition_seconds == 12.0
    assert resolved_parameters(TEMPLATE, overrides)["SourceQueueRetentionSeconds"] == "600"


def test_a_probe_url_from_the_config_env_is_kept() -> None:
    # Given samconfig's ENV naming its own probe URL
    options = RunOptions(template_parameters={"BreakerProbeUrl": "https://health.example.com/"})
    # When the run's parameters are made, Then the demo's health path does not replace it
    overrides = options.parameter_overrides("http://127.0.0.1:1/m", "http://127.0.0.1:1/health")
    assert overrides["BreakerProbeUrl"] == "https://health.example.com/"
