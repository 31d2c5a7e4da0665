"""The template's own numbers, so that the study and the schedule follow template.yaml."""

from __future__ import annotations

from typing import Any

from local.moto_stack import load_stack
from local.run_deadline import policy_from_parameters as backoff_policy
from local.template import SOURCE_TEMPLATE, load_template, parameter_defaults

__all__ = ["SOURCE_TEMPLATE", "backoff_policy", "load_template", "parameter_defaults"]


def default_batching(queue_type: str = "standard") -> tuple[int, int]:
    """The event source mapping's BatchSize and batching window at the template's defaults:
    BatchSize auto depends on QueueType, so the mapping is read as CloudFormation would
    create it (FIFO queues have no window: 0)."""
    stack = load_stack({"QueueType": queue_type})
    [mapping] = [
        resource["Properties"]
        for resource in stack.template["Resources"].values()
        if resource["Type"] == "AWS::Lambda::EventSourceMapping"
    ]
    return int(stack.resolve(mapping["BatchSize"])), int(
        stack.resolve(mapping.get("MaximumBatchingWindowInSeconds", 0))
    )


def source_queue_visibility_timeout_s(template: dict[str, Any]) -> int:
    """The queue's VisibilityTimeout: what a failed message waits when nothing changes it."""
    return int(template["Resources"]["SourceQueue"]["Properties"]["VisibilityTimeout"])
