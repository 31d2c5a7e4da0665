"""The one module that owns the Powertools objects and the names of the metrics.

Service name, metrics namespace and log level come from POWERTOOLS_SERVICE_NAME,
POWERTOOLS_METRICS_NAMESPACE and POWERTOOLS_LOG_LEVEL (set in template.yaml). The tracer
switches itself off outside Lambda.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

logger = Logger()
metrics = Metrics()
# Only the AWS SDK is patched: the patches of requests and http.client would record the
# downstream's URL whole, credentials and query string included. The downstream call is traced
# as a method instead (downstream.py), without its URL.
tracer = Tracer(patch_modules=("botocore",))


class Metric(StrEnum):
    DELIVERED = "Delivered"
    DOWNSTREAM_LATENCY = "DownstreamLatency"
    RETRIES_SCHEDULED = "RetriesScheduled"
    BACKOFF_SECONDS = "BackoffSeconds"
    FINAL_ATTEMPTS = "FinalAttemptsFailed"
    DEAD_LETTERED = "DeadLettered"
    DEAD_LETTER_SEND_FAILED = "DeadLetterSendFailed"
    DEAD_LETTER_TOO_LARGE = "DeadLetterTooLarge"
    VISIBILITY_CHANGE_FAILED = "VisibilityChangeFailed"
    INVALID_RECORDS = "InvalidRecords"
    DEADLINE_SKIPPED = "DeadlineSkipped"


# Records are delivered on several threads. Powertools' Metrics keeps one dict of lists and
# flushes it at 100 metrics: adding to it is one step under this lock, so that no value is lost.
_metrics_lock = threading.Lock()


def add_metric(name: Metric | str, unit: MetricUnit, value: float) -> None:
    with _metrics_lock:
        metrics.add_metric(name=str(name), unit=unit, value=value)


def count(metric: Metric | str, value: int = 1) -> None:
    add_metric(metric, MetricUnit.Count, value)


@contextmanager
def record_context(**keys: object) -> Iterator[None]:
    """Keys on every log line of this thread until the block ends: the record's own, never
    another thread's (Logger.append_context_keys changes the keys every thread shares)."""
    logger.thread_safe_append_keys(**keys)
    try:
        yield
    finally:
        logger.thread_safe_remove_keys(keys)


def failure_metric_name(outcome: str, status_code: int | None) -> str:
    """DownstreamFailed3xx/4xx/5xx by status class, or DownstreamFailedTimeout and the like."""
    if status_code is not None:
        return f"DownstreamFailed{status_code // 100}xx"
    return "DownstreamFailed" + "".join(part.title() for part in outcome.split("-"))
