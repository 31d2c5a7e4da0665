"""The template's own numbers, so that the study and the schedule follow template.yaml."""

from __future__ import annotations

from typing import Any

from consumer.backoff import BackoffPolicy, BackoffStrategy
from local.template import SOURCE_TEMPLATE, load_template, parameter_defaults

__all__ = ["SOURCE_TEMPLATE", "backoff_policy", "load_template", "parameter_defaults"]


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
