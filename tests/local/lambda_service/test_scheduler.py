"""Schedules that target the function: created by the local deployment through the emulator's
Scheduler API (moto's CloudFormation does not create them) and read back by the emulation."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import pytest

from local.aws.deploy import _Completion
from local.aws.emulator import Emulator, running_emulator
from local.lambda_service.scheduler import ScheduledTarget, ScheduleError, targets_of

ASSUME = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "scheduler.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
)


def _function(emulator: Emulator, name: str, role_arn: str) -> str:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as files:
        files.writestr("app.py", "def handler(event, context):\n    return None\n")
    created = emulator.client("lambda").create_function(
        FunctionName=name,
        Runtime="python3.13",
        Role=role_arn,
        Handler="app.handler",
        Code={"ZipFile": archive.getvalue()},
    )
    return str(created["FunctionArn"])


def _schedule(logical_id: str, expression: str, **target: Any) -> dict[str, Any]:
    return {
        "Type": "AWS::Scheduler::Schedule",
        "Properties": {
            "ScheduleExpression": expression,
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "Target": {
                "Arn": {"Fn::GetAtt": ["ConsumerFunction", "Arn"]},
                "RoleArn": {"Fn::GetAtt": ["ProbeRole", "Arn"]},
                "RetryPolicy": {"MaximumRetryAttempts": 0},
                **target,
            },
        },
    }


def test_the_deployment_creates_the_schedule_and_the_emulation_reads_it_back() -> None:
    with running_emulator() as emulator:
        # Given a deployed function and role, and a template schedule moto's CloudFormation skipped
        iam = emulator.client("iam")
        role = iam.create_role(RoleName="probe-role", AssumeRolePolicyDocument=ASSUME)["Role"]
        function_arn = _function(emulator, "consumer", role["Arn"])
        other_arn = _function(emulator, "other", role["Arn"])
        resources = {
            "ConsumerFunction": {"Type": "AWS::Lambda::Function"},
            "OtherFunction": {"Type": "AWS::Lambda::Function"},
            "ProbeRole": {"Type": "AWS::IAM::Role"},
            "BreakerProbeSchedule": _schedule(
                "BreakerProbeSchedule", "rate(1 minute)", Input='{"breakerProbe": {}}'
            ),
            "OtherSchedule": {
                **_schedule("OtherSchedule", "rate(5 minutes)"),
            },
        }
        resources["OtherSchedule"]["Properties"]["Target"]["Arn"] = {
            "Fn::GetAtt": ["OtherFunction", "Arn"]
        }
        completion = _Completion(
            emulator,
            "stack",
            {"Resources": resources},
            {},
            {"ConsumerFunction": "consumer", "OtherFunction": "other", "ProbeRole": "probe-role"},
        )

        # When the deployment completes what moto skipped
        completion._create_skipped("BreakerProbeSchedule", resources["BreakerProbeSchedule"])
        completion._create_skipped("OtherSchedule", resources["OtherSchedule"])
        scheduler = emulator.client("scheduler")

        # Then the schedule exists as the template describes it, its ARNs resolved
        created = scheduler.get_schedule(Name="stack-BreakerProbeSchedule")
        assert created["Target"]["Arn"] == function_arn
        assert created["Target"]["RoleArn"] == role["Arn"]
        assert created["Target"]["RetryPolicy"]["MaximumRetryAttempts"] == 0
        assert any("BreakerProbeSchedule (AWS::Scheduler::Schedule)" in g for g in completion.gaps)
        # ...and the emulation finds only the function's own schedule, with its Input
        assert targets_of(scheduler, function_arn) == [
            ScheduledTarget(
                "stack-BreakerProbeSchedule",
                "rate(1 minute)",
                60.0,
                {"breakerProbe": {}},
                function_arn,
            )
        ]
        assert [t.name for t in targets_of(scheduler, other_arn)] == ["stack-OtherSchedule"]
        # ...and, asked for both functions, each schedule with the function it invokes
        both = targets_of(scheduler, [function_arn, other_arn])
        assert sorted((t.name, t.function_arn) for t in both) == [
            ("stack-BreakerProbeSchedule", function_arn),
            ("stack-OtherSchedule", other_arn),
        ]

        # When a schedule is disabled, Then it is not emulated
        scheduler.update_schedule(
            Name="stack-OtherSchedule",
            ScheduleExpression="rate(5 minutes)",
            FlexibleTimeWindow={"Mode": "OFF"},
            Target=created["Target"] | {"Arn": other_arn},
            State="DISABLED",
        )
        assert targets_of(scheduler, other_arn) == []

        # When a schedule of the function has a cron expression, Then it is refused clearly
        scheduler.create_schedule(
            Name="nightly",
            ScheduleExpression="cron(0 20 * * ? *)",
            FlexibleTimeWindow={"Mode": "OFF"},
            Target={"Arn": function_arn, "RoleArn": role["Arn"]},
        )
        with pytest.raises(ScheduleError, match="not emulated locally"):
            targets_of(scheduler, function_arn)
