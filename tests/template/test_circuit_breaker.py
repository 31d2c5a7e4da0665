"""template.yaml's circuit breaker: its parameters and rules, the controller (its own function,
role and single writer), the consumer's channel to it (and no control-plane right), the
schedule, the alarm and the dashboard widget; with CircuitBreaker=Disabled the controller stays
to restore the mapping."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from local.aws.moto_stack import parameter_defaults, sam_template, translated
from local.aws.template import ParameterError, resolved_parameters
from local.lambda_service.scheduler import rate_seconds
from shared.breaker_policy.state import STATE_GAUGE, BreakerState
from shared.breaker_policy.timing import (
    BACKSTOP_PERIOD_SECONDS,
    MIN_RETENTION_SECONDS_WITH_BREAKER,
    SWEEP_RECEIVE_SECONDS,
    longest_hold_seconds,
)
from tests.support.template import decided, resources_of_type
from tests.template.test_alarms_and_dashboard import dashboard_body

MAPPING_ARN = {
    "Fn::Sub": "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}"
    ":event-source-mapping:${ConsumerFunctionSourceQueue}"
}
CONTROLLER_NAME = {
    "Fn::Join": [
        "",
        ["breaker-", {"Fn::Select": [2, {"Fn::Split": ["/", {"Ref": "AWS::StackId"}]}]}],
    ]
}


@pytest.fixture(scope="module")
def cfn() -> dict[str, Any]:
    return translated()


def properties(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    resource: dict[str, Any] = template["Resources"][logical_id]["Properties"]
    return resource


def environment(template: dict[str, Any], function: str = "ConsumerFunction") -> dict[str, Any]:
    variables: dict[str, Any] = properties(template, function)["Environment"]["Variables"]
    return variables


def role_statements(template: dict[str, Any], role: str) -> list[dict[str, Any]]:
    """Every statement of the role's inline policies and of the AWS::IAM::Policy resources
    attached to it."""
    inline = [
        statement
        for policy in properties(template, role)["Policies"]
        if isinstance(policy, dict) and "PolicyDocument" in policy
        for statement in policy["PolicyDocument"]["Statement"]
    ]
    attached = [
        statement
        for resource in resources_of_type(template, "AWS::IAM::Policy").values()
        if {"Ref": role} in resource["Properties"]["Roles"]
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]
    ]
    return inline + attached


def actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)


def every_statement(template: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for resource in template["Resources"].values():
        props = resource.get("Properties", {})
        documents = [
            p["PolicyDocument"] for p in props.get("Policies", []) if "PolicyDocument" in p
        ]
        if "PolicyDocument" in props:
            documents.append(props["PolicyDocument"])
        for document in documents:
            yield from document["Statement"]


def test_the_breaker_is_on_by_default_with_the_studys_rules() -> None:
    # Given the template's defaults, Then the breaker is enabled, probing with a real message,
    # alarming after half an hour not closed, with the study's trip rule and 401/403 pausing
    defaults = parameter_defaults()
    assert defaults["CircuitBreaker"] == "Enabled"
    assert defaults["BreakerProbeUrl"] == ""
    assert defaults["BreakerOpenAlarmSeconds"] == 1800
    assert (defaults["BreakerWindowSeconds"], defaults["BreakerFailurePercent"]) == (60, 90)
    assert (defaults["BreakerMinimumFailures"], defaults["BreakerWholeBatchFailures"]) == (10, 3)
    assert defaults["BreakerPauseStatusCodes"] == "401,403"


# The consumer: rules and a channel, no control plane ---------------------------------------


def test_the_consumer_is_told_the_rules_and_the_controller(cfn: dict[str, Any]) -> None:
    variables = environment(cfn)
    # Then it carries the switch, the controller's name and every rule
    assert variables["BREAKER_ENABLED"] == {"Fn::If": ["BreakerEnabled", "true", "false"]}
    assert variables["BREAKER_CONTROLLER_FUNCTION"] == {
        "Fn::If": ["BreakerEnabled", CONTROLLER_NAME, ""]
    }
    for name, parameter in {
        "BREAKER_WINDOW_SECONDS": "BreakerWindowSeconds",
        "BREAKER_FAILURE_PERCENT": "BreakerFailurePercent",
        "BREAKER_MINIMUM_FAILURES": "BreakerMinimumFailures",
        "BREAKER_WHOLE_BATCH_FAILURES": "BreakerWholeBatchFailures",
        "BREAKER_PAUSE_STATUS_CODES": "BreakerPauseStatusCodes",
    }.items():
        assert variables[name] == {"Ref": parameter}
        # ...the same the controller judges reports by
        assert environment(cfn, "BreakerControllerFunction")[name] == {"Ref": parameter}
    # ...and nothing it would need to find or read the mapping
    assert not {"BREAKER_PROBE_URL", "MAXIMUM_CONCURRENCY", "SOURCE_QUEUE_ARN"} & set(variables)


def test_the_consumer_has_no_event_source_mapping_right(cfn: dict[str, Any]) -> None:
    # Given every statement that reaches the consumer's role
    statements = role_statements(cfn, "ConsumerFunctionRole")
    lambda_actions = [a for s in statements for a in actions(s) if a.startswith("lambda:")]
    # Then its only Lambda right is invoking the controller, on exactly its ARN
    assert lambda_actions == ["lambda:InvokeFunction"]
    [invoke] = [s for s in statements if "lambda:InvokeFunction" in actions(s)]
    assert invoke["Resource"] == {"Fn::GetAtt": ["BreakerControllerFunction", "Arn"]}
    assert "EventSourceMapping" not in json.dumps(statements)


def test_no_lambda_action_is_granted_on_every_resource(cfn: dict[str, Any]) -> None:
    # Given every Allow statement of the template
    for statement in every_statement(cfn):
        if statement["Effect"] != "Allow":
            continue
        # Then none grants a Lambda action on "*"
        if any(a.startswith("lambda:") for a in actions(statement)):
            assert statement["Resource"] != "*", statement


# The controller ----------------------------------------------------------------------------


def test_the_controller_is_a_single_writer_with_its_own_role(cfn: dict[str, Any]) -> None:
    controller = properties(cfn, "BreakerControllerFunction")
    # Then it runs its own handler from the shared code folder, one at a time
    assert controller["Handler"] == "breaker_controller.app.lambda_handler"
    assert controller["ReservedConcurrentExecutions"] == 1
    assert controller["Role"] == {"Fn::GetAtt": ["BreakerControllerRole", "Arn"]}
    # ...named before any resource exists (no cycle; any stack name fits)
    assert controller["FunctionName"] == CONTROLLER_NAME
    # ...dropping asynchronous events it cannot use promptly
    [invoke_config] = [
        properties(cfn, logical_id)
        for logical_id in resources_of_type(cfn, "AWS::Lambda::EventInvokeConfig")
        if properties(cfn, logical_id)["FunctionName"] == {"Ref": "BreakerControllerFunction"}
    ]
    assert invoke_config["MaximumRetryAttempts"] == 0
    assert invoke_config["MaximumEventAgeInSeconds"] == 60


def test_the_controller_is_told_the_mapping_by_its_uuid(cfn: dict[str, Any]) -> None:
    variables = environment(cfn, "BreakerControllerFunction")
    assert variables["EVENT_SOURCE_MAPPING_UUID"] == {"Ref": "ConsumerFunctionSourceQueue"}
    assert variables["CONSUMER_FUNCTION_NAME"] == {"Ref": "ConsumerFunction"}
    assert variables["SOURCE_QUEUE_URL"] == {"Ref": "SourceQueue"}
    assert variables["MAXIMUM_CONCURRENCY"] == {"Ref": "MaximumConcurrency"}
    assert variables["BREAKER_PROBE_URL"] == {"Ref": "BreakerProbeUrl"}
    assert variables["SOURCE_QUEUE_RETENTION_SECONDS"] == {"Ref": "SourceQueueRetentionSeconds"}
    # ...the same MaximumConcurrency the mapping starts with, which closing restores
    mapping = properties(cfn, "ConsumerFunctionSourceQueue")
    assert mapping["ScalingConfig"]["MaximumConcurrency"] == {"Ref": "MaximumConcurrency"}


def test_the_controller_may_read_and_switch_that_mapping_only(cfn: dict[str, Any]) -> None:
    statements = role_statements(cfn, "BreakerControllerRole")
    lambda_statements = [s for s in statements if any(a.startswith("lambda:") for a in actions(s))]
    by_action = {a: s for s in lambda_statements for a in actions(s)}
    # Then it may read and update exactly the mapping SAM makes of the consumer's SQS event
    assert set(by_action) == {"lambda:GetEventSourceMapping", "lambda:UpdateEventSourceMapping"}
    assert all(s["Resource"] == MAPPING_ARN for s in lambda_statements)
    # ...and an update may only keep the mapping on the consumer
    update = by_action["lambda:UpdateEventSourceMapping"]
    assert update["Condition"] == {
        "StringEquals": {"lambda:FunctionArn": {"Fn::GetAtt": ["ConsumerFunction", "Arn"]}}
    }
    [mapping] = resources_of_type(cfn, "AWS::Lambda::EventSourceMapping")
    assert mapping == "ConsumerFunctionSourceQueue"
    # ...and its SQS rights are on the source queue only
    sqs = [s for s in statements if any(a.startswith("sqs:") for a in actions(s))]
    assert [s["Resource"] for s in sqs] == [{"Fn::GetAtt": ["SourceQueue", "Arn"]}]


def test_the_controllers_rights_exist_before_it_or_its_schedule_runs(cfn: dict[str, Any]) -> None:
    resources = cfn["Resources"]
    assert resources["BreakerControllerFunction"]["DependsOn"] == "BreakerControllerMappingAccess"
    depends = resources["BreakerProbeSchedule"]["DependsOn"]
    assert "BreakerControllerMappingAccess" in ([depends] if isinstance(depends, str) else depends)


# The schedule ------------------------------------------------------------------------------


def test_the_schedule_ticks_the_controller_every_minute_without_retries(
    cfn: dict[str, Any],
) -> None:
    schedule = properties(cfn, "BreakerProbeSchedule")
    assert schedule["ScheduleExpression"] == "rate(1 minute)"
    assert schedule["FlexibleTimeWindow"] == {"Mode": "OFF"}
    target = schedule["Target"]
    assert target["Arn"] == {"Fn::GetAtt": ["BreakerControllerFunction", "Arn"]}
    assert json.loads(target["Input"]) == {"breakerProbe": {}}
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == 0
    # ...through a role that may invoke the controller and nothing else
    role = properties(cfn, "BreakerProbeScheduleRole")
    [trust] = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    statements = role_statements(cfn, "BreakerProbeScheduleRole")
    assert [(s["Action"], s["Resource"]) for s in statements] == [
        ("lambda:InvokeFunction", {"Fn::GetAtt": ["BreakerControllerFunction", "Arn"]})
    ]


def test_the_backstop_rule_ticks_the_controller_without_eventbridge_scheduler(
    cfn: dict[str, Any],
) -> None:
    # Given the template, Then an EventBridge rule (not a Scheduler schedule) ticks the
    # controller every 5 minutes with the backstop's input, without retries (issue 17)
    rule = cfn["Resources"]["BreakerBackstopRule"]
    assert rule["Type"] == "AWS::Events::Rule"
    assert rule["Properties"]["ScheduleExpression"] == "rate(5 minutes)"
    assert rule["Properties"]["State"] == "ENABLED"
    [target] = rule["Properties"]["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": ["BreakerControllerFunction", "Arn"]}
    assert json.loads(target["Input"]) == {"breakerProbe": {"trigger": "backstop"}}
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == 0
    # ...its period the one the longest hold counts
    assert rate_seconds(rule["Properties"]["ScheduleExpression"]) == BACKSTOP_PERIOD_SECONDS
    # ...and only after the controller's rights exist
    depends = rule["DependsOn"]
    assert "BreakerControllerMappingAccess" in ([depends] if isinstance(depends, str) else depends)


def test_only_the_backstop_rule_may_invoke_the_controller_through_eventbridge(
    cfn: dict[str, Any],
) -> None:
    # Given the template's Lambda permissions for EventBridge
    permissions = [
        p["Properties"]
        for p in resources_of_type(cfn, "AWS::Lambda::Permission").values()
        if p["Properties"]["Principal"] == "events.amazonaws.com"
    ]
    # Then there is one: invoking the controller, scoped to the backstop rule's ARN
    assert permissions == [
        {
            "Action": "lambda:InvokeFunction",
            "FunctionName": {"Fn::GetAtt": ["BreakerControllerFunction", "Arn"]},
            "Principal": "events.amazonaws.com",
            "SourceArn": {"Fn::GetAtt": ["BreakerBackstopRule", "Arn"]},
        }
    ]


def test_the_longest_hold_plus_a_sweep_minute_fits_the_minimum_retention() -> None:
    # Given the minimum retention the template's Rule accepts
    minimum = MIN_RETENTION_SECONDS_WITH_BREAKER
    # Then a quarter of it, a backstop period and the sweep's minute fit in it, and a minute
    # less would not leave room
    assert longest_hold_seconds(minimum) + SWEEP_RECEIVE_SECONDS <= minimum
    assert longest_hold_seconds(minimum - 60) + SWEEP_RECEIVE_SECONDS > minimum - 60
    # ...and the run of issue 17 (600 s) has room
    assert longest_hold_seconds(600) + SWEEP_RECEIVE_SECONDS <= 600


def test_disabled_keeps_the_controller_to_restore_the_mapping() -> None:
    # Given CircuitBreaker=Disabled, When the conditions are decided as CloudFormation would
    template = decided(translated({"CircuitBreaker": "Disabled"}), {"CircuitBreaker": "Disabled"})
    resources = set(template["Resources"])
    # Then the controller and its schedule stay (they restore the mapping), told it is off
    assert {"BreakerControllerFunction", "BreakerProbeSchedule", "BreakerBackstopRule"} <= resources
    assert environment(template, "BreakerControllerFunction")["BREAKER_ENABLED"] == "false"
    # ...while the consumer neither reports nor may invoke it, and the alarm is gone
    assert environment(template)["BREAKER_ENABLED"] == "false"
    assert environment(template)["BREAKER_CONTROLLER_FUNCTION"] == ""
    assert not {"ConsumerReportsToController", "BreakerOpenTooLongAlarm"} & resources


# Parameters and rules ----------------------------------------------------------------------


def resolve(**overrides: object) -> dict[str, str]:
    return resolved_parameters(
        sam_template(), {"DownstreamUrl": "https://downstream.example.com/m", **overrides}
    )


def test_the_breaker_needs_a_maximum_concurrency_of_three() -> None:
    with pytest.raises(ParameterError) as raised:
        resolve(CircuitBreaker="Enabled", MaximumConcurrency=2)
    assert "CircuitBreakerNeedsMaximumConcurrencyOfThree" in str(raised.value)
    assert resolve(CircuitBreaker="Enabled", MaximumConcurrency=3)["MaximumConcurrency"] == "3"
    assert resolve(CircuitBreaker="Disabled", MaximumConcurrency=2)["CircuitBreaker"] == "Disabled"


@pytest.mark.parametrize("retention", [60, 120, 240, 360, MIN_RETENTION_SECONDS_WITH_BREAKER - 1])
def test_a_retention_that_leaves_the_breaker_no_room_is_refused(retention: int) -> None:
    # Given the breaker enabled and a retention below the minimum: a quarter of it, plus the
    # backstop's period (300 s) and a sweep minute, must fit in it (r/4 + 360 <= r: 480 s)
    with pytest.raises(ParameterError) as raised:
        resolve(CircuitBreaker="Enabled", SourceQueueRetentionSeconds=retention)
    # Then the deployment is refused, saying why
    assert "BreakerNeedsRetentionRoom" in str(raised.value)
    # ...while the breaker off accepts it
    assert resolve(CircuitBreaker="Disabled", SourceQueueRetentionSeconds=retention)


@pytest.mark.parametrize("retention", [MIN_RETENTION_SECONDS_WITH_BREAKER, 600, 345_600])
def test_a_retention_with_room_is_accepted(retention: int) -> None:
    assert resolve(SourceQueueRetentionSeconds=retention)["SourceQueueRetentionSeconds"] == str(
        retention
    )


@pytest.mark.parametrize(
    ("codes", "accepted"), [("401,403", True), ("", True), ("401", True), ("500", False)]
)
def test_pause_statuses_are_4xx(codes: str, accepted: bool) -> None:
    pattern = translated()["Parameters"]["BreakerPauseStatusCodes"]["AllowedPattern"]
    assert (re.fullmatch(pattern, codes) is not None) is accepted


@pytest.mark.parametrize(
    ("url", "accepted"),
    [
        ("", True),
        ("https://downstream.example.com/health", True),
        ("http://127.0.0.1:8080/health", True),
        ("http://downstream.example.com/health", False),
    ],
)
def test_the_probe_url_follows_the_downstream_urls_rule(url: str, accepted: bool) -> None:
    pattern = translated()["Parameters"]["BreakerProbeUrl"]["AllowedPattern"]
    assert (re.fullmatch(pattern, url) is not None) is accepted


# The alarm and the dashboard ---------------------------------------------------------------


def test_the_alarm_fires_when_never_closed_or_never_reported(cfn: dict[str, Any]) -> None:
    alarm = properties(cfn, "BreakerOpenTooLongAlarm")
    # Then it watches the state the controller publishes on every tick: its lowest value over
    # one period of BreakerOpenAlarmSeconds at least half-open (never closed the whole time)
    assert (alarm["MetricName"], alarm["Statistic"]) == ("BreakerState", "Minimum")
    assert alarm["Period"] == {"Ref": "BreakerOpenAlarmSeconds"}
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (
        STATE_GAUGE[BreakerState.HALF_OPEN],
        "GreaterThanOrEqualToThreshold",
    )
    # ...and no state at all (no tick, or an unreadable mapping) is an alarm too
    assert alarm["TreatMissingData"] == "breaching"


def test_the_dashboard_shows_the_breakers_state(cfn: dict[str, Any]) -> None:
    body = dashboard_body(cfn)
    [widget] = [w for w in body["widgets"] if "Circuit breaker" in w["properties"]["title"]]
    shown = {metric[1] for metric in widget["properties"]["metrics"]}
    assert shown >= {"BreakerState", "BreakerOpened", "BreakerHalfOpened", "BreakerClosed"}
