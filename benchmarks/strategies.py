"""The retry strategies the study compares, as functions the models call after a failed attempt.

A strategy maps (receive count, message id, Retry-After, random source) to the visibility timeout
the consumer would set, or to None when it sets none and the queue's own VisibilityTimeout applies.

The project's strategies are imported from the function's code, never rewritten: S0 is
BACKOFF_STRATEGY=additive-jitter, S2 and S3 are =full-jitter and =decorrelated. S1 is their
un-jittered envelope, read from the same module. S4 (Sidekiq) exists only here, and borrows the
project's cap, final-attempt rule and Retry-After handling so that only the formula differs.
CB is S0 per message plus the mapping-level circuit breaker of benchmarks.breaker.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, replace

from shared.backoff import (
    BackoffPolicy,
    BackoffStrategy,
    delay_range_seconds,
    honour_retry_after,
    is_final_attempt,
    next_visibility_seconds,
)

type VisibilityFunction = Callable[[int, str, int | None, random.Random], int | None]


@dataclass(frozen=True)
class Strategy:
    key: str
    name: str
    visibility: VisibilityFunction
    # The mapping-level circuit breaker of benchmarks.breaker on top of the per-message backoff.
    breaker: bool = False


def strategies(policy: BackoffPolicy) -> dict[str, Strategy]:
    """S0..S5 and CB with the given base, cap and max receive count (S0's jitter for CB too)."""
    additive = replace(policy, strategy=BackoffStrategy.ADDITIVE_JITTER)
    full_jitter = replace(policy, strategy=BackoffStrategy.FULL_JITTER)
    decorrelated = replace(policy, strategy=BackoffStrategy.DECORRELATED)

    def s0_additive_jitter(
        n: int, message_id: str, retry_after: int | None, rng: random.Random
    ) -> int:
        return next_visibility_seconds(n, additive, rng, retry_after, message_id=message_id)

    def s1_exponential(n: int, _: str, retry_after: int | None, __: random.Random) -> int:
        if is_final_attempt(n, policy):
            return 0
        # Full jitter draws below this ceiling, min(cap, base * 2^n): without the draw it is
        # plain capped exponential backoff.
        return honour_retry_after(delay_range_seconds(n, full_jitter)[1], retry_after, policy)

    def s2_full_jitter(n: int, _: str, retry_after: int | None, rng: random.Random) -> int:
        return next_visibility_seconds(n, full_jitter, rng, retry_after)

    def s3_decorrelated(
        n: int, message_id: str, retry_after: int | None, rng: random.Random
    ) -> int:
        return next_visibility_seconds(n, decorrelated, rng, retry_after, message_id=message_id)

    def s4_sidekiq(n: int, _: str, retry_after: int | None, rng: random.Random) -> int:
        if is_final_attempt(n, policy):
            return 0
        # Sidekiq counts retries from 0: its count is the receive count minus one.
        count = n - 1
        delay = count**4 + 15 + rng.randrange(10 * (count + 1))
        return honour_retry_after(min(delay, policy.max_seconds), retry_after, policy)

    def s5_fixed(_: int, __: str, ___: int | None, ____: random.Random) -> None:
        return None

    return {
        strategy.key: strategy
        for strategy in (
            Strategy("S0", "additive-jitter: 2^n + base + U[0, jitter)", s0_additive_jitter),
            Strategy("S1", "capped exponential, no jitter", s1_exponential),
            Strategy("S2", "full jitter", s2_full_jitter),
            Strategy("S3", "decorrelated jitter", s3_decorrelated),
            Strategy("S4", "Sidekiq: c^4 + 15 + rand(10(c+1))", s4_sidekiq),
            Strategy("S5", "fixed visibility timeout (no backoff)", s5_fixed),
            Strategy(
                "CB",
                "circuit breaker (open / half-open / closed) over additive-jitter",
                s0_additive_jitter,
                breaker=True,
            ),
        )
    }
