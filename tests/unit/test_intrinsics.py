"""Fn::If and the condition functions of local.intrinsics' resolver."""

from __future__ import annotations

import pytest

from local.intrinsics import Resolver

CONDITIONS = {
    "Active": {"Fn::Equals": [{"Ref": "Mode"}, "Active"]},
    "Passive": {"Fn::Not": [{"Condition": "Active"}]},
    "ActiveAndBig": {"Fn::And": [{"Condition": "Active"}, {"Fn::Equals": [{"Ref": "Size"}, 10]}]},
    "ActiveOrBig": {"Fn::Or": [{"Condition": "Active"}, {"Fn::Equals": [{"Ref": "Size"}, 10]}]},
}


def resolver(mode: str, size: int) -> Resolver:
    def no_resource(*_: str) -> str:
        raise AssertionError("no resource is referred to")

    return Resolver({}, {"Mode": mode, "Size": size}, no_resource, no_resource, CONDITIONS)


@pytest.mark.parametrize(
    ("mode", "size", "expected"),
    [
        ("Active", 10, {"Active", "ActiveAndBig", "ActiveOrBig"}),
        ("Active", 1, {"Active", "ActiveOrBig"}),
        ("Off", 10, {"Passive", "ActiveOrBig"}),
        ("Off", 1, {"Passive"}),
    ],
)
def test_fn_if_picks_the_branch_its_condition_holds_for(
    mode: str, size: int, expected: set[str]
) -> None:
    # Given parameters and the template's conditions
    resolve = resolver(mode, size)
    # When each condition chooses between its own name and nothing
    chosen = {resolve({"Fn::If": [name, name, "-"]}) for name in CONDITIONS}
    # Then exactly the conditions that hold chose their name (numbers compare as strings)
    assert chosen - {"-"} == expected
