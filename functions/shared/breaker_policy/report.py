"""The report a consumer environment sends the controller: {"breakerReport": {...}}, by an
asynchronous Invoke (InvocationType Event). What the environment saw within its window, its
own verdict, and when. The controller judges the counts again with its own rules: the verdict
travels for the logs only."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from shared.breaker_policy.rules import Verdict, WindowCounts

REPORT_KEY = "breakerReport"


class InvalidReport(ValueError):
    """The event is not a breaker report this version understands."""


@dataclass(frozen=True)
class BreakerReport:
    verdict: Verdict
    counts: WindowCounts
    # Wall-clock seconds since the epoch when the environment judged its window.
    observed_at: float
    # Which execution environment: a random id it draws once (logs only).
    environment: str = ""

    def to_event(self) -> dict[str, Any]:
        return {
            REPORT_KEY: {
                "verdict": str(self.verdict),
                "calls": self.counts.calls,
                "downFailures": self.counts.down_failures,
                "authFailures": self.counts.auth_failures,
                "wholeBatchFailures": self.counts.whole_batch_failures,
                "observedAt": round(self.observed_at, 3),
                "environment": self.environment,
            }
        }

    @classmethod
    def from_event(cls, event: Any) -> BreakerReport:
        body = event.get(REPORT_KEY) if isinstance(event, dict) else None
        if not isinstance(body, dict):
            raise InvalidReport(f"expected {{{REPORT_KEY!r}: {{...}}}}")
        try:
            verdict = Verdict(body["verdict"])
            counts = WindowCounts(
                calls=_count(body, "calls"),
                down_failures=_count(body, "downFailures"),
                auth_failures=_count(body, "authFailures"),
                whole_batch_failures=_count(body, "wholeBatchFailures"),
            )
            observed_at = body["observedAt"]
        except (KeyError, ValueError, TypeError) as exc:
            raise InvalidReport(f"malformed breaker report: {exc!r}") from None
        if not isinstance(observed_at, int | float) or not math.isfinite(observed_at):
            raise InvalidReport("malformed breaker report: observedAt is not a number")
        if counts.failures > counts.calls:
            raise InvalidReport("malformed breaker report: more failures than calls")
        environment = body.get("environment", "")
        return cls(verdict, counts, float(observed_at), str(environment)[:64])


def _count(body: dict[str, Any], key: str) -> int:
    value = body[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{key} is not a count")
    return value
