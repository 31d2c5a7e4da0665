"""Every function of the template is deployed and read back with what the local system needs to
run it: its code, reserved concurrency and EventInvokeConfig; the consumer is the function the
SQS mapping invokes, and a schedule may target another function (the breaker controller)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from local.aws.deploy import deploy
from local.aws.emulator import running_emulator
from local.lambda_service.scheduler import targets_of

SCHEDULER_ASSUME = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "scheduler.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}


def built_template() -> dict[str, Any]:
    """A small stand-in for sam build's output: a consumer, a controller, their schedule."""
    function = {"Runtime": "python3.13", "Timeout": 30, "MemorySize": 128}
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Transform": "AWS::Serverless-2016-10-31",
        "Resources": {
            "SourceQueue": {"Type": "AWS::SQS::Queue", "Properties": {"VisibilityTimeout": 180}},
            "ConsumerFunction": {
                "Type": "AWS::Serverless::Function",
                "Properties": {
                    **function,
                    "CodeUri": "ConsumerFunction",
                    "Handler": "app.handler",
                    "Events": {
                        "SourceQueue": {
                            "Type": "SQS",
                            "Properties": {"Queue": {"Fn::GetAtt": ["SourceQueue", "Arn"]}},
                        }
                    },
                },
            },
            "BreakerControllerFunction": {
                "Type": "AWS::Serverless::Function",
                "Properties": {
                    **function,
                    "CodeUri": "BreakerControllerFunction",
                    "Handler": "breaker_controller.app.lambda_handler",
                    "ReservedConcurrentExecutions": 1,
                    "EventInvokeConfig": {
                        "MaximumRetryAttempts": 0,
                        "MaximumEventAgeInSeconds": 60,
                    },
                    "Environment": {
                        "Variables": {
                            "EVENT_SOURCE_MAPPING_UUID": {"Ref": "ConsumerFunctionSourceQueue"}
                        }
                    },
                },
            },
            "ProbeRole": {
                "Type": "AWS::IAM::Role",
                "Properties": {"AssumeRolePolicyDocument": SCHEDULER_ASSUME},
            },
            "BreakerProbeSchedule": {
                "Type": "AWS::Scheduler::Schedule",
                "Properties": {
                    "ScheduleExpression": "rate(1 minute)",
                    "FlexibleTimeWindow": {"Mode": "OFF"},
                    "Target": {
                        "Arn": {"Fn::GetAtt": ["BreakerControllerFunction", "Arn"]},
                        "RoleArn": {"Fn::GetAtt": ["ProbeRole", "Arn"]},
                        "Input": json.dumps({"breakerProbe": {}}),
                    },
                },
            },
        },
    }


def test_every_function_is_deployed_with_what_runs_it(tmp_path: Path) -> None:
    # Given a built template with a consumer and a controller, each with its own code folder
    # JSON is YAML: the deploy reads it as it reads sam build's template.yaml.
    (tmp_path / "template.yaml").write_text(json.dumps(built_template()))
    (tmp_path / "ConsumerFunction").mkdir()
    (tmp_path / "ConsumerFunction" / "app.py").write_text("def handler(e, c):\n    return {}\n")
    controller_code = tmp_path / "BreakerControllerFunction" / "breaker_controller"
    controller_code.mkdir(parents=True)
    (controller_code / "__init__.py").write_text("")
    (controller_code / "app.py").write_text("def lambda_handler(e, c):\n    return {}\n")
    with running_emulator() as emulator:
        # When it is deployed
        deployed = deploy(emulator, tmp_path, "stack", {})
        # Then both functions are there, each with its own code package
        assert set(deployed.functions) == {"ConsumerFunction", "BreakerControllerFunction"}
        consumer = deployed.functions["ConsumerFunction"]
        controller = deployed.functions["BreakerControllerFunction"]
        assert consumer.code != controller.code
        # and the consumer is the function the source queue's mapping invokes
        assert deployed.function["FunctionArn"] == consumer.arn
        [mapping] = deployed.event_source_mappings
        assert mapping["FunctionArn"] == consumer.arn
        # and the controller keeps its reserved concurrency, EventInvokeConfig and variables
        assert controller.reserved_concurrency == 1
        assert consumer.reserved_concurrency is None
        assert controller.event_invoke_config is not None
        assert controller.event_invoke_config["MaximumRetryAttempts"] == 0
        assert controller.event_invoke_config["MaximumEventAgeInSeconds"] == 60
        variables = controller.configuration["Environment"]["Variables"]
        assert variables["EVENT_SOURCE_MAPPING_UUID"] == mapping["UUID"]
        # and the schedule is read back as targeting the controller, not the consumer
        [target] = targets_of(
            emulator.client("scheduler"), [f.arn for f in deployed.functions.values()]
        )
        assert target.function_arn == controller.arn
        assert target.event == {"breakerProbe": {}}
