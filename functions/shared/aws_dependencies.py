"""The consumer's AWS clients, and the services a delivery (the consumer's, or the breaker
controller's probe) may depend on besides the queue:
Secrets Manager or SSM (the authentication header, shared.downstream) and DynamoDB
(idempotent delivery, consumer.idempotency). Their clients' timeouts and retries, and what
happens when one cannot be reached.

The consumer's own clients (SQS, Lambda) are made from botocore alone: boto3 would import
s3transfer, about half of boto3's import time, which the consumer never uses. Powertools'
idempotency and parameters utilities import boto3 themselves: only when they are configured,
on the path that uses them.

In a VPC without the endpoint a service needs, every call waits out its connect timeout. With
botocore's defaults (60 s to connect, 60 s to read, several attempts) one call outlasts the
function's 60 s. Here a call gives up within CALL_BUDGET_SECONDS, and the first call that
finds a service unreachable says so once (an ERROR log line naming the endpoint it needs, the
DependencyUnreachable metric, which the stack alarms on); for HOLD_SECONDS after it, the
environment's other calls to that service fail at once instead of each waiting again. The
messages themselves are not lost: their delivery fails and the queue's backoff retries them.

The only module that knows botocore's connection errors, for the services above.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shared.observability import Metric, count, logger

if TYPE_CHECKING:
    from botocore.config import Config as BotoConfig

# Per attempt: 2 s to connect (an endpoint in the Region answers in milliseconds), 3 s to read;
# 2 attempts in all (one retry, botocore's standard mode: total_max_attempts counts the first,
# max_attempts would not). Worst case per call: 2 x (2 + 3) s plus the retry's backoff (under a
# second), well inside the function's 60 s.
CONNECT_TIMEOUT_SECONDS = 2
READ_TIMEOUT_SECONDS = 3
MAX_ATTEMPTS = 2
CALL_BUDGET_SECONDS = MAX_ATTEMPTS * (CONNECT_TIMEOUT_SECONDS + READ_TIMEOUT_SECONDS) + 1
# After a service was found unreachable, how long this environment's calls to it fail at once.
HOLD_SECONDS = 30.0

# The endpoint a function in a VPC needs for each service (docs/deploy-safety.md, "VPC").
ENDPOINTS = {
    "secretsmanager": "an interface endpoint com.amazonaws.<region>.secretsmanager",
    "ssm": "an interface endpoint com.amazonaws.<region>.ssm",
    "dynamodb": "a gateway endpoint com.amazonaws.<region>.dynamodb in the subnets' route tables",
}


def client_config(*, retries: int = MAX_ATTEMPTS - 1) -> BotoConfig:
    """The botocore settings of every client made here: short timeouts (2 s to connect, 3 s to
    read) and botocore's standard retries, `retries` after the first attempt."""
    from botocore.config import Config as BotoConfig  # noqa: PLC0415

    return BotoConfig(
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=READ_TIMEOUT_SECONDS,
        retries={"mode": "standard", "max_attempts": retries},
    )


def new_client(service: str, *, max_attempts: int) -> Any:
    """A client of `service` with client_config's settings (`max_attempts` retries after the
    first), made from a botocore session of its own (the region, endpoint and credentials from
    the environment, as boto3's would be), without importing boto3."""
    import botocore.session  # noqa: PLC0415

    config = client_config(retries=max_attempts)
    return botocore.session.get_session().create_client(service, config=config)


class DependencyUnreachable(Exception):
    """The service could not be reached (now, or within the hold after it last failed)."""


def is_unreachable(error: BaseException) -> bool:
    """Whether botocore failed to reach the service (connect, TLS, proxy, read timeout or a
    closed connection), anywhere in the chain of errors that led to `error`: the libraries
    wrap botocore's error in theirs."""
    from botocore.exceptions import ConnectionError as BotoConnectionError  # noqa: PLC0415
    from botocore.exceptions import HTTPClientError  # noqa: PLC0415

    seen: set[int] = set()
    pending: list[BaseException] = [error]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, BotoConnectionError | HTTPClientError):
            return True
        pending.extend(e for e in (current.__cause__, current.__context__) if e is not None)
        # Powertools' idempotency errors carry the original error as an argument.
        pending.extend(a for a in current.args if isinstance(a, BaseException))
    return False


@dataclass
class Reachability:
    """One service's health as this execution environment sees it (shared by its threads)."""

    service: str
    hold_seconds: float = HOLD_SECONDS
    clock: Callable[[], float] = time.monotonic
    _unreachable_until: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def check(self) -> None:
        """Raise DependencyUnreachable without a call while the hold lasts."""
        with self._lock:
            until = self._unreachable_until
        if until is not None and self.clock() < until:
            raise DependencyUnreachable(
                f"{self.service} was unreachable moments ago: not tried again before the "
                f"{self.hold_seconds:g} s hold ends"
            )

    def failed(self, error: BaseException) -> bool:
        """Note a failed call; True when it failed to reach the service. The first such failure
        of an outage logs and counts; later ones (the hold renewed) stay quiet."""
        if not is_unreachable(error):
            return False
        with self._lock:
            first = self._unreachable_until is None
            self._unreachable_until = self.clock() + self.hold_seconds
        if first:
            count(Metric.DEPENDENCY_UNREACHABLE)
            logger.error(
                "AWS dependency unreachable",
                extra={
                    "dependency": self.service,
                    "error_type": type(error).__name__,
                    "needs_in_a_vpc": ENDPOINTS.get(self.service, ""),
                    "hold_seconds": self.hold_seconds,
                },
            )
        return True

    def succeeded(self) -> None:
        with self._lock:
            was_unreachable = self._unreachable_until is not None
            self._unreachable_until = None
        if was_unreachable:
            logger.info("AWS dependency reachable again", extra={"dependency": self.service})
