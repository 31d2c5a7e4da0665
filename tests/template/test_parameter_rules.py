"""Parameter values Lambda or SQS would reject, refused before deploy: the template's Rules (kept
by aws-sam-translator for CloudFormation, evaluated here as CloudFormation evaluates them)."""

from __future__ import annotations

import pytest

from local.aws.moto_stack import sam_template, translated
from local.aws.template import ParameterError, resolved_parameters, rule_violations

RULE = "BatchSizeAboveTenNeedsABatchingWindow"


def resolve(**overrides: object) -> dict[str, str]:
    return resolved_parameters(
        sam_template(), {"DownstreamUrl": "https://downstream.example.com/m", **overrides}
    )


def test_the_rules_reach_cloudformation_through_the_translator() -> None:
    # Given the template translated by aws-sam-translator, Then its Rules are there unchanged
    assert translated()["Rules"] == sam_template()["Rules"]
    assert RULE in translated()["Rules"]


@pytest.mark.parametrize("batch_size", range(1, 11))
def test_batch_sizes_up_to_ten_need_no_batching_window(batch_size: int) -> None:
    # Given a batch size up to ten and no batching window, When the parameters are resolved
    values = resolve(BatchSize=batch_size, MaximumBatchingWindowInSeconds=0)
    # Then the batch size is accepted
    assert values["BatchSize"] == str(batch_size)


@pytest.mark.parametrize("batch_size", [11, 100, 10_000])
def test_batch_sizes_above_ten_without_a_window_are_refused(batch_size: int) -> None:
    # Given a batch size Lambda only accepts with a batching window, and a window of 0
    with pytest.raises(ParameterError) as raised:
        resolve(BatchSize=batch_size, MaximumBatchingWindowInSeconds=0)
    # Then the deployment is refused, saying what to change
    assert RULE in str(raised.value)
    assert "MaximumBatchingWindowInSeconds to at least 1" in str(raised.value)


@pytest.mark.parametrize(("batch_size", "window"), [(11, 1), (100, 5), (10_000, 300)])
def test_batch_sizes_above_ten_with_a_window_are_accepted(batch_size: int, window: int) -> None:
    # Given a batch size above ten with a batching window, When the parameters are resolved
    values = resolve(BatchSize=batch_size, MaximumBatchingWindowInSeconds=window)
    # Then both are accepted
    assert (values["BatchSize"], values["MaximumBatchingWindowInSeconds"]) == (
        str(batch_size),
        str(window),
    )


@pytest.mark.parametrize("window", ["auto", "1", "30"])
def test_batch_size_auto_on_a_standard_queue_takes_any_window_but_none(window: str) -> None:
    # Given BatchSize auto (100 on a standard queue) and a window of auto or at least 1 s
    values = resolve(BatchSize="auto", MaximumBatchingWindowInSeconds=window)
    # Then both are accepted
    assert (values["BatchSize"], values["MaximumBatchingWindowInSeconds"]) == ("auto", window)


def test_batch_size_auto_on_a_standard_queue_without_a_window_is_refused() -> None:
    # Given BatchSize auto on a standard queue (100 records) and the window set to 0
    with pytest.raises(ParameterError) as raised:
        resolve(BatchSize="auto", MaximumBatchingWindowInSeconds="0")
    # Then the deployment is refused, as for any BatchSize above 10
    assert RULE in str(raised.value)
    assert "or to auto" in str(raised.value)


@pytest.mark.parametrize("window", ["auto", "0"])
def test_batch_size_auto_on_a_fifo_queue_needs_no_window(window: str) -> None:
    # Given a FIFO queue, BatchSize auto (10) and no window, Then it is accepted
    values = resolve(QueueType="fifo", BatchSize="auto", MaximumBatchingWindowInSeconds=window)
    assert values["BatchSize"] == "auto"


def test_the_defaults_satisfy_every_rule() -> None:
    # Given the defaults, When the rules are evaluated, Then none is violated
    assert rule_violations(sam_template(), resolve()) == []


def test_a_rule_function_that_is_not_emulated_is_refused_rather_than_guessed() -> None:
    # Given a rule using a function the emulation does not know
    template = sam_template()
    template["Rules"] = {"Odd": {"Assertions": [{"Assert": {"Fn::EachMemberIn": [[], []]}}]}}
    # When the rules are evaluated, Then that is refused rather than guessed
    with pytest.raises(ParameterError, match="Fn::EachMemberIn is not emulated"):
        rule_violations(template, resolve())
