"""Lambda entry point of the breaker controller: the schedule's {"breakerProbe": {}} once a
minute, the backstop rule's {"breakerProbe": {"trigger": "backstop"}} every 5 minutes (issue 17:
a tick that does not depend on EventBridge Scheduler), and the consumer environments'
{"breakerReport": {...}} (asynchronous Invoke).

It never raises: both arrive asynchronously, and a raised error would only spend Lambda's
retries on an event that is stale by then. Every failure is logged and answered in the result.
"""

from __future__ import annotations

import functools
import os
import random
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from breaker_controller.config import ControllerConfig
from breaker_controller.controller import Controller
from breaker_controller.mapping import EventSourceMapping
from breaker_controller.probe import Probe
from breaker_controller.source_queue import SourceQueue
from shared.breaker_policy.report import BreakerReport, InvalidReport
from shared.deadline import Deadline
from shared.downstream import DownstreamClient, SecretHeader
from shared.errors import ConfigurationError
from shared.observability import Metric, count, logger, metrics

if TYPE_CHECKING:
    from mypy_boto3_lambda.client import LambdaClient
    from mypy_boto3_sqs.client import SQSClient

PROBE_EVENT: dict[str, Any] = {"breakerProbe": {}}
BACKSTOP_EVENT: dict[str, Any] = {"breakerProbe": {"trigger": "backstop"}}


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics()
def lambda_handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    try:
        wiring = get_wiring()
    except ConfigurationError as exc:
        logger.error("breaker controller misconfigured", error=str(exc))
        return {"error": str(exc)}
    controller, probe = wiring
    requests_before = controller.mapping.requests
    deadline = Deadline(context.get_remaining_time_in_millis)
    if event in (PROBE_EVENT, BACKSTOP_EVENT):
        # Both are the same tick: the backstop's only differs in who sent it, and a tick with
        # the mapping closed costs its one read whoever sent it.
        result = controller.tick(lambda: probe(deadline))
        result["trigger"] = "backstop" if event == BACKSTOP_EVENT else "schedule"
    else:
        try:
            report = BreakerReport.from_event(event)
        except InvalidReport as exc:
            logger.error("breaker controller: unsupported event", error=str(exc))
            return {"error": str(exc)}
        result = controller.on_report(report)
    spent = controller.mapping.requests - requests_before
    if spent:
        count(Metric.BREAKER_CONTROL_PLANE_REQUESTS, spent)
    logger.info("breaker controller", control_plane_requests=spent, **result)
    return result


@functools.cache
def get_wiring() -> tuple[Controller, Probe]:
    """Built once per execution environment: the controller's memory lives as long as it."""
    config = ControllerConfig.from_environ(os.environ)
    delivery = config.delivery
    downstream = DownstreamClient(
        delivery.downstream_url,
        delivery.downstream_method,
        delivery.downstream_timeout_seconds,
        pool_size=1,
        secret_header=(
            None
            if delivery.downstream_auth_secret_arn is None
            else SecretHeader(
                delivery.downstream_auth_header,
                delivery.downstream_auth_secret_arn,
                delivery.downstream_auth_cache_seconds,
            )
        ),
    )
    queue = SourceQueue(_sqs_client, config.source_queue_url)
    probe = Probe(
        downstream,
        config.probe_url,
        queue,
        backoff=delivery.backoff_policy,
        rules=config.settings.rules,
        rng=random.Random(),
    )
    controller = Controller(
        config.settings,
        EventSourceMapping(_lambda_client, config.mapping_uuid),
        visible_messages=queue.visible_messages,
    )
    return controller, probe


def _lambda_client() -> LambdaClient:
    import boto3  # noqa: PLC0415
    from botocore.config import Config as BotoConfig  # noqa: PLC0415

    # botocore's retries off: every request is counted against the account's 15 a second, and
    # the adapter retries the ones worth retrying itself, with jitter.
    client: LambdaClient = boto3.client(
        "lambda",
        config=BotoConfig(connect_timeout=2, read_timeout=5, retries={"total_max_attempts": 1}),
    )
    return client


def _sqs_client() -> SQSClient:
    import boto3  # noqa: PLC0415
    from botocore.config import Config as BotoConfig  # noqa: PLC0415

    client: SQSClient = boto3.client(
        "sqs",
        config=BotoConfig(
            connect_timeout=2, read_timeout=5, retries={"mode": "standard", "max_attempts": 3}
        ),
    )
    return client
