"""The channel from a consumer environment to the breaker controller: Lambda Invoke with
InvocationType Event (data plane, not Lambda's control plane). The only module of the consumer
that knows the Lambda client; it is made at the first report, never during a cold start."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from breaker_policy.report import BreakerReport
from consumer.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_lambda.client import LambdaClient


class ControllerChannel:
    def __init__(self, make_client: Callable[[], LambdaClient], function_name: str) -> None:
        self._make_client = make_client
        self.function_name = function_name

    @functools.cached_property
    def client(self) -> LambdaClient:
        return self._make_client()

    def send(self, report: BreakerReport) -> None:
        payload = json.dumps(report.to_event(), separators=(",", ":")).encode()
        try:
            response = self.client.invoke(
                FunctionName=self.function_name, InvocationType="Event", Payload=payload
            )
        except (ClientError, BotoCoreError) as exc:
            # Fail open: deliveries go on; this environment reports again at its next verdict.
            logger.warning(
                "could not report to the breaker controller",
                controller=self.function_name,
                error=_describe(exc),
            )
            return
        logger.info(
            "reported to the breaker controller",
            controller=self.function_name,
            status_code=response.get("StatusCode"),
        )


def _describe(exc: ClientError | BotoCoreError) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'error')}: {error.get('Message', '')}".strip()
    return type(exc).__name__
