"""`make run ENV=...`: samconfig ENV's parameter_overrides between the template's defaults and
the run's own flags."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from local.commands.run import DEFAULTS, options_from
from local.shared.paths import ROOT

URL = "http://127.0.0.1:1/messages"


def _samconfig(tmp_path: Path, overrides: str) -> Path:
    path = tmp_path / "samconfig.toml"
    path.write_text(
        'version = 0.1\n[default.deploy.parameters]\ncapabilities = "CAPABILITY_IAM"\n'
        f"[staging.deploy.parameters]\nparameter_overrides = {overrides}\n"
    )
    return path


def test_prod_overrides_reach_the_deployment_and_are_announced() -> None:
    # Given the project's prod environment, When the run's options are read with it
    options = options_from(["--config-env", "prod"])
    # Then its overrides are among the parameters deployed, the run's flags keep theirs
    assert options.parameter_overrides(URL) == {
        "LogLevel": "INFO",
        "LogRetentionInDays": "90",
        "MaximumConcurrency": "20",
        "TracingMode": "Active",
        "DownstreamUrl": URL,
        "DownstreamTimeoutSeconds": DEFAULTS.downstream_timeout_seconds,
        "MaxReceiveCount": DEFAULTS.max_receive_count,
        "BackoffBaseSeconds": DEFAULTS.backoff_base_seconds,
        "BackoffJitterSeconds": DEFAULTS.backoff_jitter_seconds,
        "QueueType": "standard",
        "IdempotentDelivery": "Disabled",
    }
    # And the line printed before the deploy says which
    assert options.config_env is not None
    assert options.config_env.line() == (
        "ENV prod: LogLevel=INFO LogRetentionInDays=90 MaximumConcurrency=20 TracingMode=Active"
    )


def test_without_an_environment_the_run_is_as_before() -> None:
    # Given no --config-env, When the options are read
    options = options_from([])
    # Then nothing is added and nothing is announced
    assert options.template_parameters == {}
    assert options.config_env is None
    assert options.parameter_overrides(URL) == DEFAULTS.parameter_overrides(URL)


def test_flags_given_win_over_env_and_env_wins_over_flags_left_at_their_defaults(
    tmp_path: Path,
) -> None:
    # Given an environment setting two parameters the run has flags for, and a third
    path = _samconfig(
        tmp_path,
        '"MaxReceiveCount=7 BackoffJitterSeconds=9 BatchSize=5 DownstreamUrl=https://x.example.com"',
    )
    # When the run is given one of those flags
    options = options_from(["--config-env", "staging", "--max-receive-count", "3"], samconfig=path)
    # Then the flag given wins, ENV wins over the flag left at its demo default, the parameter
    # without a flag is deployed as ENV has it, and ENV's DownstreamUrl is not deployed
    assert options.max_receive_count == 3
    assert options.backoff_jitter_seconds == 9
    assert options.parameter_overrides(URL)["BatchSize"] == "5"
    assert options.parameter_overrides(URL)["DownstreamUrl"] == URL
    assert options.config_env is not None
    assert options.config_env.line() == (
        "ENV staging: BackoffJitterSeconds=9 BatchSize=5; not applied: MaxReceiveCount "
        "(--max-receive-count 3 given), DownstreamUrl (the demo downstream answers instead)"
    )


@pytest.mark.parametrize(
    ("argv", "overrides", "complaint"),
    [
        (["--config-env", "nope"], '""',
         "error: samconfig.toml has no environment 'nope': its environments are default, staging"),
        (["--config-env", "staging"], '"MaxRecieveCount=3"',
         "error: samconfig.toml [staging.deploy.parameters]: MaxRecieveCount is not a parameter "
         "of the template (did you mean MaxReceiveCount?)"),
        (["--config-env", "staging"], '"MaxReceiveCount=0"',
         "error: samconfig.toml [staging.deploy.parameters]: MaxReceiveCount='0' is not a value "
         "the run takes for --max-receive-count: 0 is out of range: expected at least 1"),
        (["--config-env", "staging"], '["LogLevel=INFO", "AlarmEmail=a b"]',
         "error: samconfig.toml [staging.deploy.parameters] parameter_overrides: 'AlarmEmail=a b': "
         "cannot read 'b'"),
    ],
)  # fmt: skip
def test_an_environment_that_cannot_be_applied_ends_the_run_with_status_2(
    tmp_path: Path,
    argv: list[str],
    overrides: str,
    complaint: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given an unknown environment, or one whose overrides the run cannot take
    path = _samconfig(tmp_path, overrides)
    # When the options are read, Then the run ends with status 2 and says why
    with pytest.raises(SystemExit) as exited:
        options_from(argv, samconfig=path)
    assert exited.value.code == 2
    assert complaint in capsys.readouterr().err


def test_make_run_passes_env_to_the_run() -> None:
    # Given the Makefile, When `make run ENV=prod` is shown without running it (-n)
    environ = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    shown = subprocess.run(
        ["make", "-n", "run", "ENV=prod", "RUN_ARGS=--messages 5"],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    # Then the run is started with --config-env prod before the run's own flags, and ENV
    # defaults to default
    assert "-m local.commands.run --config-env prod --messages 5" in shown
    default = subprocess.run(
        ["make", "-n", "run"], cwd=ROOT, env=environ, capture_output=True, text=True, check=True
    ).stdout
    assert "-m local.commands.run --config-env default" in default


def test_a_flag_given_at_its_default_value_still_wins_over_env(tmp_path: Path) -> None:
    # Given an environment setting MaxReceiveCount, and the flag given with the demo's default
    path = _samconfig(tmp_path, '"MaxReceiveCount=7"')
    given = str(DEFAULTS.max_receive_count)
    # When the options are read
    options = options_from(["--config-env", "staging", "--max-receive-count", given], path)
    # Then the flag given wins: given is told from left at its default by presence, not value
    assert options.max_receive_count == DEFAULTS.max_receive_count
    assert options.config_env is not None
    assert options.config_env.replaced == {"MaxReceiveCount": f"--max-receive-count {given} given"}
