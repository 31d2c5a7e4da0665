"""template.yaml as the tests read it: parsed, translated by aws-sam-translator, resolved.

Fixtures build their resources from these values, so the tests cannot drift from the template.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

from local.template import (
    ROOT,
    SOURCE_TEMPLATE,
    code_locations,
    decide_conditions,
    load_template,
    translate,
    with_code_uris,
)
from local.template import parameter_defaults as _defaults_of

__all__ = [
    "ROOT",
    "decided",
    "parameter_defaults",
    "resources_of_type",
    "sam_template",
    "translated",
]

REGION = "us-east-1"
REQUIRED_PARAMETERS = {"DownstreamUrl": "https://downstream.example.com/messages"}


@functools.cache
def _sam_template() -> dict[str, Any]:
    return load_template(SOURCE_TEMPLATE)


def sam_template() -> dict[str, Any]:
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
