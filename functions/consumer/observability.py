"""The one module that owns the Powertools objects and the names of the metrics.

Service name, metrics namespace and log level come from POWERTOOLS_SERVICE_NAME,
POWERTOOLS_METRICS_NAMESPACE and POWERTOOLS_LOG_LEVEL (set in template.yaml). The tracer
switches itself off outside Lambda.
"""

from __future__ import annotations

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


def count(metric: Metric | str, value: int = 1) -> None:
    metrics.add_metric(name=str(metric), unit=MetricUnit.Count, value=value)


def failure_metric_name(outcome: str, status_code: int | None) -> str:
    """DownstreamFailed3xx/4xx/5xx by status class, or DownstreamFailedTimeout and the like."""
    if status_code is not None:
        return f"DownstreamFailed{status_code // 100}xx"
    return "DownstreamFailed" + "".join(part.title() for part in outcome.split("-"))
