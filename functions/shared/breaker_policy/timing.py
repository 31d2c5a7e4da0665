"""The controller's timings, and the longest time the breaker may keep a message from being
received: derived from the source queue's retention, and used by both the controller (the
expiry sweep) and the consumer (its would-expire rule counts it into the next attempt's time)."""

from __future__ import annotations

from dataclasses import dataclass

# The breaker may hold the mapping disabled for at most a quarter of the retention before the
# controller sweeps the queue (docs/circuit-breaker.md, "Never stuck"): 1 day at the default
# 4 days, 150 s at 600 s.
MAX_OPEN_SHARE_OF_RETENTION = 4
# The backstop's period (template.yaml's BreakerBackstopRule, rate(5 minutes)): when the
# Scheduler schedule never fires, the EventBridge rule's tick is the one that finds the mapping
# open past max_open_seconds, at most this long after (issue 17).
BACKSTOP_PERIOD_SECONDS = 300
# What the expiry sweep needs to receive every waiting message once, so that the consumer's
# would-expire rule sees it (a few batches at half-open's concurrency).
SWEEP_RECEIVE_SECONDS = 60
# The longest hold (a quarter, plus a backstop period) plus the sweep's receive must fit in the
# retention: r/4 + 300 + 60 <= r, so r >= 480. A retention below this leaves the breaker no room
# (template.yaml's Rule BreakerNeedsRetentionRoom refuses it).
MIN_RETENTION_SECONDS_WITH_BREAKER = 480


def max_open_seconds(retention_seconds: int) -> int:
    """When the controller's tick sweeps: a quarter of the retention."""
    return retention_seconds // MAX_OPEN_SHARE_OF_RETENTION


def longest_hold_seconds(retention_seconds: int) -> int:
    """The longest the mapping can stay disabled: a tick must come to sweep, and with the
    Scheduler schedule silent only the backstop's comes, up to one period late."""
    return max_open_seconds(retention_seconds) + BACKSTOP_PERIOD_SECONDS


@dataclass(frozen=True)
class ControllerPolicy:
    """The study's probe and closing times (benchmarks/breaker.py) and the controller's own."""

    probe_interval_s: float = 60.0
    # Half-open closes after this long without a trip report (the study's close_after_s).
    close_after_s: float = 60.0
    # Half-open's MaximumConcurrency: the study's starting pace of 3 calls a second with
    # batches of 10, one poller each (never below the mapping's minimum of 2).
    half_open_concurrency: int = 3
    min_concurrency: int = 2
    # Reports older than this are stale: the schedule's probe has looked since.
    report_max_age_s: float = 60.0
    # How long the controller trusts its own last reading of the mapping when a report comes
    # (it is the mapping's single writer; the probe reads it again every minute).
    view_fresh_s: float = 55.0
    # Poison flood: after this many trips of a half-open mapping that a passing probe opened,
    # within close_after_s each, the downstream is up and the failures are the messages' own:
    # the controller closes the mapping and ignores trips for trust_probe_s.
    flap_retrips: int = 3
    trust_probe_s: float = 900.0

    def half_open(self, configured_concurrency: int) -> int:
        return max(
            self.min_concurrency, min(self.half_open_concurrency, configured_concurrency - 1)
        )
