"""HTTP adapter for the downstream microservice: the only module that knows `requests`.

Every outcome other than a 2xx becomes a DownstreamFailure, so the processing never sees a
library exception.
"""

from __future__ import annotations

from datetime import UTC, datetime

import requests

from consumer.errors import DownstreamFailure
from consumer.retry_after import retry_after_seconds


class DownstreamClient:
    def __init__(self, url: str, method: str, session: requests.Session | None = None) -> None:
        self.url = url
        self.method = method
        # One session per execution environment: warm invocations reuse its pooled connections.
        self.session = session or requests.Session()

    def deliver(self, body: str, idempotency_key: str, timeout_seconds: float) -> int:
        """Send one message body; return the 2xx status or raise DownstreamFailure."""
        try:
            response = self.session.request(
                self.method,
                self.url,
                data=body.encode("utf-8"),
                headers={"Content-Type": "application/json", "Idempotency-Key": idempotency_key},
                # The same bound for connecting and for each read; the caller keeps it inside
                # the invocation's remaining time.
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
