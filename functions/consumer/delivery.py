"""One message's outcome, the same for both invocation shapes: delivered, or dead-lettered at once
when it can never succeed. Any other failure raises, for the caller's retry mechanism (the queue's
backoff, or Lambda's async retries).

And the Runtime it is delivered with: what an execution environment builds once and reuses
across warm invocations. Only request-independent objects live there: the parsed configuration,
the SQS client's actions, the HTTP session and its connection pool, the threads that deliver a
batch's records and the downstream's recent pace, the random source, and this environment's
part of the circuit breaker (its window of calls; the mapping itself is the controller's).
Nothing of a request is ever stored on them.
"""

from __future__ import annotations

import functools
import os
import random
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from consumer.breaker import BatchCalls, CircuitBreaker, ControllerChannel
from consumer.idempotency import OnceOnly
from consumer.sqs_actions import SqsActions, sqs_client
from shared.config import Config
from shared.deadline import Deadline
from shared.downstream import DownstreamClient, SecretHeader, json_error
from shared.errors import DownstreamFailure
from shared.observability import (
    Metric,
    add_metric,
    count,
    delivered,
    failure_metric_name,
    logger,
)


class DeadLetterReason(StrEnum):
    INVALID_JSON = "invalid-json"
    # A direct job's number beyond a double's range: the runtime parsed it as Infinity, so its
    # digits are lost and the job cannot be delivered as it was sent.
    NUMBER_OUT_OF_RANGE = "number-out-of-range"
    NON_RETRYABLE_STATUS = "non-retryable-status"
    # The next attempt would come after the source queue's retention ends.
    WOULD_EXPIRE = "would-expire"


# DeadLetterDetail is for a person reading the DLQ, and counts toward the copy's size.
MAX_DETAIL_CHARACTERS = 512


@dataclass(frozen=True)
class Message:
    body: str
    idempotency_key: str
    # Where it came from, as DLQ attributes: SourceMessageId, or SourceRequestId for a job.
    source: Mapping[str, str]
    # The original message attributes, in the shape of Lambda's SQS event.
    attributes: Mapping[str, Any] = field(default_factory=dict)
    # Its FIFO message group, which its DLQ copy keeps on a FIFO dead-letter queue.
    group_id: str | None = None


@dataclass(frozen=True)
class Outcome:
    status_code: int | None = None
    dead_letter_message_id: str | None = None

    @property
    def dead_lettered(self) -> bool:
        return self.dead_letter_message_id is not None


# A batch's records go one after another on the invocation's thread while they wait on next to
# nothing: handing each record to a thread costs about 0.2 ms of CPU (make bench-record-cpu,
# DeliveryConcurrency 10 against 1), more than a sub-millisecond downstream makes a record wait.
# A downstream that answers in 1 ms or more is cheaper on the threads, whose waits overlap: one
# after another, 100 records at 2 ms would bill 2.5 times the threads' duration.
WAIT_PER_RECORD_SECONDS = 0.0005
# What the records on the invocation's thread may wait beyond that, in all, before the rest of
# the batch goes to the threads: a loaded machine's pause, not a slow downstream's calls.
WAIT_ALLOWANCE_SECONDS = 0.005
# How long the threads keep the batches after records waited too long one after another,
# before a batch tries the invocation's thread again: a try costs that batch a few calls' wait.
RETRY_ONE_THREAD_SECONDS = 60.0
# A batch on the threads that waited less than this a round (DeliveryConcurrency records) on
# anything but CPU may have waited on nothing: the next one tries the invocation's thread.
# 5 ms: on a loaded machine a 0 ms downstream's round still sometimes took over 2 ms.
ROUND_WAIT_SECONDS = 0.005


@dataclass
class DownstreamPace:
    """Where the next SQS batch starts, learnt from the batches before it and kept by the
    execution environment (consumer.sqs_batch.in_lanes). A fresh environment starts on the
    threads: only a batch's records delivered one after another show what the downstream makes
    each wait, and a first call that hangs would hold the rest there."""

    one_thread: bool = False
    # Before this time (time.monotonic()), the batches stay on the threads.
    threads_until: float = 0.0
    wait_per_record_seconds: float = WAIT_PER_RECORD_SECONDS
    wait_allowance_seconds: float = WAIT_ALLOWANCE_SECONDS
    retry_one_thread_seconds: float = RETRY_ONE_THREAD_SECONDS
    round_wait_seconds: float = ROUND_WAIT_SECONDS


@dataclass(frozen=True)
class Runtime:
    config: Config
    downstream: DownstreamClient
    sqs: SqsActions
    rng: random.Random
    # None unless delivery is idempotent (IDEMPOTENCY_TABLE_NAME).
    idempotency: OnceOnly[Outcome] | None
    # None when records are delivered one after another (DELIVERY_CONCURRENCY=1).
    delivery_pool: ThreadPoolExecutor | None
    # None when the circuit breaker is off: BREAKER_ENABLED=false, or no controller to report
    # to (a hand-written environment). Then no Lambda client at all.
    breaker: CircuitBreaker | None = None
    # Where a batch's records start: on the delivery threads, or on the calling thread.
    pace: DownstreamPace = field(default_factory=DownstreamPace)


def circuit_breaker(config: Config) -> CircuitBreaker | None:
    controller = config.breaker_controller_function
    if not (config.breaker_enabled and controller):
        return None
    return CircuitBreaker(config.breaker_rules, ControllerChannel(controller))


@functools.cache
def get_runtime() -> Runtime:
    config = Config.from_environ(os.environ)
    return Runtime(
        config=config,
        downstream=DownstreamClient(
            config.downstream_url,
            config.downstream_method,
            config.downstream_timeout_seconds,
            pool_size=config.delivery_concurrency,
            secret_header=(
                None
                if config.downstream_auth_secret_arn is None
                else SecretHeader(
                    config.downstream_auth_header,
                    config.downstream_auth_secret_arn,
                    config.downstream_auth_cache_seconds,
                )
            ),
        ),
        sqs=SqsActions(sqs_client, config.dead_letter_queue_url),
        rng=random.Random(),
        idempotency=(
            None
            if config.idempotency_table_name is None
            else OnceOnly(
                config.idempotency_table_name,
                config.idempotency_key_jmespath,
                config.idempotency_ttl_seconds,
                Outcome,
            )
        ),
        delivery_pool=(
            ThreadPoolExecutor(config.delivery_concurrency, thread_name_prefix="delivery")
            if config.delivery_concurrency > 1
            else None
        ),
        breaker=circuit_breaker(config),
    )


def deliver_or_dead_letter(
    runtime: Runtime, deadline: Deadline, message: Message, calls: BatchCalls | None = None
) -> Outcome:
    """Deliver the message, or dead-letter it if it can never succeed. With `calls` (an SQS
    batch under the circuit breaker) the breaker is asked before the call and told its outcome.

    Raises DownstreamFailure (retryable), DeadlineExceeded, BreakerOpen or DeadLetterError.
    """
    problem = json_error(message.body)
    if problem is not None:
        return dead_letter(runtime, message, DeadLetterReason.INVALID_JSON, problem)
    if runtime.idempotency is None:
        return _deliver_or_reject(runtime, deadline, message, calls)
    return runtime.idempotency(
        message.idempotency_key,
        message.body,
        lambda: _deliver_or_reject(runtime, deadline, message, calls),
    )


def _deliver_or_reject(
    runtime: Runtime, deadline: Deadline, message: Message, calls: BatchCalls | None
) -> Outcome:
    """Deliver a valid message, or dead-letter it if the downstream refuses it for good."""
    try:
        status_code = _deliver(runtime, deadline, message, calls)
    except DownstreamFailure as failure:
        if failure.status_code not in runtime.config.non_retryable_status_codes:
            raise
        return dead_letter(runtime, message, DeadLetterReason.NON_RETRYABLE_STATUS, str(failure))
    return Outcome(status_code=status_code)


def _deliver(
    runtime: Runtime, deadline: Deadline, message: Message, calls: BatchCalls | None
) -> int:
    """Call the downstream once, measured and logged; return its 2xx status.

    Tracing needs nothing here: DownstreamClient.deliver is its own subsegment.
    """
    if calls is not None:
        # May wait for the half-open pace's slot; raises when the call must not be made.
        calls.before_call(deadline)
    started = time.perf_counter()
    try:
        status_code = runtime.downstream.deliver(message.body, message.idempotency_key, deadline)
    except DownstreamFailure as failure:
        _record_latency(started)
        count(failure_metric_name(failure.outcome, failure.status_code))
        if calls is not None:
            calls.after_call(failure)
        raise
    if calls is not None:
        calls.after_call(None)
    latency_ms = _record_latency(started)
    # Counted here, added to the metrics once per invocation (lambda_handler).
    delivered.add()
    # At DEBUG: an SQS batch's delivered records are named in one INFO line (sqs_batch.py), a
    # direct job's in its own (app.py). One formatted line a record was about a tenth of a
    # record's CPU at 0 ms latency (make bench-record-cpu).
    logger.debug("delivered", status_code=status_code, latency_ms=round(latency_ms, 1))
    return status_code


def _record_latency(started: float) -> float:
    latency_ms = (time.perf_counter() - started) * 1000
    add_metric(Metric.DOWNSTREAM_LATENCY, MetricUnit.Milliseconds, latency_ms)
    return latency_ms


def dead_letter(
    runtime: Runtime, message: Message, reason: DeadLetterReason, detail: str
) -> Outcome:
    """Send the message to the DLQ with its reason; raises DeadLetterError."""
    detail = detail[:MAX_DETAIL_CHARACTERS]
    dead_letter_message_id = runtime.sqs.send_to_dead_letter(
        message.body,
        {"DeadLetterReason": reason.value, "DeadLetterDetail": detail, **message.source},
        message.attributes,
        group_id=message.group_id or message.idempotency_key,
        deduplication_id=message.idempotency_key,
    )
    count(Metric.DEAD_LETTERED)
    logger.error(
        "sent to the dead-letter queue",
        reason=reason.value,
        detail=detail,
        dead_letter_message_id=dead_letter_message_id,
    )
    return Outcome(dead_letter_message_id=dead_letter_message_id)
