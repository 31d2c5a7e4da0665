"""template.yaml as the tests read it: parsed, translated by aws-sam-translator, resolved.

Fixtures build their resources from these values, so the tests cannot drift from the template.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = ROOT / "template.yaml"
REQUIRED_PARAMETERS = {"DownstreamUrl": "https://downstream.example.com/messages"}


class _NoManagedPolicies:
    """The template names no managed policy, so the translator never needs IAM to look one up."""

    def load(self) -> dict[str, str]:
        return {}


@functools.cache
def _sam_template() -> dict[str, Any]:
    parsed: dict[str, Any] = yaml_parse(TEMPLATE_PATH.read_text())
    return parsed


def sam_template() -> dict[str, Any]:
    return copy.deepcopy(_sam_template())


def parameter_defaults() -> dict[str, Any]:
    parameters = sam_template()["Parameters"]
    return {name: spec["Default"] for name, spec in parameters.items() if "Default" in spec}


def translated(parameter_values: dict[str, Any] | None = None) -> dict[str, Any]:
    """The CloudFormation template SAM would deploy, with local code paths as S3 placeholders."""
    template = sam_template()
    for resource in template["Resources"].values():
        properties = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):
            if isinstance(properties.get(key), str):
                properties[key] = f"s3://placeholder-bucket/{properties[key].strip('/')}.zip"
    values = {**REQUIRED_PARAMETERS, **(parameter_values or {})}
    result: dict[str, Any] = transform(template, values, _NoManagedPolicies())
    return result


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
