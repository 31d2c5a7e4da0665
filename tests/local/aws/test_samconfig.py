"""samconfig.toml's environments and parameter_overrides, read as the SAM CLI reads them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from samcli.cli.types import CfnParameterOverridesType
from samcli.lib.config.samconfig import SamConfig

from local.aws.samconfig import (
    SAMCONFIG,
    AppliedOverrides,
    SamconfigError,
    check_names,
    config_envs,
    deploy_overrides,
    describe,
    parse_parameter_overrides,
)

# (parameter_overrides as written, what `sam deploy` deploys with)
FORMS: list[tuple[Any, dict[str, str]]] = [
    ("LogLevel=INFO MaximumConcurrency=20", {"LogLevel": "INFO", "MaximumConcurrency": "20"}),
    ('AlarmEmail="ops team@example.com" LogLevel=INFO',
     {"AlarmEmail": "ops team@example.com", "LogLevel": "INFO"}),
    ("AlarmEmail='single quoted value'", {"AlarmEmail": "single quoted value"}),
    (["LogLevel=INFO", "MaximumConcurrency=20"], {"LogLevel": "INFO", "MaximumConcurrency": "20"}),
    # A list item may hold several pairs; a quoted item keeps its spaces.
    (["LogLevel=INFO BatchSize=5", 'AlarmEmail="a b"'],
     {"LogLevel": "INFO", "BatchSize": "5", "AlarmEmail": "a b"}),
    ('NonRetryableStatusCodes="400,404" DownstreamUrl=https://x.example.com/a?b=c',
     {"NonRetryableStatusCodes": "400,404", "DownstreamUrl": "https://x.example.com/a?b=c"}),
    ("ParameterKey=LogLevel,ParameterValue=DEBUG", {"LogLevel": "DEBUG"}),
    ('AlarmEmail=""', {"AlarmEmail": ""}),
    ("", {}),
    ([], {}),
]  # fmt: skip


@pytest.mark.parametrize(("written", "expected"), FORMS)
def test_the_string_and_list_forms_parse_as_the_sam_cli_parses_them(
    written: Any, expected: dict[str, str]
) -> None:
    # Given parameter_overrides in one of the forms the SAM CLI documents
    # When it is parsed here and by the SAM CLI's own --parameter-overrides type
    parsed = parse_parameter_overrides(written)
    theirs = CfnParameterOverridesType().convert(written, None, None)
    # Then both give the same values: the ones sam deploy would deploy with
    assert parsed == theirs == expected


@pytest.mark.parametrize(
    ("written", "complaint"),
    [
        ("LogLevel=INFO junk", "cannot read 'junk'"),
        (["LogLevel=INFO", "AlarmEmail=a b"], "cannot read 'b'"),
        ("ParameterKey=LogLevel,ParameterValue=INFO BatchSize=5", "cannot read 'BatchSize=5'"),
        ("LogLevel=", "is not a valid format"),
        ("just words", "is not a valid format"),
        ("Log-Level=INFO", "is not a valid format"),
    ],
)
def test_text_the_sam_cli_would_drop_or_refuse_is_an_error(written: Any, complaint: str) -> None:
    # Given overrides with text that is not a Key=Value pair
    # When they are parsed, Then the error quotes what could not be read
    with pytest.raises(SamconfigError, match=complaint):
        parse_parameter_overrides(written)


def test_the_sam_cli_silently_drops_what_is_refused_here() -> None:
    # Given the SAM CLI's own parser, When it reads "LogLevel=INFO junk"
    # Then it keeps LogLevel and says nothing of "junk": why this module checks for leftovers
    assert CfnParameterOverridesType().convert("LogLevel=INFO junk", None, None) == {
        "LogLevel": "INFO"
    }


def _samconfig(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "samconfig.toml"
    path.write_text("version = 0.1\n" + text)
    return path


def test_an_environment_reads_its_deploy_overrides_over_its_global_ones(tmp_path: Path) -> None:
    # Given an environment with parameter_overrides in global and in deploy, and another with
    # them only in global
    path = _samconfig(
        tmp_path,
        '[staging.global.parameters]\nparameter_overrides = "LogLevel=DEBUG BatchSize=5"\n'
        "[staging.deploy.parameters]\n"
        'parameter_overrides = ["LogLevel=WARNING", "TracingMode=Active"]\n'
        '[qa.global.parameters]\nparameter_overrides = "LogLevel=ERROR"\n',
    )
    for env in ("staging", "qa"):
        # When this module reads it and the SAM CLI resolves `sam deploy --config-env ENV`
        ours = deploy_overrides(env, path).values
        resolved = SamConfig(str(tmp_path), "samconfig.toml").get_all(["deploy"], "parameters", env)
        theirs = CfnParameterOverridesType().convert(
            resolved.get("parameter_overrides"), None, None
        )
        # Then they agree: deploy's parameter_overrides replaces global's as a whole
        assert ours == theirs
    assert deploy_overrides("staging", path).values == {
        "LogLevel": "WARNING",
        "TracingMode": "Active",
    }
    assert deploy_overrides("qa", path).values == {"LogLevel": "ERROR"}


def test_the_projects_environments() -> None:
    # Given the project's samconfig.toml, When its environments are read
    # Then default has no overrides and prod has the ones it documents
    assert config_envs() == ["default", "prod"]
    assert deploy_overrides("default").values == {}
    assert deploy_overrides("prod").values == {
        "LogLevel": "INFO",
        "LogRetentionInDays": "90",
        "MaximumConcurrency": "20",
        "TracingMode": "Active",
    }
    assert deploy_overrides("prod").source == "samconfig.toml [prod.deploy.parameters]"


def test_an_unknown_environment_is_refused_listing_the_ones_there_are() -> None:
    # Given the project's samconfig.toml, When an environment it lacks is asked for
    # Then the error names it and lists the environments
    with pytest.raises(SamconfigError) as raised:
        deploy_overrides("staging", SAMCONFIG)
    assert str(raised.value) == (
        "samconfig.toml has no environment 'staging': its environments are default, prod"
    )


def test_bad_overrides_in_an_environment_name_where_they_are(tmp_path: Path) -> None:
    # Given an environment whose parameter_overrides leave text unread
    path = _samconfig(tmp_path, '[x.deploy.parameters]\nparameter_overrides = "A=1 oops"\n')
    # When it is read, Then the error names the file, table and what could not be read
    with pytest.raises(SamconfigError, match=r"samconfig.toml \[x.deploy.parameters\] "
                       r"parameter_overrides: 'A=1 oops': cannot read 'oops'"):  # fmt: skip
        deploy_overrides("x", path)


def test_a_samconfig_that_is_not_toml_is_named(tmp_path: Path) -> None:
    # Given a samconfig.toml that is not TOML, When it is read, Then the error names the file
    path = _samconfig(tmp_path, "[prod\n")
    with pytest.raises(SamconfigError, match=f"{path} is not valid TOML"):
        deploy_overrides("prod", path)


def test_a_name_the_template_lacks_is_refused_with_a_suggestion() -> None:
    # Given overrides naming a misspelt and an unknown parameter
    # When they are checked against the template's parameters
    with pytest.raises(SamconfigError) as raised:
        check_names(
            {"LogLevl": "INFO", "Colour": "red", "LogLevel": "INFO"},
            ["LogLevel", "BatchSize"],
            "samconfig.toml [prod.deploy.parameters]",
        )
    # Then both are named, where they come from, and the near miss gets a suggestion
    assert str(raised.value) == (
        "samconfig.toml [prod.deploy.parameters]: LogLevl is not a parameter of the template "
        "(did you mean LogLevel?); Colour is not a parameter of the template"
    )


def test_printed_overrides_read_back_as_the_same_values() -> None:
    # Given values with spaces, quotes and an empty one
    values = {"A": "plain", "B": "two words", "C": 'say "hi"', "D": "", "E": "it's"}
    # When they are printed, Then the SAM CLI's parser reads the same values back
    assert describe(values) == 'A=plain B="two words" C="say \\"hi\\"" D="" E="it\'s"'
    assert parse_parameter_overrides(describe(values)) == values


def test_the_line_says_what_was_applied_and_what_was_not() -> None:
    # Given overrides of which one was applied and two replaced, When the line is printed
    line = AppliedOverrides(
        "prod",
        {"LogLevel": "INFO"},
        {"DownstreamUrl": "the demo downstream answers instead", "MaxReceiveCount": "--x given"},
    ).line()
    # Then it names each, and an environment without overrides says so
    assert line == (
        "ENV prod: LogLevel=INFO; not applied: DownstreamUrl (the demo downstream answers "
        "instead), MaxReceiveCount (--x given)"
    )
    assert AppliedOverrides("default", {}, {}).line() == "ENV default: no parameter overrides"
