"""Metric names by failure class."""

from __future__ import annotations

import pytest

from consumer.observability import failure_metric_name, tracer


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
    assert failure_metric_name(outcome, status) == name


def test_the_tracer_is_off_outside_lambda() -> None:
    # No X-Ray daemon listens here; in Lambda (LAMBDA_TASK_ROOT set) it switches itself on.
    assert tracer.disabled is True
