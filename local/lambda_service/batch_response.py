"""What Lambda's SQS event source mapping does with a batch once the function has answered.

With ReportBatchItemFailures (AWS Lambda Developer Guide, "Handling errors for an SQS event
source in Lambda"): an empty or null response, or an empty or null batchItemFailures, is complete
success; listed records return to the queue and the others are deleted; a response that is not
such an object, an item without a non-empty itemIdentifier, or an itemIdentifier that names no
record of the batch fails the whole batch. A function error or timeout fails the whole batch.
Without ReportBatchItemFailures any response is complete success.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class BatchOutcome:
    delete: tuple[str, ...]
    failed: tuple[str, ...]
    reason: str


def batch_outcome(
    message_ids: Sequence[str],
    invocation_succeeded: bool,
    response: Any,
    report_batch_item_failures: bool,
) -> BatchOutcome:
    """Which of the batch's messages Lambda deletes, and which return to the queue."""
    if not invocation_succeeded:
        return _whole_batch_failed(message_ids, "the invocation failed")
    if not report_batch_item_failures:
        return BatchOutcome(tuple(message_ids), (), "success")
    problem, failed = _listed_failures(response, set(message_ids))
    if problem is not None:
        return _whole_batch_failed(message_ids, f"invalid partial batch response: {problem}")
    return BatchOutcome(
        tuple(m for m in message_ids if m not in failed),
        tuple(m for m in message_ids if m in failed),
        "partial failure" if failed else "success",
    )


def _listed_failures(response: Any, known_ids: set[str]) -> tuple[str | None, set[str]]:
    if response is None:
        return None, set()
    if not isinstance(response, dict):
        return f"expected an object, got {type(response).__name__}", set()
    items = response.get("batchItemFailures")
    if items is None:
        return None, set()
    if not isinstance(items, list):
        return "batchItemFailures is not a list", set()
    failed: set[str] = set()
    for item in items:
        identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
        problem = _identifier_problem(identifier, known_ids)
        if problem is not None:
            return f"{problem}: {item!r}", set()
        failed.add(str(identifier))
    return None, failed


def _identifier_problem(identifier: Any, known_ids: set[str]) -> str | None:
    if not isinstance(identifier, str) or not identifier:
        return "item without a non-empty itemIdentifier"
    if identifier not in known_ids:
        return "itemIdentifier names no record of the batch"
    return None


def _whole_batch_failed(message_ids: Sequence[str], reason: str) -> BatchOutcome:
    return BatchOutcome((), tuple(message_ids), reason)
