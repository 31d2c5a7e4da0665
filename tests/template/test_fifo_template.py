"""QueueType=fifo: FIFO source and dead-letter queues, a mapping without a batching window, and
the parameter values Lambda would refuse for a FIFO queue refused before deploy."""

from __future__ import annotations

from typing import Any

import pytest

from local.aws.moto_stack import load_stack, sam_template, translated
from local.aws.template import ParameterError, decide_conditions, resolved_parameters


def deployed(overrides: dict[str, Any]) -> dict[str, Any]:
    values = resolved_parameters(
        sam_template(), {"DownstreamUrl": "https://downstream.example.com", **overrides}
    )
    return decide_conditions(translated(overrides), values)


def mapping(template: dict[str, Any]) -> dict[str, Any]:
    found: list[dict[str, Any]] = [
        resource["Properties"]
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::Lambda::EventSourceMapping"
    ]
    [properties] = found
    return properties


def test_standard_by_default() -> None:
    # Given the defaults, When deployed, Then neither queue is FIFO and the window is passed on
    template = deployed({})
    for queue in ("SourceQueue", "DeadLetterQueue"):
        assert "FifoQueue" not in template["Resources"][queue]["Properties"]
    assert mapping(template)["MaximumBatchingWindowInSeconds"] == {
        "Ref": "MaximumBatchingWindowInSeconds"
    }


@pytest.mark.parametrize("deduplication", ["false", "true"])
def test_fifo_makes_both_queues_fifo_and_drops_the_window(deduplication: str) -> None:
    # Given QueueType=fifo, When deployed
    template = deployed({"QueueType": "fifo", "ContentBasedDeduplication": deduplication})
    source = template["Resources"]["SourceQueue"]["Properties"]
    dead_letter = template["Resources"]["DeadLetterQueue"]["Properties"]
    # Then both queues are FIFO, named .fifo as SQS requires, and the DLQ admits the source
    assert source["FifoQueue"] is True
    assert dead_letter["FifoQueue"] is True
    stack = load_stack({"QueueType": "fifo", "ContentBasedDeduplication": deduplication})
    source_name = stack.resolve(
        stack.template["Resources"]["SourceQueue"]["Properties"]["QueueName"]
    )
    assert source_name.endswith("-source.fifo")
    assert stack.resource_properties("DeadLetterQueue")["QueueName"].endswith("-dlq.fifo")
    assert source["ContentBasedDeduplication"] == {"Ref": "ContentBasedDeduplication"}
    [admitted] = stack.resource_properties("DeadLetterQueue")["RedriveAllowPolicy"][
        "sourceQueueArns"
    ]
    assert admitted.endswith(f":{source_name}")
    # ...and the mapping has no batching window
    assert "MaximumBatchingWindowInSeconds" not in mapping(template)


@pytest.mark.parametrize(
    ("overrides", "refusal"),
    [
        ({"BatchSize": 11, "MaximumBatchingWindowInSeconds": 1}, "at most 10 records"),
        ({"MaximumBatchingWindowInSeconds": 5}, "no batching window"),
    ],
)
def test_values_lambda_refuses_for_fifo_are_refused_before_deploy(
    overrides: dict[str, Any], refusal: str
) -> None:
    # Given a FIFO queue with a value Lambda refuses for one, When it is resolved, Then refused
    with pytest.raises(ParameterError, match=refusal):
        resolved_parameters(
            sam_template(),
            {"DownstreamUrl": "https://d.example.com", "QueueType": "fifo", **overrides},
        )
