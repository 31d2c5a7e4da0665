"""What counts as a JSON body: RFC 8259, not Python's superset."""

from __future__ import annotations

import pytest

from consumer.delivery import json_error


@pytest.mark.parametrize("text", ['{"a": 1}', "[]", '"text"', "0", "null", " true "])
def test_valid_json(text: str) -> None:
    # Given any RFC 8259 JSON text, When it is checked, Then no problem is reported
    assert json_error(text) is None


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{", "Expecting property name"),
        ("NaN", "NaN is not valid JSON"),
        ('{"x": -Infinity}', "-Infinity is not valid JSON"),
        ("", "Expecting value"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ],
)
def test_invalid_json_says_why(text: str, reason: str) -> None:
    # Given text that is not JSON, or only Python's superset of it, When it is checked
    problem = json_error(text)

    # Then the problem says why
    assert problem is not None
    assert reason in problem
