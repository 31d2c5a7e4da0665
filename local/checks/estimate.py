"""How long a local run will take from its first send, said before it starts.

The estimate is the time to move every message once (the slowest of the send, the execution
environments and the local system's own pace), plus the time the last retry can take: for a run
whose downstream fails at random, a message may fail every attempt but its last, so the whole
backoff schedule's longest span (asked of the function's own policy); for an outage alone, the
longest delays until the first retry that surely comes after the outage.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from local.shared.run_deadline import RunWork
from shared.backoff import delay_range_seconds

# The local system's own pace, messages a second from the first send to the last invocation,
# when the environments are not the limit: `make run RUN_ARGS="--messages 1000 --failure-rate 0
# --latency-ms 50 --outage 0"` moved 346 to 431 a second on the shared 2-core machine
# (docs/performance.md); rounded down, for a machine busy with other work.
LOCAL_SYSTEM_MESSAGES_PER_SECOND = 300.0
# What a batch costs an environment beyond its downstream calls: receive, invoke, delete.
BATCH_OVERHEAD_SECONDS = 0.1
# Runs longer than this say so plainly before they start.
LONG_RUN_SECONDS = 60.0


@dataclass(frozen=True)
class RunEstimate:
    messages: int
    # Messages a second while every message is moved once.
    messages_per_second: float
    # Seconds to move every message once, and what the retries add after that.
    moving_seconds: float
    retry_seconds: float
    # What the retries wait for: "" without failures.
    retry_reason: str = ""

    @property
    def seconds(self) -> float:
        return self.moving_seconds + self.retry_seconds

    def render(self) -> str:
        text = (
            f"estimate   about {_duration(self.seconds)} from the first send: "
            f"{self.messages} messages at ~{self.messages_per_second:.0f}/s"
        )
        if self.retry_seconds:
            text += f", then up to {_duration(self.retry_seconds)} of retries {self.retry_reason}"
        if self.seconds > LONG_RUN_SECONDS:
            text += f"\n           this run is long: over a minute ({_duration(self.seconds)})"
        return text


def estimate_run(
    work: RunWork,
    *,
    failure_rate: float,
    send_rate: float,
    batch_size: int,
    delivery_concurrency: int,
) -> RunEstimate:
    # Each environment delivers a batch's records `delivery_concurrency` at a time.
    rounds = math.ceil(batch_size / max(1, delivery_concurrency))
    batch_seconds = rounds * work.downstream_latency_seconds + BATCH_OVERHEAD_SECONDS
    environments_rate = work.concurrency * batch_size / batch_seconds
    rate = min(environments_rate, LOCAL_SYSTEM_MESSAGES_PER_SECOND)
    if send_rate > 0:
        rate = min(rate, send_rate)
    retry_seconds, reason = _retry_tail(work, failure_rate)
    return RunEstimate(
        messages=work.messages,
        messages_per_second=rate,
        moving_seconds=work.messages / rate,
        retry_seconds=retry_seconds,
        retry_reason=reason,
    )


def _retry_tail(work: RunWork, failure_rate: float) -> tuple[float, str]:
    attempts = work.policy.max_receive_count
    delays = [
        tuple(max(d, work.retry_after_seconds) for d in delay_range_seconds(n, work.policy))
        for n in range(1, attempts)
    ]
    if failure_rate > 0:
        # A message that fails every attempt but the last waits out every delay.
        return float(sum(high for _, high in delays)), "for a message failing every attempt"
    if work.outage_seconds <= 0:
        return 0.0, ""
    # A message received at the outage's start retries until a retry surely comes after it.
    tail = low_total = 0.0
    for low, high in delays:
        tail += high
        low_total += low
        if low_total >= work.outage_seconds:
            break
    return work.outage_seconds + tail, f"through the {work.outage_seconds:g} s outage"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 5400:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"
