"""Helpers for the tests that read the translated template."""

from __future__ import annotations

from typing import Any


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
