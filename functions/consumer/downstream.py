"""HTTP adapter for the downstream microservice: the only module that knows `requests`.

Every outcome other than a 2xx becomes a DownstreamFailure, so the rest of the consumer never
sees a library exception.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import requests

from consumer.deadline import Deadline
from consumer.errors import DownstreamFailure


class DownstreamClient:
    def __init__(self, url: str, method: str, timeout_seconds: float) -> None:
        self.url = url
        self.method = method
        self.timeout_seconds = timeout_seconds
        # One session per execution environment: warm invocations reuse its pooled connections.
        self.session = requests.Session()

    def deliver(self, body: str, idempotency_key: str, deadline: Deadline) -> int:
        """Send one message body; return the 2xx status or raise DownstreamFailure.

        Raises DeadlineExceeded, without calling, when too little of the invocation is left.
        """
        timeout_seconds = deadline.call_timeout_seconds(self.timeout_seconds)
        try:
            response = self.session.request(
                self.method,
                self.url,
                data=body.encode("utf-8"),
                headers={"Content-Type": "application/json", "Idempotency-Key": idempotency_key},
                # The same bound for connecting and for each read, within the invocation's
                # remaining time.
                timeout=(timeout_seconds, timeout_seconds),
                # A redirect is the downstream's failure to accept the message where configured;
                # following it could POST the message somewhere nobody intended.
                allow_redirects=False,
            )
        except requests.Timeout as exc:
            raise DownstreamFailure(
                f"downstream did not answer within {timeout_seconds:g}s", outcome="timeout"
            ) from exc
        except requests.ConnectionError as exc:
            raise DownstreamFailure(
                f"could not connect to the downstream: {type(exc).__name__}", outcome="connection"
            ) from exc
        except requests.RequestException as exc:
            raise DownstreamFailure(
                f"request to the downstream failed: {exc}", outcome="request-error"
            ) from exc
        with response:
            if 200 <= response.status_code <= 299:
                return response.status_code
            raise DownstreamFailure(
                f"downstream answered {response.status_code} {response.reason}",
                outcome="status",
                status_code=response.status_code,
                retry_after_seconds=retry_after_seconds(
                    response.headers.get("Retry-After"), datetime.now(UTC)
                ),
            )


def retry_after_seconds(header_value: str | None, now: datetime) -> int | None:
    """Retry-After (RFC 9110 section 10.2.3), delta-seconds or an HTTP-date, as seconds from
    now; None when it is absent or unreadable.

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
