"""The template's own numbers, so that the study and the schedule follow template.yaml."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from samtranslator.yaml_helper import yaml_parse

from consumer.backoff import BackoffPolicy, BackoffStrategy

TEMPLATE_PATH = Path(__file__).resolve().parents[1] / "template.yaml"


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    template: dict[str, Any] = yaml_parse(path.read_text())
    return template


def parameter_defaults(template: dict[str, Any]) -> dict[str, Any]:
    parameters: dict[str, dict[str, Any]] = template["Parameters"]
    return {name: spec["Default"] for name, spec in parameters.items() if "Default" in spec}


def backoff_policy(parameters: dict[str, Any]) -> BackoffPolicy:
    """The function's policy under these parameter values (the template's names)."""
    return BackoffPolicy(
        base_seconds=int(parameters["BackoffBaseSeconds"]),
        jitter_seconds=int(parameters["BackoffJitterSeconds"]),
        max_seconds=int(parameters["BackoffMaxSeconds"]),
        max_receive_count=int(parameters["MaxReceiveCount"]),
        strategy=BackoffStrategy(parameters["BackoffStrategy"]),
    )


def source_queue_visibility_timeout_s(template: dict[str, Any]) -> int:
    """The queue's VisibilityTimeout: what a failed message waits when nothing changes it."""
    return int(template["Resources"]["SourceQueue"]["Properties"]["VisibilityTimeout"])
