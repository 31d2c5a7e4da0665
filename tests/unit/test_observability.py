"""Metric names by failure class, and counts published once an invocation."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from shared.observability import Metric, Tally, failure_metric_name, metrics


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


def test_a_tally_publishes_what_every_thread_added_as_one_value() -> None:
    # Given a tally added to 250 times from 8 threads
    metrics.clear_metrics()
    tally = Tally(Metric.DELIVERED)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: tally.add(), range(250)))

    # When it is published twice
    tally.publish()
    tally.publish()

    # Then the metrics hold one value, the whole count, and the second publish added nothing
    assert metrics.metric_set["Delivered"]["Value"] == [250.0]
    metrics.clear_metrics()
