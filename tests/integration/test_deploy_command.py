"""`make deploy ENV=... OVERRIDES=...` (tools.deploy) against moto's CloudFormation: the
environment's samconfig overrides are always passed with the user's on top (checked by parsing
what reached a stand-in `sam` with the SAM CLI's own parser), and an update that would replace
the source queue is refused before sam runs."""

from __future__ import annotations

import json
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from local.aws.queue_replacement import expected_source_queue_name
from local.aws.samconfig import parse_parameter_overrides
from tools import deploy
from tools.deploy import DeployedStack, replacement_of

PROD_OVERRIDES = "LogLevel=INFO LogRetentionInDays=90 MaximumConcurrency=20 TracingMode=Active"
SAMCONFIG = f"""
version = 0.1
[prod.global.parameters]
stack_name = "consumer-prod"
[prod.deploy.parameters]
capabilities = "CAPABILITY_IAM"
parameter_overrides = "{PROD_OVERRIDES}"
"""
STACK_ID = (
    "arn:aws:cloudformation:us-east-1:123456789012:stack/consumer-prod/"
    "0a1b2c3d-0000-4000-8000-000000000001"
)


@pytest.fixture
def samconfig(tmp_path: Path) -> Path:
    path = tmp_path / "samconfig.toml"
    path.write_text(SAMCONFIG)
    return path


@pytest.fixture
def fake_sam(tmp_path: Path) -> Path:
    """A stand-in for `sam` that records its arguments, one JSON list per call."""
    script = tmp_path / "sam"
    record = tmp_path / "sam-calls.jsonl"
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, sys\n"
        f"with open({str(record)!r}, 'a') as f:\n"
        "    f.write(json.dumps(sys.argv[1:]) + '\\n')\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def sam_calls(fake_sam: Path) -> list[list[str]]:
    record = fake_sam.parent / "sam-calls.jsonl"
    if not record.exists():
        return []
    return [json.loads(line) for line in record.read_text().splitlines()]


def passed_overrides(argv: list[str]) -> dict[str, str]:
    """The values sam would deploy, parsed as the SAM CLI parses its flag."""
    start = argv.index("--parameter-overrides") + 1
    return parse_parameter_overrides(argv[start:])


@pytest.fixture
def cloudformation() -> Iterator[object]:
    with mock_aws():
        yield boto3.client("cloudformation")


# The template's own naming, as CloudFormation resolves it.
NAMED_AFTER_THE_STACK_ID = {
    "Fn::Sub": [
        "sqs-backoff-${StackUuid}-source",
        {"StackUuid": {"Fn::Select": [2, {"Fn::Split": ["/", {"Ref": "AWS::StackId"}]}]}},
    ]
}


def existing_stack(cloudformation: object, source_queue_name: object, queue_type: str) -> None:
    template = {
        "Parameters": {"QueueType": {"Type": "String", "Default": "standard"}},
        "Resources": {
            "SourceQueue": {
                "Type": "AWS::SQS::Queue",
                "Properties": {"QueueName": source_queue_name},
            }
        },
        "Outputs": {"SourceQueueUrl": {"Value": {"Ref": "SourceQueue"}}},
    }
    cloudformation.create_stack(  # type: ignore[attr-defined]
        StackName="consumer-prod",
        TemplateBody=json.dumps(template),
        Parameters=[{"ParameterKey": "QueueType", "ParameterValue": queue_type}],
    )


def test_overrides_are_laid_over_the_environment_never_instead(
    cloudformation: object, samconfig: Path, fake_sam: Path
) -> None:
    # Given prod's overrides in samconfig.toml and no stack yet
    # When the user deploys prod with a DownstreamUrl and a LogLevel of their own
    status = deploy.main(
        ["--config-env", "prod", "--sam", str(fake_sam), "--samconfig", str(samconfig),
         "--overrides", 'DownstreamUrl=https://orders.example.com/in LogLevel=DEBUG']
    )  # fmt: skip
    # Then sam deploy ran once for prod, with every prod value and the user's on top
    assert status == 0
    [argv] = sam_calls(fake_sam)
    assert argv[:3] == ["deploy", "--config-env", "prod"]
    assert passed_overrides(argv) == {
        **parse_parameter_overrides(PROD_OVERRIDES),
        "DownstreamUrl": "https://orders.example.com/in",
        "LogLevel": "DEBUG",
    }


def test_a_value_with_spaces_reaches_sam_whole(
    cloudformation: object, samconfig: Path, fake_sam: Path
) -> None:
    # Given an override whose value has spaces (quoted as the SAM CLI reads it)
    status = deploy.main(
        ["--config-env", "prod", "--sam", str(fake_sam), "--samconfig", str(samconfig),
         "--overrides", 'DownstreamUrl=https://d.example.com NonRetryableStatusCodes="400,422"']
    )  # fmt: skip
    # Then sam receives it as one value
    assert status == 0
    [argv] = sam_calls(fake_sam)
    assert passed_overrides(argv)["NonRetryableStatusCodes"] == "400,422"


def test_a_misspelt_override_is_refused_before_sam_runs(
    cloudformation: object, samconfig: Path, fake_sam: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an override naming no parameter of the template
    status = deploy.main(
        ["--config-env", "prod", "--sam", str(fake_sam), "--samconfig", str(samconfig),
         "--overrides", "DownstreamUrl=https://d.example.com BatchSise=5"]
    )  # fmt: skip
    # Then nothing is deployed and the error names the parameter meant
    assert status == deploy.EXIT_REFUSED
    assert sam_calls(fake_sam) == []
    assert "did you mean BatchSize?" in capsys.readouterr().err


def test_a_new_stack_without_a_downstream_url_is_refused(
    cloudformation: object, samconfig: Path, fake_sam: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given no stack yet and no DownstreamUrl anywhere
    status = deploy.main(
        ["--config-env", "prod", "--sam", str(fake_sam), "--samconfig", str(samconfig)]
    )
    # Then nothing is deployed, and the error says where the URL goes
    assert status == deploy.EXIT_REFUSED
    assert sam_calls(fake_sam) == []
    assert "parameter_overrides" in capsys.readouterr().err


def test_an_update_of_a_stack_named_by_the_earlier_template_is_refused_unless_allowed(
    cloudformation: object, samconfig: Path, fake_sam: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given prod deployed by the template that named the source queue after the stack's name
    existing_stack(cloudformation, "consumer-prod-source", "standard")
    argv = ["--config-env", "prod", "--sam", str(fake_sam), "--samconfig", str(samconfig)]
    # When it is deployed again (no DownstreamUrl needed: the stack keeps its own)
    status = deploy.main(argv)
    # Then the update is refused before sam runs, saying why and where the way out is
    assert status == deploy.EXIT_REFUSED
    assert sam_calls(fake_sam) == []
    error = capsys.readouterr().err
    assert "consumer-prod-source was named by an earlier template" in error
    assert "docs/deploy-safety.md" in error
    # ...and with the replacement allowed it deploys, keeping prod's values
    assert deploy.main([*argv, "--allow-queue-replacement"]) == 0
    [call] = sam_calls(fake_sam)
    assert passed_overrides(call) == parse_parameter_overrides(PROD_OVERRIDES)


def test_an_update_that_keeps_the_source_queue_goes_ahead(
    cloudformation: object, samconfig: Path, fake_sam: Path
) -> None:
    # Given prod deployed by this template: its source queue named after the stack's id
    existing_stack(cloudformation, NAMED_AFTER_THE_STACK_ID, "standard")
    # When BatchSize changes (QueueType kept, as the SAM CLI keeps a value not given)
    status = deploy.main(
        ["--config-env", "prod", "--sam", str(fake_sam), "--samconfig", str(samconfig),
         "--overrides", "BatchSize=5"]
    )  # fmt: skip
    # Then sam deploy runs with prod's values and the new BatchSize
    assert status == 0
    [argv] = sam_calls(fake_sam)
    assert passed_overrides(argv) == {**parse_parameter_overrides(PROD_OVERRIDES), "BatchSize": "5"}


@pytest.mark.parametrize(("before", "after"), [("standard", "fifo"), ("fifo", "standard")])
def test_a_queue_type_change_is_named_as_a_replacement(before: str, after: str) -> None:
    # Given a stack of this template with one queue type
    deployed = DeployedStack(
        stack_id=STACK_ID,
        parameters={"QueueType": before},
        source_queue_name=expected_source_queue_name(STACK_ID, before),
    )
    # When the other type is asked for
    reason = replacement_of(deployed, {"QueueType": after})
    # Then the guard names the change and both queue names
    assert reason is not None
    assert f"QueueType {before} -> {after}" in reason
    assert expected_source_queue_name(STACK_ID, after) in reason


@pytest.mark.parametrize(
    ("value", "allowed"), [("1", True), ("true", True), ("", False), ("0", False), ("no", False)]
)
def test_only_a_yes_allows_a_replacement(
    monkeypatch: pytest.MonkeyPatch, value: str, allowed: bool
) -> None:
    # Given ALLOW_QUEUE_REPLACEMENT as make passes it (empty when not set)
    monkeypatch.setenv("ALLOW_QUEUE_REPLACEMENT", value)
    # Then only 1, true or yes allow it: ALLOW_QUEUE_REPLACEMENT=0 must not replace the queues
    assert deploy.parser().parse_args([]).allow_queue_replacement is allowed
