"""Lambda API adapter: the function's own event source mapping, which holds the circuit breaker's
state. The only module that knows the Lambda client and its errors.

The mapping is found once per execution environment with ListEventSourceMappings (this
function, this source queue; an SQS queue has one mapping per function) and then read and
changed by its UUID, the only mapping the role may read or change
(template.yaml, BreakerMappingAccess). The first read is the finding itself: each item of
ListEventSourceMappings' answer is the mapping's configuration (State, ScalingConfig,
BatchSize), the same EventSourceMappingConfiguration that GetEventSourceMapping answers
(Lambda API reference, ListEventSourceMappings: "EventSourceMappings: A list of event source
mappings", of type EventSourceMappingConfiguration), so a new environment makes one request,
not two.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from consumer.breaker import MappingView
from consumer.errors import MappingUnavailable

if TYPE_CHECKING:
    from mypy_boto3_lambda.client import LambdaClient
    from mypy_boto3_lambda.type_defs import (
        EventSourceMappingConfigurationResponseTypeDef,
        EventSourceMappingConfigurationTypeDef,
    )


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

    def prepare(self) -> None:
        """Makes the client now, without a request."""
        _ = self.client

    def read(self) -> MappingView | None:
        found = self._find()
        if found is not None:
            return found
        uuid = self._uuid
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

    def _find(self) -> MappingView | None:
        """The mapping as ListEventSourceMappings found it, the first time only (the UUID is then
        known: "" when the function has no mapping on the queue); None once it is known."""
        with self._lock:
            if self._uuid is not None:
                return None
            try:
                found = self.client.list_event_source_mappings(
                    FunctionName=self.function_name, EventSourceArn=self.queue_arn
                )["EventSourceMappings"]
            except (ClientError, BotoCoreError) as exc:
                # Not cached: the next batch asks again.
                raise MappingUnavailable(
                    f"ListEventSourceMappings failed: {_describe(exc)}"
                ) from exc
            mappings = sorted(
                (mapping for mapping in found if mapping.get("UUID")),
                key=lambda mapping: mapping["UUID"],
            )
            if not mappings:
                self._uuid = ""
                return None
            self._uuid = mappings[0]["UUID"]
            return _view(mappings[0])


def _view(
    mapping: EventSourceMappingConfigurationResponseTypeDef
    | EventSourceMappingConfigurationTypeDef,
) -> MappingView:
    scaling = mapping.get("ScalingConfig") or {}
    concurrency = scaling.get("MaximumConcurrency")
    # LastModified is a timestamp (epoch seconds on the wire); botocore hands it over as an
    # aware datetime. moto sends whole seconds.
    modified = mapping.get("LastModified")
    return MappingView(
        uuid=mapping["UUID"],
        state=mapping.get("State", ""),
        maximum_concurrency=concurrency if isinstance(concurrency, int) else None,
        batch_size=mapping.get("BatchSize") or 10,
        last_modified=modified.timestamp() if isinstance(modified, datetime) else None,
    )


def _describe(exc: ClientError | BotoCoreError) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'error')}: {error.get('Message', '')}".strip()
    return type(exc).__name__
