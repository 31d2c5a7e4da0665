"""The template's queues created in moto, and the function's environment resolved from it."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from tests.support.template import parameter_defaults, translated

STACK_NAME = "sqs-backoff-consumer"
ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
PARTITION = "aws"


@dataclass
class Stack:
    """Resolved names of the template's resources, as CloudFormation would hand them out."""

    parameters: dict[str, Any]
    template: dict[str, Any]
    refs: dict[str, str] = field(default_factory=dict)
    attributes: dict[tuple[str, str], str] = field(default_factory=dict)

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if isinstance(value, dict):
            if len(value) == 1:
                ((key, argument),) = value.items()
                if key == "Ref":
                    return self._ref(argument)
                if key == "Fn::GetAtt":
                    logical_id, name = (
                        argument.split(".") if isinstance(argument, str) else argument
                    )
                    return self.attributes[(logical_id, name)]
                if key == "Fn::Sub":
                    return re.sub(r"\$\{([^}]+)\}", lambda m: str(self._ref(m.group(1))), argument)
            return {key: self.resolve(item) for key, item in value.items()}
        return value

    def _ref(self, name: str) -> Any:
        pseudo = {
            "AWS::StackName": STACK_NAME,
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::Partition": PARTITION,
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        return self.refs[name]

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
    return Stack(parameters=parameters, template=translated(parameters))


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
