"""Lambda API adapter: the function's own event source mapping, which holds the circuit breaker's
state. The only module that knows the Lambda client and its errors.

The mapping is found once per execution environment with ListEventSourceMappings (this
function, this source queue; an SQS queue has one mapping per function) and then read and
changed by its UUID, the only mapping the role may read or change
(template.yaml, BreakerMappingAccess).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from consumer.breaker import MappingView
from consumer.errors import MappingUnavailable

if TYPE_CHECKING:
    from mypy_boto3_lambda.client import LambdaClient
    from mypy_boto3_lambda.type_defs import EventSourceMappingConfigurationResponseTypeDef


class EventSourceMapping:
    def __init__(
        self, make_client: Callable[[], LambdaClient], function_name: str, queue_arn: str
    ) -> None:
        self._make_client = make_client
        self.function_name = function_name
        self.queue_arn = queue_arn
        self._lock = threading.Lock()
        # The mapping's UUID once found; "" when the function has no mapping on the queue.
        self._uuid: str | None = None

    @functools.cached_property
    def client(self) -> LambdaClient:
        """Made at first use: an environment whose breaker is off never makes it."""
        return self._make_client()

    def read(self) -> MappingView | None:
        uuid = self._find()
        if not uuid:
            return None
        try:
            mapping = self.client.get_event_source_mapping(UUID=uuid)
        except (ClientError, BotoCoreError) as exc:
            raise MappingUnavailable(
                f"GetEventSourceMapping {uuid} failed: {_describe(exc)}"
            ) from exc
        return _view(mapping)

    def disable(self, uuid: str) -> None:
        self._update(uuid, Enabled=False)

    def set_concurrency(self, uuid: str, maximum_concurrency: int, *, enable: bool) -> None:
        if enable:
            self._update(
                uuid, Enabled=True, ScalingConfig={"MaximumConcurrency": maximum_concurrency}
            )
        else:
            self._update(uuid, ScalingConfig={"MaximumConcurrency": maximum_concurrency})

    def _update(self, uuid: str, **changes: object) -> None:
        try:
            self.client.update_event_source_mapping(UUID=uuid, **changes)  # type: ignore[arg-type]
        except (ClientError, BotoCoreError) as exc:
            raise MappingUnavailable(
                f"UpdateEventSourceMapping {uuid} failed: {_describe(exc)}"
            ) from exc

    def _find(self) -> str:
        """The mapping's UUID, asked once per environment ("" when there is none)."""
        with self._lock:
            if self._uuid is not None:
                return self._uuid
            try:
                found = self.client.list_event_source_mappings(
                    FunctionName=self.function_name, EventSourceArn=self.queue_arn
                )["EventSourceMappings"]
            except (ClientError, BotoCoreError) as exc:
                # Not cached: the next batch asks again.
                raise MappingUnavailable(
                    f"ListEventSourceMappings failed: {_describe(exc)}"
                ) from exc
            uuids = sorted(mapping["UUID"] for mapping in found if mapping.get("UUID"))
            self._uuid = uuids[0] if uuids else ""
            return self._uuid


def _view(mapping: EventSourceMappingConfigurationResponseTypeDef) -> MappingView:
    scaling = mapping.get("ScalingConfig") or {}
    concurrency = scaling.get("MaximumConcurrency")
    return MappingView(
        uuid=mapping["UUID"],
        state=mapping.get("State", ""),
        maximum_concurrency=concurrency if isinstance(concurrency, int) else None,
        batch_size=mapping.get("BatchSize") or 10,
    )


def _describe(exc: ClientError | BotoCoreError) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'error')}: {error.get('Message', '')}".strip()
    return type(exc).__name__
