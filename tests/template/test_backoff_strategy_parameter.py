"""BackoffStrategy in template.yaml: the values the function accepts, wired to BACKOFF_STRATEGY."""

from __future__ import annotations

import pytest

from local.aws.moto_stack import load_stack, sam_template
from shared.backoff import BackoffStrategy


def test_allowed_values_are_the_functions_strategies_and_additive_jitter_is_default() -> None:
    # Given the template's BackoffStrategy parameter
    parameter = sam_template()["Parameters"]["BackoffStrategy"]

    # Then it allows exactly the function's strategies and defaults to additive jitter
    assert parameter["AllowedValues"] == [strategy.value for strategy in BackoffStrategy]
    assert parameter["Default"] == BackoffStrategy.ADDITIVE_JITTER.value


@pytest.mark.parametrize("strategy", [strategy.value for strategy in BackoffStrategy])
def test_the_parameter_reaches_the_functions_environment(strategy: str) -> None:
    # Given a stack deployed with each strategy
    stack = load_stack({"BackoffStrategy": strategy})

    # When the function's environment is resolved, Then BACKOFF_STRATEGY is that strategy
    function = stack.template["Resources"]["ConsumerFunction"]["Properties"]
    assert stack.resolve(function["Environment"]["Variables"]["BACKOFF_STRATEGY"]) == strategy


def test_the_parameter_is_in_the_backoff_group_of_the_console() -> None:
    # Given the template's console parameter groups
    groups = sam_template()["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]

    # Then BackoffStrategy is shown with the other backoff settings
    [backoff] = [g for g in groups if g["Label"]["default"] == "Backoff and dead-lettering"]
    assert "BackoffStrategy" in backoff["Parameters"]
