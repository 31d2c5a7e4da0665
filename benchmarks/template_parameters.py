"""The template's own numbers, so that the study and the schedule follow template.yaml."""

from __future__ import annotations

from typing import Any

from local.aws.template import SOURCE_TEMPLATE, load_template, parameter_defaults
from local.shared.run_deadline import policy_from_parameters as backoff_policy

__all__ = ["SOURCE_TEMPLATE", "backoff_policy", "load_template", "parameter_defaults"]


def source_queue_visibility_timeout_s(template: dict[str, Any]) -> int:
    """The queue's VisibilityTimeout: what a failed message waits when nothing changes it."""
    return int(template["Resources"]["SourceQueue"]["Properties"]["VisibilityTimeout"])
