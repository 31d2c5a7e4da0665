"""template.yaml as the tests and benchmarks read it, in process: translated by aws-sam-translator,
its queues created in moto (`mock_aws`) with the template's own properties, and the function's
environment resolved from it, so that fixtures cannot drift from the template.

The local system deploys the built template through the emulator's CloudFormation instead
(local.aws.deploy); both resolve intrinsics with local.aws.intrinsics.
"""

from __future__ import annotations

import copy
import functools
import json
from dataclasses import dataclass, field
from typing import Any

from local.aws.intrinsics import Resolver, pseudo_parameters
from local.aws.template import (
    SOURCE_TEMPLATE,
    code_locations,
    decide_conditions,
    load_template,
    translate,
    with_code_uris,
)
from local.aws.template import parameter_defaults as _defaults_of

STACK_NAME = "sqs-backoff-consumer"
ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
PARTITION = "aws"
REQUIRED_PARAMETERS = {"DownstreamUrl": "https://downstream.example.com/messages"}


@functools.cache
def _sam_template() -> dict[str, Any]:
    return load_template(SOURCE_TEMPLATE)


def sam_template() -> dict[str, Any]:
    """template.yaml as written (a copy: callers may change it)."""
    return copy.deepcopy(_sam_template())


def parameter_defaults() -> dict[str, Any]:
    return _defaults_of(_sam_template())


def translated(parameter_values: dict[str, Any] | None = None) -> dict[str, Any]:
    """The CloudFormation template SAM would deploy, with local code paths as S3 placeholders."""
    template = _sam_template()
    placeholders = {
        logical_id: f"s3://placeholder-bucket/{folder.strip('/')}.zip"
        for logical_id, (_, folder) in code_locations(template).items()
    }
    values = {**REQUIRED_PARAMETERS, **(parameter_values or {})}
    return translate(with_code_uris(template, placeholders), values, REGION)


@dataclass
class Stack:
    """Resolved names of the template's resources, as CloudFormation would hand them out."""

    parameters: dict[str, Any]
    template: dict[str, Any]
    refs: dict[str, str] = field(default_factory=dict)
    attributes: dict[tuple[str, str], str] = field(default_factory=dict)

    def resolve(self, value: Any) -> Any:
        resolver = Resolver(
            pseudo_parameters(STACK_NAME, REGION, ACCOUNT_ID, PARTITION),
            self.parameters,
            ref=self.refs.__getitem__,
            get_att=lambda logical_id, name: self.attributes[(logical_id, name)],
        )
        return resolver(value)

    def resource_properties(self, logical_id: str) -> dict[str, Any]:
        properties: dict[str, Any] = self.resolve(
            self.template["Resources"][logical_id]["Properties"]
        )
        return properties

    def function_environment(self) -> dict[str, str]:
        function = self.template["Resources"]["ConsumerFunction"]
        variables = self.resolve(function["Properties"]["Environment"]["Variables"])
        return {name: str(value) for name, value in variables.items()}


def load_stack(parameter_overrides: dict[str, Any] | None = None) -> Stack:
    parameters = {**parameter_defaults(), **(parameter_overrides or {})}
    parameters.setdefault("DownstreamUrl", "http://127.0.0.1:9/unset")
    # The template as CloudFormation would create it: conditions decided.
    template = decide_conditions(translated(parameters), {k: str(v) for k, v in parameters.items()})
    return Stack(parameters=parameters, template=template)


def create_queues(stack: Stack, sqs: Any) -> None:
    """Create the template's two queues in moto with exactly the template's properties."""
    for logical_id, default_name in (
        ("DeadLetterQueue", f"{STACK_NAME}-DeadLetterQueue"),
        ("SourceQueue", None),
    ):
        properties = stack.resource_properties(logical_id)
        name = properties.pop("QueueName", default_name)
        attributes = {
            key: json.dumps(value) if isinstance(value, dict) else _attribute_text(value)
            for key, value in properties.items()
        }
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        stack.refs[logical_id] = url
        stack.attributes[(logical_id, "Arn")] = f"arn:{PARTITION}:sqs:{REGION}:{ACCOUNT_ID}:{name}"


def _attribute_text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def create_idempotency_table(stack: Stack, dynamodb: Any) -> str:
    """Create the template's idempotency table in moto with the template's key schema; its name."""
    properties = stack.resource_properties("IdempotencyTable")
    name = f"{STACK_NAME}-IdempotencyTable"
    dynamodb.create_table(
        TableName=name,
        AttributeDefinitions=properties["AttributeDefinitions"],
        KeySchema=properties["KeySchema"],
        BillingMode=properties["BillingMode"],
    )
    dynamodb.update_time_to_live(
        TableName=name, TimeToLiveSpecification=properties["TimeToLiveSpecification"]
    )
    stack.refs["IdempotencyTable"] = name
    return name
