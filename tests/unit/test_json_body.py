"""What counts as a JSON body: RFC 8259, not Python's superset."""

from __future__ import annotations

import pytest

from shared.downstream import json_error


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


@pytest.mark.parametrize(
    "text",
    [
        '{"n": ' + "1" * 4301 + "}",
        "-" + "9" * 10_000,
        '{"x": 1e400, "y": ' + "2" * 5000 + ".5}",
    ],
)
def test_numbers_of_any_length_are_json(text: str) -> None:
    # Given JSON holding an integer beyond Python's 4,300-digit int() limit (RFC 8259 sets none),
    # When it is checked, Then no problem is reported: it is not dead-lettered as invalid-json
    assert json_error(text) is None
