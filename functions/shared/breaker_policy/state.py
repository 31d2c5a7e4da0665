"""The breaker's states as the controller reads them from the event source mapping, and the
BreakerState metric's values."""

from __future__ import annotations

from enum import StrEnum


class BreakerState(StrEnum):
    CLOSED = "closed"
    HALF_OPEN = "half-open"
    OPEN = "open"
    # The controller could not read the mapping: published too (BreakerStateUnknown), never
    # left as a gap the open-too-long alarm would have to guess about.
    UNKNOWN = "unknown"


# The BreakerState metric: 0 closed, 1 half-open, 2 open. The open-too-long alarm fires when its
# minimum over BreakerOpenAlarmSeconds is at least 1 (never closed for that long); an unknown
# state publishes no BreakerState but BreakerStateUnknown=1, and the alarm treats the missing
# BreakerState as breaching.
STATE_GAUGE = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}
