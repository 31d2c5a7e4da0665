"""Messages that can never succeed go to the dead-letter queue at once, with the reason attached."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import TYPE_CHECKING

from consumer.observability import Metric, count, logger
from consumer.sqs_actions import MAX_MESSAGE_ATTRIBUTES, SqsActions, string_attribute

if TYPE_CHECKING:
    from mypy_boto3_sqs.type_defs import MessageAttributeValueTypeDef


class DeadLetterReason(StrEnum):
    INVALID_JSON = "invalid-json"
    NON_RETRYABLE_STATUS = "non-retryable-status"


def send_to_dead_letter(
    sqs: SqsActions,
    body: str,
    *,
    reason: DeadLetterReason,
    detail: str,
    source: Mapping[str, str],
    original_attributes: Mapping[str, MessageAttributeValueTypeDef] | None = None,
) -> str:
    """Send `body` verbatim to the DLQ; return the DLQ message id. Raises DeadLetterError.

    `source` names where the message came from (SourceMessageId, or SourceRequestId for a direct
    job). The original message attributes travel along as far as SQS's limit of 10 allows.
    """
    attributes: dict[str, MessageAttributeValueTypeDef] = {
        "DeadLetterReason": string_attribute(reason.value),
        "DeadLetterDetail": string_attribute(detail),
        **{name: string_attribute(value) for name, value in source.items()},
    }
    dropped: list[str] = []
    for name, value in (original_attributes or {}).items():
        if name in attributes or len(attributes) >= MAX_MESSAGE_ATTRIBUTES:
            dropped.append(name)
        else:
            attributes[name] = value
    if dropped:
        logger.warning(
            "message attributes left off the dead-letter copy (SQS allows 10)",
            dropped_attributes=dropped,
        )
    dead_letter_message_id = sqs.send_to_dead_letter(body, attributes)
    count(Metric.DEAD_LETTERED)
    logger.error(
        "sent to the dead-letter queue",
        reason=reason.value,
        detail=detail,
        dead_letter_message_id=dead_letter_message_id,
    )
    return dead_letter_message_id
