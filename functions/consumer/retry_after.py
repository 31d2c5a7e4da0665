"""Retry-After (RFC 9110 section 10.2.3): delta-seconds or an HTTP-date, as seconds from now."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


def retry_after_seconds(header_value: str | None, now: datetime) -> int | None:
    """Seconds to wait as the header asks, or None when it is absent or unreadable.

    An unreadable value is ignored rather than treated as an error: it only ever raises the
    delay, and our own backoff already spaces the retry.
    """
    if header_value is None:
        return None
    value = header_value.strip()
    if value.isascii() and value.isdigit():
        return int(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        # RFC 9110: HTTP-dates are always GMT, whether or not the zone is spelled out.
        when = when.replace(tzinfo=UTC)
    return max(0, math.ceil((when - now).total_seconds()))
