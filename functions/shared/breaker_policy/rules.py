"""What trips the breaker and what pauses delivery, judged from one window of observations.

Every downstream call ends in one of these outcomes:

- down: a 5xx, or a 429 without Retry-After: the downstream is down or overloaded and gave no
  guidance; no-answer: a connection error or a timeout. Both trip the breaker.
- auth: a status of `pause_status_codes` (401 and 403 by default): the credentials are refused,
  typically after a rotation. These pause delivery (the breaker opens) instead of letting the
  backlog be dead-lettered; the probe, sent with the authentication header, says when the
  credentials work again.
- paced: any answer with a valid Retry-After: the downstream is up and asks for a pause. It
  never trips and is not counted as a call at all (the message's backoff honours it).
- neutral: any other answer (2xx, 3xx, a message's own 4xx): the downstream is up.

The verdict over a window (`WindowCounts`): trip or pause when, within `window_s`,
at least `whole_batch_failures` batches failed as a whole (every call of the batch down or
auth), at least `min_failures` calls failed (down or auth), and those failures are at least
`failure_ratio` of the calls. Pause when auth failures are the greater part, trip otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class CallOutcome(StrEnum):
    DOWN = "down"
    NO_ANSWER = "no-answer"
    AUTH = "auth"
    PACED = "paced"
    NEUTRAL = "neutral"


class Verdict(StrEnum):
    NONE = "none"
    TRIP = "trip"
    PAUSE = "pause"


DEFAULT_PAUSE_STATUS_CODES = frozenset({401, 403})


@dataclass(frozen=True)
class WindowCounts:
    """One environment's calls within the window (answers with Retry-After left out)."""

    calls: int = 0
    # Down and no-answer together (no_answer_failures is the share without an answer).
    down_failures: int = 0
    auth_failures: int = 0
    whole_batch_failures: int = 0
    no_answer_failures: int = 0

    @property
    def failures(self) -> int:
        return self.down_failures + self.auth_failures


@dataclass(frozen=True)
class TripRules:
    """The template's BreakerWindowSeconds, BreakerFailurePercent, BreakerMinimumFailures,
    BreakerWholeBatchFailures and BreakerPauseStatusCodes. The defaults are the study's
    (benchmarks/breaker.py; a test holds them equal)."""

    window_s: float = 60.0
    failure_ratio: float = 0.9
    min_failures: int = 10
    whole_batch_failures: int = 3
    pause_status_codes: frozenset[int] = DEFAULT_PAUSE_STATUS_CODES

    def classify(self, status_code: int | None, *, has_retry_after: bool) -> CallOutcome:
        """The outcome of one call: status_code None means no answer; 2xx is neutral."""
        if has_retry_after:
            return CallOutcome.PACED
        if status_code is None:
            return CallOutcome.NO_ANSWER
        if status_code >= 500 or status_code == 429:
            return CallOutcome.DOWN
        if status_code in self.pause_status_codes:
            return CallOutcome.AUTH
        return CallOutcome.NEUTRAL

    def verdict(self, counts: WindowCounts) -> Verdict:
        failures = counts.failures
        if (
            counts.whole_batch_failures >= self.whole_batch_failures
            and failures >= self.min_failures
            and failures >= self.failure_ratio * counts.calls
        ):
            return Verdict.PAUSE if counts.auth_failures > counts.down_failures else Verdict.TRIP
        return Verdict.NONE


def batch_failed_whole(calls: int, down_failures: int, auth_failures: int) -> bool:
    """A batch failed as a whole when it made calls and every one of them failed (down or
    auth). A batch without calls (every record failed fast, or skipped) says nothing."""
    return calls > 0 and down_failures + auth_failures == calls
