"""Metric names by failure class."""

from __future__ import annotations

import pytest

from shared.observability import failure_metric_name


@pytest.mark.parametrize(
    ("outcome", "status", "name"),
    [
        ("status", 503, "DownstreamFailed5xx"),
        ("status", 429, "DownstreamFailed4xx"),
        ("status", 302, "DownstreamFailed3xx"),
        ("timeout", None, "DownstreamFailedTimeout"),
        ("connection", None, "DownstreamFailedConnection"),
        ("request-error", None, "DownstreamFailedRequestError"),
    ],
)
def test_failure_metric_names(outcome: str, status: int | None, name: str) -> None:
    # Given a failure's outcome and status; When it is named; Then by status class, else outcome
    assert failure_metric_name(outcome, status) == name
