"""The circuit breaker's probe: {"breakerProbe": {}}, sent once a minute by the stack's
EventBridge Scheduler schedule (template.yaml, BreakerProbeSchedule).

When the mapping is open (disabled), one call tests the downstream; when it answers, the mapping
is enabled again at a low MaximumConcurrency: half-open. When it is half-open, the probe closes
it if the source queue is empty and the mapping has been left alone for `close_after_s`:
half-open otherwise closes only on an environment's minute of calls, and with no traffic after
the recovery there are none, so a later burst would meet the half-open few pollers. A closed
mapping is only reported. Either way it emits the BreakerState metric (0 closed, 1 half-open,
2 open), which the "breaker open too long" alarm watches.

It never raises: the schedule's invocation is asynchronous, and a raised error would spend
Lambda's retries on it and put an OnFailure record of it on the failed-jobs queue, where
`make redrive` would replay it as a job. Every failure is logged and reported in the result.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from consumer.breaker import (
    STATE_GAUGE,
    BreakerPolicy,
    BreakerState,
    MappingPort,
    MappingView,
    log_transition,
)
from consumer.deadline import Deadline
from consumer.downstream import DownstreamClient
from consumer.errors import DeliveryError, MappingUnavailable, QueueUnavailable
from consumer.observability import Metric, add_metric, logger
from consumer.runtime import Runtime
from consumer.sqs_actions import QueueCounts

# The source queue's counts, read when a half-open mapping may close; raises QueueUnavailable.
QueueCountsReader = Callable[[], QueueCounts]


def handle_breaker_probe(runtime: Runtime, deadline: Deadline) -> dict[str, Any]:
    breaker = runtime.breaker
    if breaker is None:
        logger.info("breaker probe: the circuit breaker is off")
        return {"breaker": "off"}
    queue_arn = runtime.config.source_queue_arn
    sqs = runtime.sqs
    report = probe(
        breaker.mapping,
        breaker.configured_concurrency,
        runtime.downstream,
        runtime.config.breaker_probe_url,
        deadline,
        policy=breaker.policy,
        # The breaker exists only with the source queue's ARN (consumer.runtime.circuit_breaker).
        queue_counts=None if queue_arn is None else lambda: sqs.message_counts(queue_arn),
    )
    # This environment also delivers batches: it must not go on from its cached reading.
    breaker.forget_mapping()
    return report


def probe(
    mapping: MappingPort,
    configured_concurrency: int,
    downstream: DownstreamClient,
    probe_url: str | None,
    deadline: Deadline,
    *,
    policy: BreakerPolicy | None = None,
    queue_counts: QueueCountsReader | None = None,
    clock: Callable[[], float] = time.time,
) -> dict[str, Any]:
    """`clock` is wall-clock time (seconds since the epoch), as the mapping's LastModified is;
    without `queue_counts` a half-open mapping is only reported."""
    policy = policy or BreakerPolicy()
    try:
        view = mapping.read()
    except MappingUnavailable as exc:
        logger.error("breaker probe: could not read the event source mapping", error=str(exc))
        return {"breaker": "unknown", "error": str(exc)}
    if view is None:
        logger.warning("breaker probe: the function has no event source mapping on its queue")
        return {"breaker": "off"}
    state = view.breaker_state(configured_concurrency)
    report: dict[str, Any] = {"breaker": str(state)}
    if state is BreakerState.OPEN:
        try:
            result = downstream.probe(probe_url, deadline)
        except DeliveryError as exc:
            # Too little time left, or the authentication secret unreadable: not up.
            up, detail = False, str(exc)
        else:
            up, detail = result.up, result.detail
        report.update(probe="up" if up else "down", detail=detail)
        logger.info("breaker probe", up=up, detail=detail)
        if up:
            concurrency = policy.half_open_concurrency(configured_concurrency, view.batch_size)
            try:
                mapping.set_concurrency(view.uuid, concurrency, enable=True)
            except MappingUnavailable as exc:
                logger.error(
                    "breaker probe: the downstream is up but the mapping could not be enabled",
                    error=str(exc),
                )
                report["error"] = str(exc)
            else:
                log_transition(
                    BreakerState.OPEN,
                    BreakerState.HALF_OPEN,
                    f"the probe found the downstream up ({detail}); "
                    f"MaximumConcurrency {concurrency}",
                )
                state = BreakerState.HALF_OPEN
                report.update(breaker=str(state), maximumConcurrency=concurrency)
    elif (
        state is BreakerState.HALF_OPEN
        and queue_counts is not None
        and close_when_quiet(
            mapping,
            view,
            configured_concurrency=configured_concurrency,
            queue_counts=queue_counts,
            policy=policy,
            now=clock(),
            report=report,
        )
    ):
        state = BreakerState.CLOSED
    add_metric(Metric.BREAKER_STATE, MetricUnit.NoUnit, STATE_GAUGE[state])
    return report


def close_when_quiet(
    mapping: MappingPort,
    view: MappingView,
    *,
    configured_concurrency: int,
    queue_counts: QueueCountsReader,
    policy: BreakerPolicy,
    now: float,
    report: dict[str, Any],
) -> bool:
    """Close a half-open mapping whose queue is empty and which has been left alone for
    close_after_s; True when it closed. Anything unknown leaves it half-open: the next minute's
    probe asks again, and the environments' own rule still closes it on traffic.

    LastModified is the time of the mapping's last change (GetEventSourceMapping: "the date
    that the event source mapping was last updated or that its state changed"): the probe's
    half-opening, or a later change of its concurrency by an environment that held calls back
    or saw Retry-After. Either way the mapping has been half-open at least that long.
    """
    if view.last_modified is None:
        logger.warning("breaker probe: the mapping did not say when it last changed; half-open")
        report["quiet"] = "no LastModified"
        return False
    half_open_for = now - view.last_modified
    if half_open_for < policy.close_after_s:
        report["quiet"] = f"half-open for {half_open_for:.0f}s of {policy.close_after_s:g}s"
        return False
    try:
        counts = queue_counts()
    except QueueUnavailable as exc:
        logger.error(
            "breaker probe: could not read the source queue's counts; the breaker stays half-open",
            error=str(exc),
        )
        report["error"] = str(exc)
        return False
    # Messages waiting out a backoff are not visible, and delayed ones are still to come: both
    # come back, so either keeps the breaker half-open, as visible ones do.
    if not counts.empty:
        report["quiet"] = (
            f"source queue: {counts.visible} visible, {counts.not_visible} in flight, "
            f"{counts.delayed} delayed"
        )
        return False
    try:
        mapping.set_concurrency(view.uuid, configured_concurrency, enable=False)
    except MappingUnavailable as exc:
        logger.error(
            "breaker probe: the breaker should close but the mapping could not be changed",
            error=str(exc),
        )
        report["error"] = str(exc)
        return False
    log_transition(
        BreakerState.HALF_OPEN,
        BreakerState.CLOSED,
        f"the probe found the source queue empty after {half_open_for:.0f}s half-open; "
        f"MaximumConcurrency {configured_concurrency}",
    )
    report.update(breaker=str(BreakerState.CLOSED), maximumConcurrency=configured_concurrency)
    return True
