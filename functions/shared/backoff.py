"""The retry schedule: pure functions of the receive count, with the random source injected.

Three strategies share the cap, the final-attempt rule and Retry-After as a lower bound:

- additive-jitter: delay(n) = min(2^n + base + J, cap), J uniform in [0, jitter - 1];
- full-jitter: delay(n) uniform in [0, min(cap, base * 2^n)] (Brooker, AWS Architecture Blog, 2015);
- decorrelated: d(0) = base, d(k) = min(cap, uniform in [base, 3 * d(k-1)]), delay(n) = d(n).

The queue, not the function, waits out the delay: the consumer sets the message's visibility
timeout to it.
"""

from __future__ import annotations

import hashlib
import random
import struct
from dataclasses import dataclass
from enum import StrEnum

# ChangeMessageVisibility accepts 0..43200 s, and a message's visibility cannot be extended
# beyond 12 hours from its receive in total.
MAX_VISIBILITY_TIMEOUT_SECONDS = 43_200
# 2^62 s is far beyond any cap SQS accepts; bounding the exponent keeps a runaway receive count
# (a queue without a redrive policy) from building huge integers.
_MAX_EXPONENT = 62
# The decorrelated chain forgets its start within a few dozen steps (each step is a fresh draw
# between base and 3x the last one, under the cap), so regenerating more steps than this would
# cost time for a runaway receive count without changing the distribution of the delay.
_MAX_CHAIN_STEPS = 64


class BackoffStrategy(StrEnum):
    ADDITIVE_JITTER = "additive-jitter"
    FULL_JITTER = "full-jitter"
    DECORRELATED = "decorrelated"


@dataclass(frozen=True)
class BackoffPolicy:
    base_seconds: int = 30
    jitter_seconds: int = 60
    max_seconds: int = MAX_VISIBILITY_TIMEOUT_SECONDS
    max_receive_count: int = 10
    strategy: BackoffStrategy = BackoffStrategy.ADDITIVE_JITTER


def delay_seconds(
    receive_count: int,
    policy: BackoffPolicy,
    rng: random.Random,
    message_id: str | None = None,
) -> int:
    """The backoff delay after the `receive_count`-th delivery failed.

    The decorrelated strategy needs the message id: SQS keeps no state between deliveries, so the
    chain of delays is regenerated from a random source seeded by it.
    """
    match policy.strategy:
        case BackoffStrategy.ADDITIVE_JITTER:
            return _delay(receive_count, policy, jitter=rng.randint(0, policy.jitter_seconds - 1))
        case BackoffStrategy.FULL_JITTER:
            return rng.randint(0, _exponential_ceiling(receive_count, policy))
        case BackoffStrategy.DECORRELATED:
            if message_id is None:
                raise ValueError("the decorrelated strategy needs the message id")
            return _decorrelated(receive_count, policy, message_id)


def _delay(receive_count: int, policy: BackoffPolicy, jitter: int) -> int:
    exponential = 1 << min(max(receive_count, 0), _MAX_EXPONENT)
    return min(exponential + policy.base_seconds + jitter, policy.max_seconds)


def _exponential_ceiling(receive_count: int, policy: BackoffPolicy) -> int:
    return min(policy.base_seconds << min(max(receive_count, 0), _MAX_EXPONENT), policy.max_seconds)


def _decorrelated(receive_count: int, policy: BackoffPolicy, message_id: str) -> int:
    steps = min(max(receive_count, 0), _MAX_CHAIN_STEPS)
    # The random source seeded by the message id is SHAKE-128 of it: one call yields 8 bytes for
    # every step, where random.Random(message_id) would cost more to seed than the whole chain
    # (every failed delivery redraws the chain from its start).
    draws = struct.unpack(f">{steps}Q", hashlib.shake_128(message_id.encode()).digest(8 * steps))
    sleep = min(policy.base_seconds, policy.max_seconds)
    for draw in draws:
        # max(): a cap below the base would otherwise leave an empty range. The multiply-shift
        # maps the 64-bit draw into [0, width) without floating point (bias below width / 2^64).
        width = max(3 * sleep - policy.base_seconds, 0) + 1
        sleep = min(policy.base_seconds + (draw * width >> 64), policy.max_seconds)
    return sleep


def is_final_attempt(receive_count: int, policy: BackoffPolicy) -> bool:
    """True when SQS will move the message to the dead-letter queue at its next receive."""
    return receive_count >= policy.max_receive_count


@dataclass(frozen=True)
class RetryPlan:
    """What becomes of a message whose delivery just failed, decided once."""

    visibility_seconds: int
    final_attempt: bool


def plan_retry(
    receive_count: int,
    policy: BackoffPolicy,
    rng: random.Random,
    *,
    message_id: str | None = None,
    retry_after_seconds: int | None = None,
    ceiling_seconds: int | None = None,
) -> RetryPlan:
    """The visibility timeout to give a message whose delivery just failed.

    On the final attempt it is 0: waiting would only delay the move to the dead-letter queue.
    A downstream's Retry-After is a lower bound, still within the cap. `ceiling_seconds` is what
    SQS still accepts for this receive (its 12-hour limit counts from the receive).
    """
    if is_final_attempt(receive_count, policy):
        return RetryPlan(visibility_seconds=0, final_attempt=True)
    delay = honour_retry_after(
        delay_seconds(receive_count, policy, rng, message_id), retry_after_seconds, policy
    )
    if ceiling_seconds is not None:
        delay = min(delay, ceiling_seconds)
    return RetryPlan(visibility_seconds=delay, final_attempt=False)


def next_visibility_seconds(
    receive_count: int,
    policy: BackoffPolicy,
    rng: random.Random,
    retry_after_seconds: int | None = None,
    message_id: str | None = None,
) -> int:
    """plan_retry's visibility alone, without the 12-hour ceiling of a given receive."""
    plan = plan_retry(
        receive_count,
        policy,
        rng,
        message_id=message_id,
        retry_after_seconds=retry_after_seconds,
    )
    return plan.visibility_seconds


def honour_retry_after(delay: int, retry_after_seconds: int | None, policy: BackoffPolicy) -> int:
    """The delay raised to the downstream's Retry-After, if any, but never beyond the cap."""
    if retry_after_seconds is None:
        return delay
    return min(max(delay, retry_after_seconds), policy.max_seconds)


def delay_range_seconds(receive_count: int, policy: BackoffPolicy) -> tuple[int, int]:
    """The smallest and largest delay the policy can give after the `receive_count`-th failure."""
    match policy.strategy:
        case BackoffStrategy.ADDITIVE_JITTER:
            return (
                _delay(receive_count, policy, jitter=0),
                _delay(receive_count, policy, jitter=policy.jitter_seconds - 1),
            )
        case BackoffStrategy.FULL_JITTER:
            return 0, _exponential_ceiling(receive_count, policy)
        case BackoffStrategy.DECORRELATED:
            steps = min(max(receive_count, 0), _MAX_CHAIN_STEPS)
            floor = min(policy.base_seconds, policy.max_seconds)
            return floor, min(max(policy.base_seconds * 3**steps, floor), policy.max_seconds)
