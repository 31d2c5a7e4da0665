"""How long a local run may take before the messages still on the queue are called unfinished.

The deadline grows with the work the run was given: the backoff schedule (asked of the
function's own policy, never re-derived here), the queue's visibility timeout (what a message
waits after a whole-batch failure: a crash, a timeout, a refused visibility change), the
function timeout of every attempt, and the messages themselves, which the mapping's
concurrency works through a batch at a time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from shared.backoff import BackoffPolicy, BackoffStrategy, delay_range_seconds

# Time one delivery attempt costs an environment beyond the downstream's answer time, measured
# loosely on a busy 2-core machine (receive, invoke, the call, the visibility change, delete).
PER_DELIVERY_SECONDS = 0.15
# Beyond everything counted: cold starts and the emulator's 1 s receive loop.
SLACK_SECONDS = 60.0


def policy_from_parameters(parameters: Mapping[str, str]) -> BackoffPolicy:
    """The backoff policy the deployed function runs with (its template parameters)."""
    return BackoffPolicy(
        base_seconds=int(parameters["BackoffBaseSeconds"]),
        jitter_seconds=int(parameters["BackoffJitterSeconds"]),
        max_seconds=int(parameters["BackoffMaxSeconds"]),
        max_receive_count=int(parameters["MaxReceiveCount"]),
        strategy=BackoffStrategy(parameters["BackoffStrategy"]),
    )


@dataclass(frozen=True)
class RunWork:
    messages: int
    policy: BackoffPolicy
    function_timeout_seconds: float
    queue_visibility_timeout_seconds: float
    concurrency: int
    downstream_latency_seconds: float = 0.0
    outage_seconds: float = 0.0
    # The longest Retry-After the downstream may answer: a lower bound of each delay.
    retry_after_seconds: float = 0.0
    # Whole-batch failures or refused visibility changes one message may meet in a row: each
    # costs the queue's visibility timeout. One is always allowed for (an init or a timeout).
    visibility_waits: int = 1
    # The breaker's probe schedule (0: no breaker). An open breaker waits for the next probe
    # after the outage, and half-open then lets the backlog through slowly.
    probe_period_seconds: float = 0.0
    batch_size: int = 10


def deadline_seconds(work: RunWork) -> float:
    """Seconds after the last message was sent by which every message's story can have ended."""
    attempts = work.policy.max_receive_count
    schedule = sum(
        max(delay_range_seconds(n, work.policy)[1], work.retry_after_seconds)
        for n in range(1, attempts)
    )
    backlog = (
        work.messages
        * attempts
        * (PER_DELIVERY_SECONDS + work.downstream_latency_seconds)
        / max(1, work.concurrency)
    )
    return (
        _breaker_seconds(work)
        + work.outage_seconds
        + schedule
        + work.visibility_waits * work.queue_visibility_timeout_seconds
        + attempts * work.function_timeout_seconds
        + backlog
        + SLACK_SECONDS
    )


# Half-open: at least this long before the breaker closes, and the lowest concurrency it
# runs at, each environment making batch_size / 10 calls a second (the breaker's contract).
HALF_OPEN_SECONDS = 60.0
HALF_OPEN_LEAST_CONCURRENCY = 2


def _breaker_seconds(work: RunWork) -> float:
    if work.probe_period_seconds <= 0:
        return 0.0
    half_open_rate = HALF_OPEN_LEAST_CONCURRENCY * max(1, work.batch_size) / 10
    return work.probe_period_seconds + HALF_OPEN_SECONDS + work.messages / half_open_rate
