"""template.yaml's alarms, their encrypted topic, the dashboard and the failed-jobs queue."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from local.aws.moto_stack import parameter_defaults, translated
from tests.support.template import resources_of_type

SERVICE = "sqs-backoff-consumer"


@pytest.fixture(scope="module")
def cfn() -> dict[str, Any]:
    return translated()


def alarms(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource["Properties"]
        for logical_id, resource in resources_of_type(template, "AWS::CloudWatch::Alarm").items()
    }


def metric_of(alarm: dict[str, Any]) -> tuple[Any, str, dict[str, Any]]:
    dimensions = {d["Name"]: d["Value"] for d in alarm["Dimensions"]}
    return alarm["Namespace"], alarm["MetricName"], dimensions


def test_the_failed_jobs_queue_keeps_records_14_days_encrypted(cfn: dict[str, Any]) -> None:
    # Given the translated template's failed-jobs queue
    queue = cfn["Resources"]["FailedJobsQueue"]["Properties"]
    # Then it keeps records 14 days (the maximum), encrypted with SQS managed keys
    assert queue["MessageRetentionPeriod"] == 1_209_600
    assert queue["SqsManagedSseEnabled"] is True
    # ...large enough for an OnFailure record wrapping a 1 MiB payload's worth of job
    assert queue["MaximumMessageSize"] == 1_048_576


def test_each_alarm_watches_what_the_runbook_says(cfn: dict[str, Any]) -> None:
    # Given the translated template's alarms
    watched = {logical_id: metric_of(alarm) for logical_id, alarm in alarms(cfn).items()}
    # Then each watches the metric and dimensions the runbook names, and there are no others
    assert watched == {
        "DeadLetterQueueNotEmptyAlarm": (
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            {"QueueName": {"Fn::GetAtt": ["DeadLetterQueue", "QueueName"]}},
        ),
        "FailedJobsQueueNotEmptyAlarm": (
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            {"QueueName": {"Fn::GetAtt": ["FailedJobsQueue", "QueueName"]}},
        ),
        "SourceQueueOldestMessageAlarm": (
            "AWS/SQS",
            "ApproximateAgeOfOldestMessage",
            {"QueueName": {"Fn::GetAtt": ["SourceQueue", "QueueName"]}},
        ),
        "FunctionErrorsAlarm": (
            "AWS/Lambda",
            "Errors",
            {"FunctionName": {"Ref": "ConsumerFunction"}},
        ),
        "FunctionThrottlesAlarm": (
            "AWS/Lambda",
            "Throttles",
            {"FunctionName": {"Ref": "ConsumerFunction"}},
        ),
        "VisibilityChangeFailedAlarm": (
            {"Ref": "MetricsNamespace"},
            "VisibilityChangeFailed",
            {"service": SERVICE},
        ),
        "BreakerOpenTooLongAlarm": (
            {"Ref": "MetricsNamespace"},
            "BreakerState",
            {"service": SERVICE},
        ),
        "DependencyUnreachableAlarm": (
            {"Ref": "MetricsNamespace"},
            "DependencyUnreachable",
            {"service": SERVICE},
        ),
        "BatchOutrunsTimeoutAlarm": (
            {"Ref": "MetricsNamespace"},
            "DeadlineSkipped",
            {"service": SERVICE},
        ),
    }


def test_the_custom_metric_alarm_uses_the_functions_service_dimension(cfn: dict[str, Any]) -> None:
    # Given the function's environment, Then its service name is the one the alarm's dimension
    # names: Powertools adds service=<POWERTOOLS_SERVICE_NAME> to every metric
    environment = cfn["Resources"]["ConsumerFunction"]["Properties"]["Environment"]["Variables"]
    assert environment["POWERTOOLS_SERVICE_NAME"] == SERVICE
    assert environment["POWERTOOLS_METRICS_NAMESPACE"] == {"Ref": "MetricsNamespace"}


def test_every_alarm_notifies_the_topic_on_alarm_and_on_recovery(cfn: dict[str, Any]) -> None:
    # Given each alarm of the translated template
    for logical_id, alarm in alarms(cfn).items():
        # Then it notifies the topic on alarm and on recovery
        assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}], logical_id
        assert alarm["OKActions"] == [{"Ref": "AlarmTopic"}], logical_id
        # No data (an idle queue, a function never invoked) is not an alarm; the breaker's
        # controller reports its state every minute, and its silence is one
        expected = "breaching" if logical_id == "BreakerOpenTooLongAlarm" else "notBreaching"
        assert alarm["TreatMissingData"] == expected, logical_id
        assert alarm["Threshold"] is not None


def test_queue_depth_alarms_fire_on_the_first_message(cfn: dict[str, Any]) -> None:
    # Given the dead-letter and failed-jobs queue depth alarms
    for logical_id in ("DeadLetterQueueNotEmptyAlarm", "FailedJobsQueueNotEmptyAlarm"):
        alarm = alarms(cfn)[logical_id]
        # Then each fires at one visible message
        assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (
            1,
            "GreaterThanOrEqualToThreshold",
        )


def test_the_oldest_message_threshold_is_a_parameter() -> None:
    # Given a threshold of 10 minutes, Then the alarm uses it
    alarm = alarms(translated({"OldestMessageAgeAlarmSeconds": 600}))[
        "SourceQueueOldestMessageAlarm"
    ]
    assert alarm["Threshold"] == {"Ref": "OldestMessageAgeAlarmSeconds"}
    assert parameter_defaults()["OldestMessageAgeAlarmSeconds"] == 3600


def test_the_topic_is_encrypted_with_a_key_cloudwatch_may_use(cfn: dict[str, Any]) -> None:
    # Given the alarm topic and its key
    topic = cfn["Resources"]["AlarmTopic"]["Properties"]
    # Then the topic uses the customer managed key, not alias/aws/sns: CloudWatch cannot
    # publish to a topic under the AWS managed key; the key rotates and lets CloudWatch use it
    assert topic["KmsMasterKeyId"] == {"Ref": "AlarmTopicKey"}
    key = cfn["Resources"]["AlarmTopicKey"]["Properties"]
    assert key["EnableKeyRotation"] is True
    [grant] = [
        s
        for s in key["KeyPolicy"]["Statement"]
        if s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    ]
    assert set(grant["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
    # ...and the topic admits this account's alarms only
    [statement] = cfn["Resources"]["AlarmTopicPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Action"] == "sns:Publish"
    assert statement["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert "aws:SourceArn" in statement["Condition"]["ArnLike"]


def test_the_email_subscription_exists_only_with_an_address(cfn: dict[str, Any]) -> None:
    # Given the email subscription
    subscription = cfn["Resources"]["AlarmEmailSubscription"]
    # Then it exists only under the HasAlarmEmail condition, which holds for a non-empty address
    assert subscription["Condition"] == "HasAlarmEmail"
    assert subscription["Properties"]["Protocol"] == "email"
    assert cfn["Conditions"]["HasAlarmEmail"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]
    }
    assert parameter_defaults()["AlarmEmail"] == ""


@pytest.mark.parametrize(
    ("address", "accepted"),
    [("", True), ("oncall@example.com", True), ("not an address", False), ("a@", False)],
)
def test_the_email_parameter_accepts_an_address_or_nothing(address: str, accepted: bool) -> None:
    # Given the AlarmEmail parameter's pattern, When an address is matched against it
    pattern = translated()["Parameters"]["AlarmEmail"]["AllowedPattern"]
    # Then an address or nothing is accepted, anything else refused
    assert (re.fullmatch(pattern, address) is not None) is accepted


def dashboard_body(cfn: dict[str, Any]) -> dict[str, Any]:
    """The dashboard JSON with Fn::Sub's variables filled in as CloudFormation would."""
    text, variables = cfn["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    values = {
        "AWS::Region": "eu-west-1",
        "Namespace": "SqsBackoffConsumer",
        "Service": variables["Service"],
        "DeadLetterQueue.QueueName": "stack-dlq",
        "FailedJobsQueue.QueueName": "stack-jobs",
        "SourceQueue.QueueName": "stack-source",
        "ConsumerFunction": "stack-consumer",
        "OldestMessageAgeAlarmSeconds": "3600",
    }
    placeholders = set(re.findall(r"\$\{([^}]+)\}", text))
    assert placeholders == set(values), "every placeholder is a variable or a resource"
    for name, value in values.items():
        text = text.replace("${" + name + "}", value)
    body: dict[str, Any] = json.loads(text)
    return body


def test_the_dashboard_is_valid_json_and_shows_what_the_issue_lists(cfn: dict[str, Any]) -> None:
    # Given the dashboard body with its variables filled in as CloudFormation would
    body = dashboard_body(cfn)
    # When its JSON is parsed and its metrics collected
    shown = {
        (metric[0], metric[1])
        for widget in body["widgets"]
        for metric in widget["properties"]["metrics"]
    }
    # Then it shows every metric the issue lists
    assert shown >= {
        ("SqsBackoffConsumer", "Delivered"),
        ("SqsBackoffConsumer", "DownstreamFailed3xx"),
        ("SqsBackoffConsumer", "DownstreamFailed4xx"),
        ("SqsBackoffConsumer", "DownstreamFailed5xx"),
        ("SqsBackoffConsumer", "DownstreamFailedTimeout"),
        ("SqsBackoffConsumer", "BackoffSeconds"),
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
        ("AWS/SQS", "ApproximateAgeOfOldestMessage"),
        ("AWS/Lambda", "Duration"),
        ("AWS/Lambda", "ConcurrentExecutions"),
    }
    # ...every custom metric with the service dimension Powertools adds
    for widget in body["widgets"]:
        for metric in widget["properties"]["metrics"]:
            if metric[0] == "SqsBackoffConsumer":
                assert metric[2:4] == ["service", SERVICE]


def test_the_dashboards_url_is_an_output(cfn: dict[str, Any]) -> None:
    # Given the stack's DashboardUrl output
    url = cfn["Outputs"]["DashboardUrl"]["Value"]["Fn::Sub"]
    # Then it links to this dashboard in the console of the stack's region
    assert url.startswith("https://${AWS::Region}.console.aws.amazon.com/cloudwatch/home")
    assert url.endswith("#dashboards:name=${Dashboard}")


def test_failed_jobs_stay_on_a_standard_queue_when_the_queues_are_fifo() -> None:
    # Given FIFO source and dead-letter queues
    cfn = translated({"QueueType": "fifo"})

    # Then the OnFailure destination is still the failed-jobs queue, a standard one: Lambda
    # sends invocation records to standard queues only
    # (the breaker controller has one too, without a destination: test_circuit_breaker.py)
    config = cfn["Resources"]["ConsumerFunctionEventInvokeConfig"]
    destination = config["Properties"]["DestinationConfig"]["OnFailure"]["Destination"]
    assert destination == {"Fn::GetAtt": ["FailedJobsQueue", "Arn"]}
    assert "FifoQueue" not in cfn["Resources"]["FailedJobsQueue"]["Properties"]
    # ...while the DLQ, a FIFO queue here, could not have been one
    assert "FifoQueue" in cfn["Resources"]["DeadLetterQueue"]["Properties"]
