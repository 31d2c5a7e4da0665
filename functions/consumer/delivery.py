"""One downstream call, measured and logged the same way for both invocation shapes.

Tracing needs nothing here: the Tracer patches `requests`, so every call is already a subsegment
with its status and fault flags.
"""

from __future__ import annotations

import time

from aws_lambda_powertools.metrics import MetricUnit

from consumer.config import Config
from consumer.deadline import Deadline
from consumer.downstream import DownstreamClient
from consumer.errors import DownstreamFailure
from consumer.observability import Metric, count, failure_metric_name, logger, metrics


def deliver(
    downstream: DownstreamClient,
    config: Config,
    deadline: Deadline,
    body: str,
    idempotency_key: str,
) -> int:
    """Call the downstream once; return its 2xx status or raise DownstreamFailure."""
    timeout_seconds = deadline.call_timeout_seconds(config.downstream_timeout_seconds)
    started = time.perf_counter()
    try:
        status_code = downstream.deliver(body, idempotency_key, timeout_seconds)
    except DownstreamFailure as failure:
        count(failure_metric_name(failure.outcome, failure.status_code))
        raise
    finally:
        latency_ms = (time.perf_counter() - started) * 1000
        metrics.add_metric(
            name=Metric.DOWNSTREAM_LATENCY, unit=MetricUnit.Milliseconds, value=latency_ms
        )
    count(Metric.DELIVERED)
    logger.info("delivered", status_code=status_code, latency_ms=round(latency_ms, 1))
    return status_code


def is_non_retryable(failure: DownstreamFailure, config: Config) -> bool:
    return failure.status_code in config.non_retryable_status_codes
