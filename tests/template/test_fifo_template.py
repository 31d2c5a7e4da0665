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
    # Given the defaults, When deployed, Then neither queue is FIFO, and BatchSize auto is 100
    # with the least batching window Lambda takes above 10 records
    template = deployed({})
    for queue in ("SourceQueue", "DeadLetterQueue"):
        assert "FifoQueue" not in template["Resources"][queue]["Properties"]
    assert mapping(template)["BatchSize"] == 100
    assert mapping(template)["MaximumBatchingWindowInSeconds"] == 1


def test_explicit_batching_values_are_passed_on() -> None:
    # Given a BatchSize and a window set by the user, When deployed, Then the mapping has them
    template = deployed({"BatchSize": "500", "MaximumBatchingWindowInSeconds": "5"})
    assert mapping(template)["BatchSize"] == {"Ref": "BatchSize"}
    assert mapping(template)["MaximumBatchingWindowInSeconds"] == {
        "Ref": "MaximumBatchingWindowInSeconds"
    }


@pytest.mark.parametrize(("batch_size", "window"), [("10", 0), ("1", 0), ("11", 1), ("auto", 1)])
def test_the_auto_window_is_the_least_lambda_takes_for_the_batch_size(
    batch_size: str, window: int
) -> None:
    # Given a standard queue, a BatchSize and the window left at auto, When deployed
    template = deployed({"BatchSize": batch_size})
    # Then no window up to 10 records (no added latency), 1 s above (Lambda's minimum there)
    assert mapping(template)["MaximumBatchingWindowInSeconds"] == window


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
    # ...and the mapping has no batching window, and BatchSize auto is a FIFO queue's 10
    assert "MaximumBatchingWindowInSeconds" not in mapping(template)
    assert mapping(template)["BatchSize"] == 10


def test_fifo_takes_an_explicit_batch_of_ten_or_less_and_window_zero() -> None:
    # Given a FIFO queue with BatchSize 5 and window 0 set explicitly, When deployed
    template = deployed(
        {"QueueType": "fifo", "BatchSize": "5", "MaximumBatchingWindowInSeconds": "0"}
    )
    # Then the mapping takes the BatchSize and has no window
    assert mapping(template)["BatchSize"] == {"Ref": "BatchSize"}
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
