"""Idempotent delivery (IDEMPOTENCY_TABLE_NAME): a message whose outcome is already recorded is
not delivered again when SQS hands it back (for instance after a crash between the
downstream's 2xx and the batch's delete). Powertools' idempotency utility, persisted in
DynamoDB, keyed by a JMESPath into {"messageId": ..., "body": ...} (the messageId by default;
the Lambda request id for a direct job); its errors become the consumer's. The table's client
is made and watched as every AWS dependency's is (shared.aws_dependencies)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from shared.aws_dependencies import DependencyUnreachable, Reachability, client_config
from shared.errors import DeliveryInProgress, IdempotencyUnavailable

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


class OnceOnly[T]:
    def __init__(
        self,
        table_name: str,
        key_jmespath: str,
        expires_after_seconds: int,
        outcome_type: type[T],
    ) -> None:
        # Imported here: a function without idempotent delivery never loads the utility.
        from aws_lambda_powertools.utilities.idempotency import (  # noqa: PLC0415
            DynamoDBPersistenceLayer,
            IdempotencyConfig,
            idempotent_function,
        )
        from aws_lambda_powertools.utilities.idempotency.serialization.dataclass import (  # noqa: PLC0415
            DataclassSerializer,
        )

        self._config = IdempotencyConfig(
            event_key_jmespath=key_jmespath, expires_after_seconds=expires_after_seconds
        )

        @idempotent_function(  # type: ignore[untyped-decorator]
            data_keyword_argument="message",
            persistence_store=DynamoDBPersistenceLayer(
                table_name=table_name, boto_config=client_config()
            ),
            config=self._config,
            output_serializer=DataclassSerializer(outcome_type),
        )
        def once(message: dict[str, Any], attempt: Callable[[], T]) -> T:
            return attempt()

        self._once = once
        self.reachability = Reachability("dynamodb")

    def register(self, context: LambdaContext) -> None:
        """An in-progress record expires with the invocation, so a crash frees the key."""
        self._config.register_lambda_context(context)

    def __call__(self, key: str, body: str, attempt: Callable[[], T]) -> T:
        """attempt()'s outcome, recorded under the message's key; the recorded one, without
        calling attempt, when there is one. An attempt that raises records nothing."""
        from aws_lambda_powertools.utilities.idempotency import exceptions  # noqa: PLC0415

        try:
            self.reachability.check()
        except DependencyUnreachable as exc:
            raise IdempotencyUnavailable(
                f"the idempotency table could not be used: {exc}"
            ) from None
        try:
            outcome: T = self._once(
                message={"messageId": key, "body": json.loads(body)}, attempt=attempt
            )
        except exceptions.IdempotencyAlreadyInProgressError as exc:
            raise DeliveryInProgress(
                "another invocation is delivering a message with the same idempotency key"
            ) from exc
        except (
            exceptions.IdempotencyPersistenceLayerError,
            exceptions.IdempotencyPersistenceConnectionError,
            exceptions.IdempotencyPersistenceConsistencyError,
            exceptions.IdempotencyInconsistentStateError,
        ) as exc:
            unreachable = self.reachability.failed(exc)
            raise IdempotencyUnavailable(
                f"the idempotency table could not be used: {type(exc).__name__}"
                + (" (dynamodb unreachable)" if unreachable else "")
            ) from exc
        self.reachability.succeeded()
        return outcome
