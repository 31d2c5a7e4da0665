"""template.yaml's circuit breaker: its parameters and rule, the scheduled probe and its role, the
function's rights on its own mapping (and nothing more), its environment, the alarm and the
dashboard widget; all gone with CircuitBreaker=Disabled."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from local.moto_stack import parameter_defaults, sam_template, translated
from local.template import ParameterError, resolved_parameters
from tests.support.template import decided, resources_of_type
from tests.template.test_alarms_and_dashboard import dashboard_body

BREAKER_RESOURCES = {
    "BreakerMappingAccess",
    "BreakerProbeScheduleRole",
    "BreakerProbeSchedule",
    "BreakerOpenTooLongAlarm",
}


@pytest.fixture(scope="module")
def cfn() -> dict[str, Any]:
    return translated()


def properties(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    resource: dict[str, Any] = template["Resources"][logical_id]["Properties"]
    return resource


def environment(template: dict[str, Any]) -> dict[str, Any]:
    variables: dict[str, Any] = properties(template, "ConsumerFunction")["Environment"]["Variables"]
    return variables


def test_the_breaker_is_on_by_default_as_the_study_advises() -> None:
    # Given the template's defaults, Then the breaker is enabled, probing the downstream's own
    # URL, and alarming after half an hour open
    defaults = parameter_defaults()
    assert defaults["CircuitBreaker"] == "Enabled"
    assert defaults["BreakerProbeUrl"] == ""
    assert defaults["BreakerOpenAlarmSeconds"] == 1800


def test_the_function_is_told_what_the_breaker_needs(cfn: dict[str, Any]) -> None:
    # Given the function's environment
    variables = environment(cfn)
    # Then it carries the switch, the probe URL, the configured concurrency and the queue's ARN
    assert variables["BREAKER_ENABLED"] == {"Fn::If": ["BreakerEnabled", "true", "false"]}
    assert variables["BREAKER_PROBE_URL"] == {"Ref": "BreakerProbeUrl"}
    assert variables["MAXIMUM_CONCURRENCY"] == {"Ref": "MaximumConcurrency"}
    assert variables["SOURCE_QUEUE_ARN"] == {"Fn::GetAtt": ["SourceQueue", "Arn"]}
    # ...the same MaximumConcurrency the mapping starts with, which closing restores
    mapping = properties(cfn, "ConsumerFunctionSourceQueue")
    assert mapping["ScalingConfig"]["MaximumConcurrency"] == {"Ref": "MaximumConcurrency"}


def test_disabled_leaves_no_breaker_resource_and_tells_the_function() -> None:
    # Given CircuitBreaker=Disabled, When the conditions are decided as CloudFormation would
    template = decided(translated({"CircuitBreaker": "Disabled"}), {"CircuitBreaker": "Disabled"})
    # Then no breaker resource exists and the function is told the breaker is off
    assert not BREAKER_RESOURCES & set(template["Resources"])
    assert environment(template)["BREAKER_ENABLED"] == "false"
    # ...while enabled, every one exists
    enabled = decided(translated(), {})
    assert set(enabled["Resources"]) >= BREAKER_RESOURCES
    assert environment(enabled)["BREAKER_ENABLED"] == "true"


def resolve(**overrides: object) -> dict[str, str]:
    return resolved_parameters(
        sam_template(), {"DownstreamUrl": "https://downstream.example.com/m", **overrides}
    )


def test_the_breaker_needs_a_maximum_concurrency_of_three() -> None:
    # Given the breaker enabled and MaximumConcurrency 2, When the parameters are resolved
    with pytest.raises(ParameterError) as raised:
        resolve(CircuitBreaker="Enabled", MaximumConcurrency=2)
    # Then the deployment is refused, saying what to change
    assert "CircuitBreakerNeedsMaximumConcurrencyOfThree" in str(raised.value)
    assert "MaximumConcurrency of at least 3" in str(raised.value)
    # ...while 3, or 2 without the breaker, are accepted
    assert resolve(CircuitBreaker="Enabled", MaximumConcurrency=3)["MaximumConcurrency"] == "3"
    assert resolve(CircuitBreaker="Disabled", MaximumConcurrency=2)["CircuitBreaker"] == "Disabled"


@pytest.mark.parametrize(
    ("url", "accepted"),
    [
        ("", True),
        ("https://downstream.example.com/health", True),
        ("http://127.0.0.1:8080/health", True),
        ("http://downstream.example.com/health", False),
        ("ftp://downstream.example.com/health", False),
    ],
)
def test_the_probe_url_follows_the_downstream_urls_rule(url: str, accepted: bool) -> None:
    # Given the BreakerProbeUrl pattern, When a URL is matched against it
    pattern = translated()["Parameters"]["BreakerProbeUrl"]["AllowedPattern"]
    # Then empty, https:// or loopback http:// is accepted, anything else refused
    assert (re.fullmatch(pattern, url) is not None) is accepted


def test_the_probe_runs_every_minute_on_time_without_retries(cfn: dict[str, Any]) -> None:
    # Given the probe's schedule
    schedule = properties(cfn, "BreakerProbeSchedule")
    assert cfn["Resources"]["BreakerProbeSchedule"]["Condition"] == "BreakerEnabled"
    # Then it runs once a minute, at the minute, enabled
    assert schedule["ScheduleExpression"] == "rate(1 minute)"
    assert schedule["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert schedule["State"] == "ENABLED"
    # ...invoking the consumer with exactly the probe's shape, through its own role
    target = schedule["Target"]
    assert target["Arn"] == {"Fn::GetAtt": ["ConsumerFunction", "Arn"]}
    assert target["RoleArn"] == {"Fn::GetAtt": ["BreakerProbeScheduleRole", "Arn"]}
    assert json.loads(target["Input"]) == {"breakerProbe": {}}
    # ...and never retries: the next minute's probe is the retry
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == 0


def test_the_function_recognises_the_schedules_input(cfn: dict[str, Any]) -> None:
    # Given the schedule's input, When the function classifies it
    from consumer.app import EventShape, classify  # noqa: PLC0415

    event = json.loads(properties(cfn, "BreakerProbeSchedule")["Target"]["Input"])
    # Then it is the breaker's probe
    assert classify(event) is EventShape.BREAKER_PROBE


def test_the_schedules_role_may_invoke_the_consumer_and_nothing_else(cfn: dict[str, Any]) -> None:
    # Given the schedule's role
    role = properties(cfn, "BreakerProbeScheduleRole")
    # Then only EventBridge Scheduler of this account may assume it
    [trust] = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Action"] == "sts:AssumeRole"
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    # ...and it grants one action on one resource: invoking the consumer
    statements = [s for policy in role["Policies"] for s in policy["PolicyDocument"]["Statement"]]
    assert [(s["Effect"], s["Action"], s["Resource"]) for s in statements] == [
        ("Allow", "lambda:InvokeFunction", {"Fn::GetAtt": ["ConsumerFunction", "Arn"]})
    ]


def test_the_function_may_read_and_switch_its_own_mapping_only(cfn: dict[str, Any]) -> None:
    # Given the breaker's policy
    resource = cfn["Resources"]["BreakerMappingAccess"]
    policy = resource["Properties"]
    # Then it is attached to the function's role, as a resource of its own (no cycle)
    assert resource["Type"] == "AWS::IAM::Policy"
    assert policy["Roles"] == [{"Ref": "ConsumerFunctionRole"}]
    statements = {s["Sid"]: s for s in policy["PolicyDocument"]["Statement"]}
    assert set(statements) == {"ReadAndSwitchOwnMapping", "FindOwnMapping"}
    # ...reading and changing exactly the mapping SAM makes of the function's SQS event
    own = statements["ReadAndSwitchOwnMapping"]
    assert own["Effect"] == "Allow"
    assert sorted(own["Action"]) == [
        "lambda:GetEventSourceMapping",
        "lambda:UpdateEventSourceMapping",
    ]
    assert own["Resource"] == {
        "Fn::Sub": "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}"
        ":event-source-mapping:${ConsumerFunctionSourceQueue}"
    }
    [mapping] = resources_of_type(cfn, "AWS::Lambda::EventSourceMapping")
    assert mapping == "ConsumerFunctionSourceQueue"
    assert properties(cfn, mapping)["EventSourceArn"] == {"Fn::GetAtt": ["SourceQueue", "Arn"]}
    # ...and listing mappings, which accepts no resource but "*", kept to this Region
    find = statements["FindOwnMapping"]
    assert (find["Action"], find["Resource"]) == ("lambda:ListEventSourceMappings", "*")
    assert find["Condition"] == {"StringEquals": {"aws:RequestedRegion": {"Ref": "AWS::Region"}}}
    # ...and no other Lambda right anywhere in the function's role
    role = properties(cfn, "ConsumerFunctionRole")
    role_text = json.dumps(role["Policies"])
    assert "lambda:" not in role_text


def test_the_alarm_fires_when_every_probe_of_the_period_found_it_open(
    cfn: dict[str, Any],
) -> None:
    # Given the breaker's alarm
    alarm = properties(cfn, "BreakerOpenTooLongAlarm")
    # Then it watches the state the probe reports, as the lowest value over one period of
    # BreakerOpenAlarmSeconds: open (2) the whole time
    assert (alarm["MetricName"], alarm["Statistic"]) == ("BreakerState", "Minimum")
    assert alarm["Period"] == {"Ref": "BreakerOpenAlarmSeconds"}
    assert alarm["EvaluationPeriods"] == 1
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (
        2,
        "GreaterThanOrEqualToThreshold",
    )
    # ...every allowed value is a period CloudWatch accepts (a multiple of 60, at most a day)
    allowed = translated()["Parameters"]["BreakerOpenAlarmSeconds"]["AllowedValues"]
    assert all(int(value) % 60 == 0 and int(value) <= 86_400 for value in allowed)
    # ...and the value the function reports for open is the alarm's threshold
    from consumer.breaker import STATE_GAUGE, BreakerState  # noqa: PLC0415

    assert STATE_GAUGE[BreakerState.OPEN] == alarm["Threshold"]


def test_the_dashboard_shows_the_breakers_state(cfn: dict[str, Any]) -> None:
    # Given the dashboard with its variables filled in
    body = dashboard_body(cfn)
    # When the breaker's widget is found
    [widget] = [w for w in body["widgets"] if "Circuit breaker" in w["properties"]["title"]]
    shown = {metric[1] for metric in widget["properties"]["metrics"]}
    # Then it shows the state, the transitions and the records failed without a call
    assert shown == {
        "BreakerState",
        "BreakerOpened",
        "BreakerHalfOpened",
        "BreakerClosed",
        "BreakerShortCircuited",
    }
