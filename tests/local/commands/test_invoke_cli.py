"""`make invoke`: an event file that is not JSON is named; ENV and --parameter-overrides in
their order of precedence; errors end with status 2 before anything is deployed."""

from __future__ import annotations

from pathlib import Path

import pytest

from local.aws.samconfig import SamconfigError
from local.commands import invoke

EVENT = "events/sqs-single-success.json"


def test_a_malformed_event_file_is_named_in_the_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an event file that is not valid JSON
    event = tmp_path / "broken.json"
    event.write_text('{"Records": [')
    # When it is invoked, Then the command fails and names the file
    assert invoke.main([str(event)]) == 1
    assert f"error: {event} is not a JSON event" in capsys.readouterr().err


def test_overrides_win_over_env_and_envs_downstream_is_never_deployed(tmp_path: Path) -> None:
    # Given an environment with a DownstreamUrl and two other parameters
    samconfig = tmp_path / "samconfig.toml"
    samconfig.write_text(
        "version = 0.1\n[staging.deploy.parameters]\n"
        'parameter_overrides = "DownstreamUrl=https://prod.example.com LogLevel=INFO BatchSize=5"\n'
    )
    # When the invocation's parameters are assembled with an override of one of them
    values, lines = invoke.parameters_from("staging", ["LogLevel=DEBUG"], None, samconfig)
    # Then the override wins, ENV supplies the rest, and ENV's DownstreamUrl is left out (the
    # demo downstream answers), each said on a line
    assert values == {"BatchSize": "5", "LogLevel": "DEBUG"}
    assert lines == [
        "ENV staging: BatchSize=5; not applied: DownstreamUrl (the deployed stack's service is "
        "not called from here), LogLevel (--parameter-overrides given)",
        "--parameter-overrides: LogLevel=DEBUG",
    ]


def test_downstream_url_comes_from_the_overrides_then_from_downstream_url() -> None:
    # Given DOWNSTREAM_URL in the environment, When no override names a DownstreamUrl
    values, lines = invoke.parameters_from(None, [], "http://127.0.0.1:8000/own")
    # Then the function is pointed at DOWNSTREAM_URL
    assert values == {"DownstreamUrl": "http://127.0.0.1:8000/own"}
    assert lines == ["DOWNSTREAM_URL: http://127.0.0.1:8000/own"]
    # And an override of DownstreamUrl wins over it
    values, _ = invoke.parameters_from(
        None, ["DownstreamUrl=http://127.0.0.1:9000/x"], "http://127.0.0.1:8000/own"
    )
    assert values == {"DownstreamUrl": "http://127.0.0.1:9000/x"}


def test_an_override_the_template_lacks_is_refused() -> None:
    # Given an override with a misspelt parameter name, When the parameters are assembled
    # Then the error says so, with the name meant
    meant = r"MaxReceiveCont is not a parameter of the template \(did you mean MaxReceiveCount\?\)"
    with pytest.raises(SamconfigError, match=rf"--parameter-overrides: {meant}"):
        invoke.parameters_from(None, ["MaxReceiveCont=3"], None)


@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        ([EVENT, "--config-env", "staging"],
         "error: samconfig.toml has no environment 'staging': its environments are default, prod"),
        ([EVENT, "--parameter-overrides", "LogLevel=INFO", "stray"],
         "error: --parameter-overrides: stray is not a valid format"),
        ([EVENT, "--parameter-overrides", "Colour=red"],
         "error: --parameter-overrides: Colour is not a parameter of the template"),
    ],
)  # fmt: skip
def test_arguments_that_cannot_be_applied_end_with_status_2_and_nothing_on_stdout(
    argv: list[str], complaint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an unknown ENV or an override that cannot be used, When make invoke is run
    # Then it ends with status 2 before deploying, says why, and prints nothing on stdout
    assert invoke.main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert complaint in captured.err
