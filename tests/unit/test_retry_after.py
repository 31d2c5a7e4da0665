"""Retry-After in both RFC 9110 forms, relative to a fixed clock."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.downstream import retry_after_seconds

NOW = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("120", 120),
        (" 7 ", 7),
        ("0", 0),
        ("Sun, 22 Nov 2026 12:05:00 GMT", 300),
        ("Sunday, 22-Nov-26 12:00:30 GMT", 30),  # RFC 850, obsolete but allowed
        ("Sun Nov 22 12:01:00 2026", 60),  # asctime, no zone: GMT by definition
        ("Sun, 22 Nov 2026 11:00:00 GMT", 0),  # in the past: no wait
        ("Sun, 22 Nov 2026 12:00:00 +0100", 0),  # a zone is honoured (that is 11:00 GMT)
    ],
)
def test_both_forms(header: str, expected: int) -> None:
    # Given a Retry-After in seconds or as a date, When it is read at a fixed time,
    # Then it is the number of seconds to wait
    assert retry_after_seconds(header, NOW) == expected


@pytest.mark.parametrize("header", [None, "", "soon", "-5", "1.5", "٣", "Sun, 99 Foo 2026"])
def test_unreadable_values_are_ignored(header: str | None) -> None:
    # Given a missing or unreadable Retry-After, When it is read, Then it is ignored
    assert retry_after_seconds(header, NOW) is None


def test_fractional_seconds_of_a_date_round_up() -> None:
    # Given a clock half a second before the date in the header
    later = datetime(2026, 11, 22, 11, 59, 59, 500_000, tzinfo=UTC)

    # When the header is read, Then the wait rounds up to a whole second rather than down to 0
    assert retry_after_seconds("Sun, 22 Nov 2026 12:00:00 GMT", later) == 1
