"""The one module that owns the Powertools objects and the names of the metrics.

Service name, metrics namespace and log level come from POWERTOOLS_SERVICE_NAME,
POWERTOOLS_METRICS_NAMESPACE and POWERTOOLS_LOG_LEVEL (set in template.yaml). The tracer is
off outside Lambda and when POWERTOOLS_TRACE_DISABLED is true (template parameter TracingMode).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from enum import StrEnum
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.tracing.base import BaseProvider, BaseSegment


class _Untraced(BaseProvider, BaseSegment):
    """The tracer's provider when tracing is off: records nothing, and spares the cold start
    the X-Ray SDK, which Powertools' default provider imports (with its botocore hooks) even to
    stay disabled."""

    @contextmanager
    def in_subsegment(self, name: Any = None, **kwargs: Any) -> Iterator[BaseSegment]:
        yield self

    @asynccontextmanager
    async def in_subsegment_async(
        self, name: Any = None, **kwargs: Any
    ) -> AsyncIterator[BaseSegment]:
        yield self

    def put_annotation(self, key: str, value: Any) -> None:
        pass

    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None:
        pass

    def patch(self, modules: Any) -> None:
        pass

    def patch_all(self) -> None:
        pass

    def close(self, end_time: int | None = None) -> None:
        pass

    def add_subsegment(self, subsegment: Any) -> None:
        pass

    def remove_subsegment(self, subsegment: Any) -> None:
        pass

    def add_exception(self, exception: BaseException, stack: Any, remote: bool = False) -> None:
        pass


logger = Logger()
metrics = Metrics()
# Powertools' own rule decides (off outside Lambda, under SAM CLI, or by POWERTOOLS_TRACE_DISABLED).
# Only the AWS SDK is patched: the patches of requests and http.client would record the
# downstream's URL whole, credentials and query string included. The downstream call is traced
# as a method instead (downstream.py), without its URL.
tracer = (
    Tracer(disabled=True, auto_patch=False, provider=_Untraced())
    if Tracer._is_tracer_disabled()
    else Tracer(patch_modules=("botocore",))
)


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
    # Redriven messages whose receive count was kept, sent again to start their schedule over.
    SCHEDULES_RESTARTED = "SchedulesRestarted"
    # The circuit breaker: records a consumer environment failed without a call, and the
    # controller's transitions, its state on every tick (0 closed, 1 half-open, 2 open; 1 in
    # BreakerStateUnknown when it could not read the mapping), poison floods recognised, and its
    # control-plane requests.
    BREAKER_SHORT_CIRCUITED = "BreakerShortCircuited"
    BREAKER_OPENED = "BreakerOpened"
    BREAKER_HALF_OPENED = "BreakerHalfOpened"
    BREAKER_CLOSED = "BreakerClosed"
    BREAKER_STATE = "BreakerState"
    BREAKER_STATE_UNKNOWN = "BreakerStateUnknown"
    BREAKER_POISON_FLOOD = "BreakerPoisonFlood"
    BREAKER_CONTROL_PLANE_REQUESTS = "BreakerControlPlaneRequests"
    # An AWS service a delivery needs (Secrets Manager, SSM, DynamoDB) could not be reached:
    # counted once per outage per execution environment (shared.aws_dependencies).
    DEPENDENCY_UNREACHABLE = "DependencyUnreachable"


# Records are delivered on several threads. Powertools' Metrics keeps one dict of lists and
# flushes it at 100 metrics: adding to it is one step under this lock, so that no value is lost.
_metrics_lock = threading.Lock()


def add_metric(name: Metric | str, unit: MetricUnit, value: float) -> None:
    with _metrics_lock:
        metrics.add_metric(name=str(name), unit=unit, value=value)


def count(metric: Metric | str, value: int = 1) -> None:
    add_metric(metric, MetricUnit.Count, value)


def publish_gauge(metric: Metric | str, value: float) -> None:
    add_metric(metric, MetricUnit.NoUnit, value)


class Tally:
    """A count kept in memory and added to the metrics as one value when published, at the end
    of an invocation: one add_metric an invocation instead of one a record (each takes a lock
    and formats the metric's values so far). CloudWatch's Sum is unchanged; SampleCount and
    Average then count invocations, not records."""

    def __init__(self, metric: Metric) -> None:
        self.metric = metric
        self._total = 0
        self._lock = threading.Lock()

    def add(self) -> None:
        with self._lock:
            self._total += 1

    def publish(self) -> None:
        with self._lock:
            total, self._total = self._total, 0
        if total:
            count(self.metric, total)


# Records delivered (a 2xx), on whichever thread: published by the handler before the flush.
delivered = Tally(Metric.DELIVERED)


# The keys of the record this thread is working on (record_context), innermost last; a
# ContextVar, so each thread has its own.
_record_keys: ContextVar[tuple[tuple[str, object], ...]] = ContextVar("record_keys", default=())


class _RecordKeys(logging.Filter):
    """Puts the current record's keys on each log line as it is written: a record that writes
    no line (a delivery at INFO) pays for none. A key the line names itself keeps its value."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in reversed(_record_keys.get()):
            if key not in record.__dict__:
                setattr(record, key, value)
        return True


logger.addFilter(_RecordKeys())


@contextmanager
def record_context(**keys: object) -> Iterator[None]:
    """Keys on every log line of this thread until the block ends: the record's own, never
    another thread's (Logger.append_context_keys changes the keys every thread shares). Set in
    a ContextVar and added by a filter when a line is written: Powertools' thread-safe keys cost
    a copy of the thread's keys on entry and on exit, for every record."""
    token = _record_keys.set(_record_keys.get() + tuple(keys.items()))
    try:
        yield
    finally:
        _record_keys.reset(token)


def failure_metric_name(outcome: str, status_code: int | None) -> str:
    """DownstreamFailed3xx/4xx/5xx by status class, or DownstreamFailedTimeout and the like."""
    if status_code is not None:
        return f"DownstreamFailed{status_code // 100}xx"
    return "DownstreamFailed" + "".join(part.title() for part in outcome.split("-"))
