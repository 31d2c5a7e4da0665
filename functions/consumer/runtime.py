"""What an execution environment builds once and reuses across warm invocations.

Only request-independent objects live here: the parsed configuration, the SQS and Lambda
clients, the HTTP session and its connection pool, the threads that deliver a batch's records,
the random source, and this environment's part of the circuit breaker (its window of calls;
the mapping itself is the controller's). Nothing of a request is ever stored on them.
"""

from __future__ import annotations

import functools
import os
import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from consumer.breaker import CircuitBreaker
from consumer.breaker_channel import ControllerChannel
from consumer.config import Config
from consumer.delivery import Outcome
from consumer.downstream import DownstreamClient, SecretHeader
from consumer.idempotency import OnceOnly
from consumer.sqs_actions import SqsActions

if TYPE_CHECKING:
    from mypy_boto3_lambda.client import LambdaClient
    from mypy_boto3_sqs.client import SQSClient


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


def _sqs_client() -> SQSClient:
    """The SQS client, made when a record first needs SQS: a batch that succeeds never does,
    and boto3 is the largest import of a cold start."""
    import boto3  # noqa: PLC0415
    from botocore.config import Config as BotoConfig  # noqa: PLC0415

    # Short SQS timeouts: a hung call must not eat the time the batch needs to report its
    # failures.
    client_config = BotoConfig(
        connect_timeout=2, read_timeout=3, retries={"mode": "standard", "max_attempts": 3}
    )
    client: SQSClient = boto3.client("sqs", config=client_config)
    return client


def _lambda_client() -> LambdaClient:
    """The Lambda client, made at the breaker's first report (Invoke only: data plane)."""
    import boto3  # noqa: PLC0415
    from botocore.config import Config as BotoConfig  # noqa: PLC0415

    # Short timeouts and no retry (a retry would sleep inside the invocation): a lost report is
    # logged, and the environment reports again at its next verdict.
    client_config = BotoConfig(
        connect_timeout=2, read_timeout=3, retries={"mode": "standard", "max_attempts": 1}
    )
    client: LambdaClient = boto3.client("lambda", config=client_config)
    return client


def circuit_breaker(config: Config) -> CircuitBreaker | None:
    controller = config.breaker_controller_function
    if not (config.breaker_enabled and controller):
        return None
    return CircuitBreaker(config.breaker_rules, ControllerChannel(_lambda_client, controller))


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
        sqs=SqsActions(_sqs_client, config.dead_letter_queue_url),
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
