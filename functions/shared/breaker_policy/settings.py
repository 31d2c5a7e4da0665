"""The trip and pause rules' settings, read the same way by the consumer and the controller from
the environment the template gives both (BREAKER_WINDOW_SECONDS, BREAKER_FAILURE_PERCENT,
BREAKER_MINIMUM_FAILURES, BREAKER_WHOLE_BATCH_FAILURES, BREAKER_PAUSE_STATUS_CODES)."""

from __future__ import annotations

from collections.abc import Mapping

from shared.breaker_policy.rules import DEFAULT_PAUSE_STATUS_CODES, TripRules


def rules_from_environ(environ: Mapping[str, str], problems: list[str]) -> TripRules:
    """The rules; each bad setting appends a problem naming the variable and keeps its default."""
    defaults = TripRules()

    def number(name: str, low: int, high: int, default: int) -> int:
        raw = environ.get(name, "").strip()
        if not raw:
            return default
        if not (raw.isascii() and raw.isdigit() and low <= int(raw) <= high):
            problems.append(f"{name}={raw!r}: expected a whole number from {low} to {high}")
            return default
        return int(raw)

    return TripRules(
        window_s=float(number("BREAKER_WINDOW_SECONDS", 10, 3600, int(defaults.window_s))),
        failure_ratio=number("BREAKER_FAILURE_PERCENT", 1, 100, round(defaults.failure_ratio * 100))
        / 100,
        min_failures=number("BREAKER_MINIMUM_FAILURES", 1, 10_000, defaults.min_failures),
        whole_batch_failures=number(
            "BREAKER_WHOLE_BATCH_FAILURES", 1, 1000, defaults.whole_batch_failures
        ),
        pause_status_codes=_pause_codes(environ, problems),
    )


def _pause_codes(environ: Mapping[str, str], problems: list[str]) -> frozenset[int]:
    raw = environ.get("BREAKER_PAUSE_STATUS_CODES")
    if raw is None:
        return DEFAULT_PAUSE_STATUS_CODES
    codes: set[int] = set()
    for item in raw.split(","):
        text = item.strip()
        if not text:
            continue
        if not (text.isascii() and text.isdigit() and 400 <= int(text) <= 499 and text != "429"):
            problems.append(
                f"BREAKER_PAUSE_STATUS_CODES: {text!r} is not a 4xx status other than 429"
            )
            continue
        codes.add(int(text))
    return frozenset(codes)
