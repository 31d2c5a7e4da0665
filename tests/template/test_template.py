"""template.yaml as CloudFormation (translated by aws-sam-translator), point by point."""

from __future__ import annotations

import re
import tomllib
from typing import Any

import pytest

from consumer.sqs_actions import MAX_BATCHING_WINDOW_SECONDS
from local.aws.moto_stack import load_stack, parameter_defaults, sam_template, translated
from local.shared.paths import ROOT
from shared.backoff import MAX_VISIBILITY_TIMEOUT_SECONDS
from shared.config import Config
from tests.support.template import decided, resources_of_type

ENVIRONMENT_CONTRACT = {
    "DOWNSTREAM_URL",
    "DOWNSTREAM_TIMEOUT_SECONDS",
    "BACKOFF_BASE_SECONDS",
    "BACKOFF_JITTER_SECONDS",
    "BACKOFF_MAX_SECONDS",
    "MAX_RECEIVE_COUNT",
    "DEAD_LETTER_QUEUE_URL",
    "NON_RETRYABLE_STATUS_CODES",
    "POWERTOOLS_SERVICE_NAME",
    "POWERTOOLS_METRICS_NAMESPACE",
    "POWERTOOLS_LOG_LEVEL",
    "POWERTOOLS_TRACE_DISABLED",
}

# The function's settings that are template parameters, each passed through unchanged.
PARAMETER_OF = {
    "BACKOFF_BASE_SECONDS": "BackoffBaseSeconds",
    "BACKOFF_JITTER_SECONDS": "BackoffJitterSeconds",
    "BACKOFF_MAX_SECONDS": "BackoffMaxSeconds",
    "BACKOFF_STRATEGY": "BackoffStrategy",
    "MAX_RECEIVE_COUNT": "MaxReceiveCount",
    "NON_RETRYABLE_STATUS_CODES": "NonRetryableStatusCodes",
    "DELIVERY_CONCURRENCY": "DeliveryConcurrency",
    "SOURCE_QUEUE_RETENTION_SECONDS": "SourceQueueRetentionSeconds",
}


@pytest.fixture(scope="module")
def cfn() -> dict[str, Any]:
    return translated()


def only(template: dict[str, Any], resource_type: str) -> dict[str, Any]:
    [resource] = resources_of_type(template, resource_type).values()
    return resource


def properties(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    props: dict[str, Any] = template["Resources"][logical_id]["Properties"]
    return props


def function(template: dict[str, Any]) -> dict[str, Any]:
    return properties(template, "ConsumerFunction")


# Queues


def test_every_queue_is_encrypted_at_rest(cfn: dict[str, Any]) -> None:
    # Given every queue of the template, Then each is encrypted at rest with SQS-managed keys
    for logical_id in ("SourceQueue", "DeadLetterQueue", "FailedJobsQueue"):
        assert properties(cfn, logical_id)["SqsManagedSseEnabled"] is True


def test_dead_letter_queue_keeps_messages_14_days_and_longer_than_the_source(
    cfn: dict[str, Any],
) -> None:
    # Given the DLQ's retention and the source's largest, Then the DLQ keeps copies longest
    assert properties(cfn, "DeadLetterQueue")["MessageRetentionPeriod"] == 1_209_600
    # (SourceQueueRetentionSeconds is a String with a pattern: no retention of 13 days and a
    # second or more passes it)
    pattern = sam_template()["Parameters"]["SourceQueueRetentionSeconds"]["AllowedPattern"]
    assert re.fullmatch(pattern, str(1_209_600 - 86_400))
    longer = [str(n) for n in range(1_209_600 - 86_399, 1_209_601)] + ["9999999", "12096000"]
    assert not any(re.fullmatch(pattern, value) for value in longer)


def test_dead_letter_queue_accepts_messages_as_large_as_the_source(cfn: dict[str, Any]) -> None:
    # Given both queues' size limits, Then whatever the source holds fits in the DLQ
    source = properties(cfn, "SourceQueue")["MaximumMessageSize"]
    assert properties(cfn, "DeadLetterQueue")["MaximumMessageSize"] >= source


def test_source_redrives_to_the_dead_letter_queue_after_max_receive_count(
    cfn: dict[str, Any],
) -> None:
    # Given the source's redrive policy, Then it targets the DLQ after MaxReceiveCount
    redrive = properties(cfn, "SourceQueue")["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}
    assert redrive["maxReceiveCount"] == {"Ref": "MaxReceiveCount"}


def test_max_receive_count_has_one_source_of_truth(cfn: dict[str, Any]) -> None:
    # Given the function's environment and the redrive policy, Then one parameter feeds both
    environment = function(cfn)["Environment"]["Variables"]
    redrive = properties(cfn, "SourceQueue")["RedrivePolicy"]
    assert environment["MAX_RECEIVE_COUNT"] == redrive["maxReceiveCount"]


def test_source_visibility_timeout_is_at_least_six_function_timeouts(cfn: dict[str, Any]) -> None:
    # Given the queue's visibility timeout, Then it is AWS's recommended 6 function timeouts
    visibility = properties(cfn, "SourceQueue")["VisibilityTimeout"]
    assert visibility >= 6 * function(cfn)["Timeout"]


@pytest.mark.parametrize("queue_type", ["standard", "fifo"])
def test_dead_letter_queue_admits_only_the_source_queue(queue_type: str) -> None:
    # Given either queue type, deployed (conditions decided)
    stack = load_stack({"QueueType": queue_type})
    allow = stack.resolve(properties(stack.template, "DeadLetterQueue")["RedriveAllowPolicy"])
    # Then the DLQ admits redrives from the source queue alone, named as the source is (built
    # from the source queue's name: a GetAtt would be a circular reference)
    assert allow["redrivePermission"] == "byQueue"
    queue_name = stack.resolve(properties(stack.template, "SourceQueue")["QueueName"])
    assert allow["sourceQueueArns"] == [f"arn:aws:sqs:us-east-1:123456789012:{queue_name}"]


# Function and layer


def test_function_runtime_architecture_and_recursion_guard(cfn: dict[str, Any]) -> None:
    # Given the function, Then it runs python3.13 on arm64 and stops recursive loops
    props = function(cfn)
    assert props["Runtime"] == "python3.13"
    assert props["Architectures"] == ["arm64"]
    assert props["RecursiveLoop"] == "Terminate"
    assert props["Handler"] == "consumer.app.lambda_handler"


def test_third_party_dependencies_come_from_a_python313_layer(cfn: dict[str, Any]) -> None:
    # Given the layer and the function, Then dependencies ship in the layer, built by its Makefile
    sam = sam_template()["Resources"]
    layer = sam["DependenciesLayer"]
    # layers/Makefile installs the pinned wheels and compiles them (sam build runs its target)
    assert layer["Metadata"]["BuildMethod"] == "makefile"
    assert layer["Metadata"]["BuildArchitecture"] == "arm64"
    assert "build-DependenciesLayer:" in (ROOT / "layers/Makefile").read_text()
    assert layer["Properties"]["ContentUri"] == "layers/"
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    [layer_ref] = function(cfn)["Layers"]
    assert cfn["Resources"][layer_ref["Ref"]]["Type"] == "AWS::Lambda::LayerVersion"
    requirements = (ROOT / "layers/requirements.txt").read_text()
    for package in ("aws-lambda-powertools", "requests"):
        assert f"\n{package}" in requirements
    # The function's own code ships without them: no requirements file beside it
    code_uri = sam["ConsumerFunction"]["Properties"]["CodeUri"]
    assert not (ROOT / code_uri / "requirements.txt").exists()


def test_function_environment_is_the_contract(cfn: dict[str, Any]) -> None:
    # Given the function's environment, Then it holds the contract, each setting from its parameter
    variables = function(cfn)["Environment"]["Variables"]
    assert set(variables) >= ENVIRONMENT_CONTRACT
    assert variables["DEAD_LETTER_QUEUE_URL"] == {"Ref": "DeadLetterQueue"}
    for variable, parameter in PARAMETER_OF.items():
        assert variables[variable] == {"Ref": parameter}


def test_the_templates_defaults_are_the_functions_defaults() -> None:
    # Given the template's parameter defaults, and the function's own defaults (its environment
    # with nothing but the required settings)
    defaults = {variable: str(parameter_defaults()[p]) for variable, p in PARAMETER_OF.items()}
    required = {
        "DOWNSTREAM_URL": "https://downstream.example.com",
        "DEAD_LETTER_QUEUE_URL": "https://sqs.example.com/1/dlq",
    }
    # When the function reads each
    from_template = Config.from_environ({**defaults, **required})
    unset = Config.from_environ(required)
    # Then a deployment with default parameters behaves as the function does unconfigured
    assert from_template.backoff_policy == unset.backoff_policy
    assert from_template.non_retryable_status_codes == unset.non_retryable_status_codes
    assert from_template.delivery_concurrency == unset.delivery_concurrency


# Event source mapping and asynchronous invocations


def test_event_source_mapping_reports_batch_item_failures(cfn: dict[str, Any]) -> None:
    # Given the event source mapping, Then it reports item failures, its knobs from parameters
    mapping = only(cfn, "AWS::Lambda::EventSourceMapping")["Properties"]
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": ["SourceQueue", "Arn"]}
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    # (auto, a FIFO queue's missing window: see test_fifo_template.py)
    assert mapping["BatchSize"]["Fn::If"][2] == {"Ref": "BatchSize"}
    assert mapping["MaximumBatchingWindowInSeconds"]["Fn::If"][2]["Fn::If"][2] == {
        "Ref": "MaximumBatchingWindowInSeconds"
    }
    assert mapping["ScalingConfig"]["MaximumConcurrency"] == {"Ref": "MaximumConcurrency"}


def test_polling_parameters_respect_aws_limits() -> None:
    # Given the polling and async parameters, Then their ranges are AWS's own limits
    # (BatchSize, the batching window and MaximumConcurrency are patterns: test_deploy_safety.py)
    parameters = sam_template()["Parameters"]
    window = parameters["MaximumBatchingWindowInSeconds"]["AllowedPattern"]
    assert re.fullmatch(window, str(MAX_BATCHING_WINDOW_SECONDS))
    assert not re.fullmatch(window, str(MAX_BATCHING_WINDOW_SECONDS + 1))
    retries = parameters["MaximumRetryAttempts"]
    assert (retries["MinValue"], retries["MaxValue"]) == (0, 2)
    age = parameters["MaximumEventAgeInSeconds"]
    assert (age["MinValue"], age["MaxValue"]) == (60, 21_600)
    assert parameters["BackoffMaxSeconds"]["MaxValue"] == MAX_VISIBILITY_TIMEOUT_SECONDS


def test_event_invoke_config_comes_from_parameters_and_fails_over_to_the_failed_jobs_queue() -> (
    None
):
    # Given non-default parameter values, Then they reach the EventInvokeConfig
    cfn = translated({"MaximumRetryAttempts": 1, "MaximumEventAgeInSeconds": 600})
    # The consumer's (the breaker controller's drops stale events: test_circuit_breaker.py)
    config = cfn["Resources"]["ConsumerFunctionEventInvokeConfig"]["Properties"]
    assert config["MaximumRetryAttempts"] == 1
    assert config["MaximumEventAgeInSeconds"] == 600
    # ...and OnFailure records go to their own queue, never to the DLQ whose messages a native
    # redrive hands to the consumer
    assert config["DestinationConfig"]["OnFailure"]["Destination"] == {
        "Fn::GetAtt": ["FailedJobsQueue", "Arn"]
    }


# IAM


def statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    role = properties(template, "ConsumerFunctionRole")
    found: list[dict[str, Any]] = []
    for policy in role["Policies"]:
        # A conditional policy is checked as if its condition held.
        document = policy["Fn::If"][1] if "Fn::If" in policy else policy
        found.extend(document["PolicyDocument"]["Statement"])
    return found


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_function_uses_the_written_role_and_no_managed_policy(cfn: dict[str, Any]) -> None:
    # Given the function's role, Then it is the written one, with no managed policy
    assert function(cfn)["Role"] == {"Fn::GetAtt": ["ConsumerFunctionRole", "Arn"]}
    # (the breaker's controller and schedule have roles of their own:
    # tests/template/test_circuit_breaker.py)
    assert resources_of_type(cfn, "AWS::IAM::Role").keys() == {
        "ConsumerFunctionRole",
        "BreakerControllerRole",
        "BreakerProbeScheduleRole",
    }
    assert "ManagedPolicyArns" not in properties(cfn, "ConsumerFunctionRole")


# Wildcard actions and resources: tests/template/test_security.py, for every policy.


def test_sqs_rights_are_poller_rights_on_the_source_and_send_on_the_dlq(
    cfn: dict[str, Any],
) -> None:
    # Given every SQS right of the role, Then each is scoped to the queue that needs it
    sqs_grants: dict[str, set[str]] = {}
    for statement in statements(cfn):
        for action in as_list(statement["Action"]):
            if action.startswith("sqs:"):
                for resource in as_list(statement["Resource"]):
                    sqs_grants.setdefault(resource["Fn::GetAtt"][0], set()).add(action)
    assert sqs_grants == {
        "SourceQueue": {
            "sqs:ReceiveMessage",
            "sqs:DeleteMessage",
            "sqs:GetQueueAttributes",
            "sqs:ChangeMessageVisibility",
            "sqs:GetQueueUrl",
        },
        "DeadLetterQueue": {"sqs:SendMessage"},
        # Lambda sends the OnFailure records of direct invocations with the function's role.
        "FailedJobsQueue": {"sqs:SendMessage"},
    }


@pytest.mark.parametrize(
    ("tracing_mode", "trace_disabled"), [("Active", "false"), ("PassThrough", "true")]
)
def test_tracing_mode_decides_whether_the_function_loads_the_tracer(
    tracing_mode: str, trace_disabled: str
) -> None:
    # Given the template deployed with TracingMode
    stack = load_stack({"TracingMode": tracing_mode})
    variables = stack.template["Resources"]["ConsumerFunction"]["Properties"]["Environment"]
    # When the function's tracing switch is resolved
    resolved = stack.resolve(variables["Variables"]["POWERTOOLS_TRACE_DISABLED"])
    # Then Powertools' Tracer (and the X-Ray SDK with it) is on only with active tracing
    assert resolved == trace_disabled


@pytest.mark.parametrize(("mode", "granted"), [("Active", True), ("PassThrough", False)])
def test_passthrough_tracing_drops_the_xray_statement(mode: str, granted: bool) -> None:
    # Given a tracing mode, When CloudFormation decides the template's conditions
    parameters = {"TracingMode": mode}
    role = properties(decided(translated(parameters), parameters), "ConsumerFunctionRole")
    actions = {
        action
        for policy in role["Policies"]
        for statement in policy["PolicyDocument"]["Statement"]
        for action in as_list(statement["Action"])
    }
    # Then the X-Ray rights are granted exactly when tracing is active
    assert ("xray:PutTraceSegments" in actions) is granted


# Outputs and environments


def test_outputs_name_the_queues_and_the_function(cfn: dict[str, Any]) -> None:
    # Given the stack's outputs, Then they name what the tools and a reader need
    assert set(cfn["Outputs"]) >= {
        "SourceQueueUrl",
        "SourceQueueArn",
        "DeadLetterQueueUrl",
        "DeadLetterQueueArn",
        "ConsumerFunctionName",
        "ConsumerFunctionArn",
        "FailedJobsQueueUrl",
        "FailedJobsQueueArn",
        "AlarmTopicArn",
        "DashboardUrl",
    }


def test_samconfig_has_a_default_and_a_prod_environment() -> None:
    # Given samconfig.toml, Then default and prod are two stacks, each deployable
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    for environment in ("default", "prod"):
        deploy = config[environment]["deploy"]["parameters"]
        assert deploy["capabilities"] == "CAPABILITY_IAM"
        assert config[environment]["global"]["parameters"]["stack_name"]
    assert (
        config["default"]["global"]["parameters"]["stack_name"]
        != config["prod"]["global"]["parameters"]["stack_name"]
    )
