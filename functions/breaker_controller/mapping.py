"""Lambda API adapter: the consumer's event source mapping, by the UUID the template gives
(no ListEventSourceMappings). The only module of the controller that knows the Lambda client.

Every request is one of the account's 15 control-plane requests a second (shared by every
caller, not raisable: Lambda quotas), so each is counted, botocore's own retries are off, and
the retries here are few and jittered: TooManyRequestsException (the quota),
ResourceConflictException (an update while another is in progress) and
ResourceInUseException.
"""

from __future__ import annotations

import functools
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from breaker_controller.errors import MappingUnavailable
from shared.breaker_policy.state import BreakerState
from shared.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_lambda.client import LambdaClient
    from mypy_boto3_lambda.type_defs import EventSourceMappingConfigurationResponseTypeDef

RETRYABLE_CODES = frozenset(
    {"TooManyRequestsException", "ResourceConflictException", "ResourceInUseException"}
)
# GetEventSourceMapping's State values. A mapping in one of these is on its way somewhere: a
# transition in progress is no reason to ask for another (an update would be refused with
# ResourceConflictException anyway).
IN_TRANSITION = frozenset({"Creating", "Enabling", "Disabling", "Updating", "Deleting"})
_OPEN_STATES = frozenset({"Disabled", "Disabling"})


@dataclass(frozen=True)
class MappingView:
    uuid: str
    state: str
    # ScalingConfig.MaximumConcurrency; None when the mapping has none (unlimited).
    maximum_concurrency: int | None
    # LastModified, seconds since the epoch: "the date that the event source mapping was last
    # updated or that its state changed". None when the API did not say.
    last_modified: float | None = None

    @property
    def in_transition(self) -> bool:
        return self.state in IN_TRANSITION

    def breaker_state(self, configured_concurrency: int) -> BreakerState:
        if self.state in _OPEN_STATES:
            return BreakerState.OPEN
        if self.maximum_concurrency is not None and (
            self.maximum_concurrency < configured_concurrency
        ):
            return BreakerState.HALF_OPEN
        return BreakerState.CLOSED


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 3
    base_s: float = 0.25
    cap_s: float = 2.0

    def delay_s(self, attempt: int, rng: random.Random) -> float:
        # Full jitter (Brooker, "Exponential Backoff And Jitter"): callers that collided do
        # not collide again.
        return rng.uniform(0, min(self.cap_s, self.base_s * 2**attempt))


class EventSourceMapping:
    def __init__(
        self,
        make_client: Callable[[], LambdaClient],
        uuid: str,
        *,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self._make_client = make_client
        self.uuid = uuid
        self._retry = retry or RetryPolicy()
        self._sleep = sleep
        self._rng = rng or random.Random()
        # Every request sent, retries included: the controller's share of the account's quota.
        self.requests = 0

    @functools.cached_property
    def client(self) -> LambdaClient:
        return self._make_client()

    def read(self) -> MappingView:
        response = self._call(
            "GetEventSourceMapping", lambda: self.client.get_event_source_mapping(UUID=self.uuid)
        )
        return _view(response)

    def disable(self) -> MappingView:
        return _view(
            self._call(
                "UpdateEventSourceMapping",
                lambda: self.client.update_event_source_mapping(UUID=self.uuid, Enabled=False),
            )
        )

    def enable(self, maximum_concurrency: int) -> MappingView:
        """Enabled, at this MaximumConcurrency: one request, whether it was disabled or not."""
        return _view(
            self._call(
                "UpdateEventSourceMapping",
                lambda: self.client.update_event_source_mapping(
                    UUID=self.uuid,
                    Enabled=True,
                    ScalingConfig={"MaximumConcurrency": maximum_concurrency},
                ),
            )
        )

    def _call(
        self, operation: str, request: Callable[[], EventSourceMappingConfigurationResponseTypeDef]
    ) -> EventSourceMappingConfigurationResponseTypeDef:
        attempt = 0
        while True:
            self.requests += 1
            try:
                return request()
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                if code not in RETRYABLE_CODES or attempt + 1 >= self._retry.attempts:
                    raise MappingUnavailable(
                        f"{operation} {self.uuid} failed: {_describe(exc)}"
                    ) from exc
                delay_s = self._retry.delay_s(attempt, self._rng)
                logger.warning(
                    "control-plane request refused; retrying",
                    operation=operation,
                    error_code=code,
                    attempt=attempt + 1,
                    delay_s=round(delay_s, 3),
                )
                self._sleep(delay_s)
                attempt += 1
            except BotoCoreError as exc:
                raise MappingUnavailable(
                    f"{operation} {self.uuid} failed: {type(exc).__name__}"
                ) from exc


def _view(mapping: EventSourceMappingConfigurationResponseTypeDef | Any) -> MappingView:
    scaling = mapping.get("ScalingConfig") or {}
    concurrency = scaling.get("MaximumConcurrency")
    modified = mapping.get("LastModified")
    return MappingView(
        uuid=mapping["UUID"],
        state=mapping.get("State", ""),
        maximum_concurrency=concurrency if isinstance(concurrency, int) else None,
        last_modified=modified.timestamp() if isinstance(modified, datetime) else None,
    )


def _describe(exc: ClientError) -> str:
    error = exc.response.get("Error", {})
    return f"{error.get('Code', 'error')}: {error.get('Message', '')}".strip()
