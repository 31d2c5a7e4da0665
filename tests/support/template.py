"""Helpers for the tests that read the translated template."""

from __future__ import annotations

from typing import Any

from local.aws.moto_stack import REQUIRED_PARAMETERS, parameter_defaults
from local.aws.template import decide_conditions


def resources_of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == resource_type
    }


def resolve_parameter(value: Any, parameters: dict[str, Any]) -> Any:
    """The value of a {"Ref": Parameter} (or a literal) under the given parameter values."""
    if isinstance(value, dict) and set(value) == {"Ref"} and value["Ref"] in parameters:
        return parameters[value["Ref"]]
    return value


def decided(template: dict[str, Any], parameter_values: dict[str, Any]) -> dict[str, Any]:
    """The template with every Fn::If decided for these parameter values (defaults for the rest)
    and every AWS::NoValue removed: what CloudFormation would create."""
    given = {**parameter_defaults(), **REQUIRED_PARAMETERS, **parameter_values}
    return decide_conditions(template, {name: str(value) for name, value in given.items()})
