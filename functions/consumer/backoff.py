"""The retry schedule: pure functions of the receive count, with the random source injected.

delay(n) = min(2^n + base + J, cap), J uniform in [0, jitter - 1]. The queue, not the function,
waits out the delay: the consumer sets the message's visibility timeout to it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

# 2^62 s is far beyond any cap SQS accepts; bounding the exponent keeps a runaway receive count
# (a queue without a redrive policy) from building huge integers.
_MAX_EXPONENT = 62


@dataclass(frozen=True)
class BackoffPolicy:
    base_seconds: int = 30
    jitter_seconds: int = 60
    max_seconds: int = 43_200
    max_receive_count: int = 10


def delay_seconds(receive_count: int, policy: BackoffPolicy, rng: random.Random) -> int:
    """The backoff delay after the `receive_count`-th delivery failed."""
    return _delay(receive_count, policy, jitter=rng.randint(0, policy.jitter_seconds - 1))


def _delay(receive_count: int, policy: BackoffPolicy, jitter: int) -> int:
    exponential = 1 << min(max(receive_count, 0), _MAX_EXPONENT)
    return min(exponential + policy.base_seconds + jitter, policy.max_seconds)


def is_final_attempt(receive_count: int, policy: BackoffPolicy) -> bool:
    """True when SQS will move the message to the dead-letter queue at its next receive."""
    return receive_count >= policy.max_receive_count


def next_visibility_seconds(
    receive_count: int,
    policy: BackoffPolicy,
    rng: random.Random,
    retry_after_seconds: int | None = None,
) -> int:
    """The visibility timeout to give a message whose delivery just failed.

    On the final attempt it is 0: waiting would only delay the move to the dead-letter queue.
    A downstream's Retry-After is a lower bound, still within the cap.
    """
    if is_final_attempt(receive_count, policy):
        return 0
    delay = delay_seconds(receive_count, policy, rng)
    if retry_after_seconds is not None:
        delay = min(max(delay, retry_after_seconds), policy.max_seconds)
    return delay


def delay_range_seconds(receive_count: int, policy: BackoffPolicy) -> tuple[int, int]:
    """The smallest and largest delay the policy can give after the `receive_count`-th failure."""
    return (
        _delay(receive_count, policy, jitter=0),
        _delay(receive_count, policy, jitter=policy.jitter_seconds - 1),
    )
