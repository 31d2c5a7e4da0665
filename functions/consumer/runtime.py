"""What an execution environment builds once and reuses across warm invocations.

Only request-independent objects live here: the parsed configuration, the SQS client, the HTTP
session and the random source. Nothing of a request is ever stored on them.
"""

from __future__ import annotations

import functools
import os
import random
from dataclasses import dataclass

import boto3
from botocore.config import Config as BotoConfig

from consumer.config import Config
from consumer.downstream import DownstreamClient
from consumer.sqs_actions import SqsActions

# Short SQS timeouts: a hung call must not eat the time the batch needs to report its failures.
_SQS_CLIENT_CONFIG = BotoConfig(
    connect_timeout=2, read_timeout=3, retries={"mode": "standard", "max_attempts": 3}
)


@dataclass(frozen=True)
class Runtime:
    config: Config
    downstream: DownstreamClient
    sqs: SqsActions
    rng: random.Random


@functools.cache
def get_runtime() -> Runtime:
    config = Config.from_environ(os.environ)
    return Runtime(
        config=config,
        downstream=DownstreamClient(
            config.downstream_url, config.downstream_method, config.downstream_timeout_seconds
        ),
        sqs=SqsActions(
            boto3.client("sqs", config=_SQS_CLIENT_CONFIG), config.dead_letter_queue_url
        ),
        rng=random.Random(),
    )
