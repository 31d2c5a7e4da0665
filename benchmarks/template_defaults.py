"""The event source mapping's batching at the template's defaults, as CloudFormation would
create it. Apart from template_parameters: make bench imports this before it sets the
function's environment, and nothing here imports the function's modules."""

from __future__ import annotations

from local.aws.moto_stack import load_stack


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
