"""The circuit breaker's probe: {"breakerProbe": {}}, sent once a minute by the stack's
EventBridge Scheduler schedule (template.yaml, BreakerProbeSchedule).

When the mapping is open (disabled), one call tests the downstream; when it answers, the mapping
is enabled again at a low MaximumConcurrency: half-open. Otherwise the probe only reports the
state. Either way it emits the BreakerState metric (0 closed, 1 half-open, 2 open), which the
"breaker open too long" alarm watches.

It never raises: the schedule's invocation is asynchronous, and a raised error would spend
Lambda's retries on it and put an OnFailure record of it on the failed-jobs queue, where
`make redrive` would replay it as a job. Every failure is logged and reported in the result.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from consumer.breaker import STATE_GAUGE, BreakerPolicy, BreakerState, MappingPort, log_transition
from consumer.deadline import Deadline
from consumer.downstream import DownstreamClient
from consumer.errors import DeliveryError, MappingUnavailable
from consumer.observability import Metric, add_metric, logger
from consumer.runtime import Runtime


def handle_breaker_probe(runtime: Runtime, deadline: Deadline) -> dict[str, Any]:
    breaker = runtime.breaker
    if breaker is None:
        logger.info("breaker probe: the circuit breaker is off")
        return {"breaker": "off"}
    report = probe(
        breaker.mapping,
        breaker.configured_concurrency,
        runtime.downstream,
        runtime.config.breaker_probe_url,
        deadline,
        policy=breaker.policy,
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
) -> dict[str, Any]:
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
    add_metric(Metric.BREAKER_STATE, MetricUnit.NoUnit, STATE_GAUGE[state])
    return report
