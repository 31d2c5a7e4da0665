"""SQS batches: deliver each record, and reschedule each failure through its visibility timeout.

The record handler only delivers and raises; what happens to a failed record (backoff, the
final-attempt rule, the 12-hour limit) lives in the processor subclass, through failure_handler,
the extension point Powertools gives for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from consumer.backoff import is_final_attempt, next_visibility_seconds
from consumer.config import MAX_VISIBILITY_TIMEOUT_SECONDS
from consumer.dead_letter import DeadLetterReason, send_to_dead_letter
from consumer.deadline import Deadline
from consumer.delivery import deliver, is_non_retryable
from consumer.errors import (
    DeadLetterError,
    DeadlineExceeded,
    DownstreamFailure,
    InvalidRecordError,
    UnsupportedEventError,
)
from consumer.json_body import json_error
from consumer.observability import Metric, count, logger, metrics
from consumer.queued_message import QueuedMessage, queued_message
from consumer.runtime import Runtime
from consumer.sqs_actions import VisibilityChange, attributes_from_event

# SQS counts its 12-hour visibility limit from the ReceiveMessage call, which Lambda makes before
# the invocation starts: up to a batching window (300 s at most) earlier. Asking for more than is
# left is refused outright, so the delay is trimmed to what is certainly left.
_RECEIVE_BEFORE_INVOKE_SECONDS = 300

# Failures the consumer expects; anything else is a defect and is logged with its traceback.
_EXPECTED_FAILURES = (
    DownstreamFailure,
    DeadlineExceeded,
    DeadLetterError,
    InvalidRecordError,
)


def process_sqs_batch(
    event: dict[str, Any], context: LambdaContext, runtime: Runtime, deadline: Deadline
) -> PartialItemFailureResponse:
    records = event["Records"]
    if not records:
        return {"batchItemFailures": []}
    for index, record in enumerate(records):
        message_id = record.get("messageId") if isinstance(record, dict) else None
        if not (isinstance(message_id, str) and message_id):
            # Lambda fails the whole batch on a response that names an unknown record anyway;
            # say why instead of failing on a malformed response.
            raise UnsupportedEventError(
                f"Records[{index}] has no messageId, so a partial batch response cannot name it"
            )
    processor = BackoffBatchProcessor(runtime, deadline)
    return process_partial_response(
        event=event,
        record_handler=RecordHandler(runtime, deadline),
        processor=processor,
        context=context,
    )


class RecordHandler:
    """Deliver one record. Returns what became of it; raises when it must be retried."""

    def __init__(self, runtime: Runtime, deadline: Deadline) -> None:
        self.runtime = runtime
        self.deadline = deadline

    def __call__(self, record: SQSRecord) -> str:
        message = queued_message(record)
        with logger.append_context_keys(
            message_id=message.message_id, receive_count=message.receive_count
        ):
            problem = json_error(message.body)
            if problem is not None:
                self._dead_letter(message, DeadLetterReason.INVALID_JSON, problem)
                return "dead-lettered"
            try:
                deliver(
                    self.runtime.downstream,
                    self.runtime.config,
                    self.deadline,
                    message.body,
                    idempotency_key=message.message_id,
                )
            except DownstreamFailure as failure:
                if not is_non_retryable(failure, self.runtime.config):
                    raise
                self._dead_letter(message, DeadLetterReason.NON_RETRYABLE_STATUS, str(failure))
                return "dead-lettered"
            return "delivered"

    def _dead_letter(self, message: QueuedMessage, reason: DeadLetterReason, detail: str) -> None:
        send_to_dead_letter(
            self.runtime.sqs,
            message.body,
            reason=reason,
            detail=detail,
            source={"SourceMessageId": message.message_id},
            original_attributes=attributes_from_event(message.message_attributes),
        )


@dataclass(frozen=True)
class _Retry:
    message: QueuedMessage
    visibility_seconds: int
    failure_fields: dict[str, Any]


class BackoffBatchProcessor(BatchProcessor):
    """Partial batch responses, with each failed record's next delivery set by the backoff.

    failure_handler decides each failed record's delay; the visibility changes are applied
    together once every record has been tried, in ChangeMessageVisibilityBatch calls.
    """

    def __init__(self, runtime: Runtime, deadline: Deadline) -> None:
        super().__init__(event_type=EventType.SQS)
        self.runtime = runtime
        self.deadline = deadline
        self._retries: list[_Retry] = []

    def process(self) -> list[Any]:
        results = super().process()
        self._apply_visibility_changes()
        return results

    def failure_handler(self, record: SQSRecord, exception: Any) -> Any:
        error = exception[1]
        try:
            message = queued_message(record)
        except InvalidRecordError as invalid:
            count(Metric.INVALID_RECORDS)
            logger.error(
                "invalid record; the queue's visibility timeout applies",
                message_id=record.raw_event.get("messageId"),
                error=str(invalid),
            )
        else:
            self._retries.append(self._plan_retry(message, error))
        return super().failure_handler(record, exception)

    def _plan_retry(self, message: QueuedMessage, error: BaseException) -> _Retry:
        if isinstance(error, DeadLetterError):
            count(Metric.DEAD_LETTER_SEND_FAILED)
        elif isinstance(error, DeadlineExceeded):
            count(Metric.DEADLINE_SKIPPED)
        retry_after = error.retry_after_seconds if isinstance(error, DownstreamFailure) else None
        visibility_seconds = next_visibility_seconds(
            message.receive_count,
            self.runtime.config.backoff_policy,
            self.runtime.rng,
            retry_after,
            message_id=message.message_id,
        )
        return _Retry(message, visibility_seconds, _describe_failure(error))

    def _apply_visibility_changes(self) -> None:
        by_queue: dict[str, list[_Retry]] = {}
        for retry in self._retries:
            by_queue.setdefault(retry.message.queue_url, []).append(retry)
        self._retries = []
        for queue_url, retries in by_queue.items():
            limit = self._visibility_left_seconds()
            changes = [
                VisibilityChange(retry.message.receipt_handle, min(retry.visibility_seconds, limit))
                for retry in retries
            ]
            refusals = self.runtime.sqs.change_visibility_batch(queue_url, changes)
            for retry, change, refusal in zip(retries, changes, refusals, strict=True):
                self._report(retry, change.timeout_seconds, refusal)

    def _report(self, retry: _Retry, visibility_seconds: int, refusal: str | None) -> None:
        message = retry.message
        with logger.append_context_keys(
            message_id=message.message_id, receive_count=message.receive_count
        ):
            if refusal is not None:
                count(Metric.VISIBILITY_CHANGE_FAILED)
                logger.error(
                    "delivery failed and the backoff could not be set; "
                    "the queue's visibility timeout applies",
                    visibility_error=refusal,
                    **retry.failure_fields,
                )
            elif is_final_attempt(message.receive_count, self.runtime.config.backoff_policy):
                count(Metric.FINAL_ATTEMPTS)
                logger.error(
                    "final attempt failed; SQS moves the message to the dead-letter queue "
                    "at its next receive",
                    delay_seconds=visibility_seconds,
                    **retry.failure_fields,
                )
            else:
                count(Metric.RETRIES_SCHEDULED)
                metrics.add_metric(
                    name=Metric.BACKOFF_SECONDS, unit=MetricUnit.Seconds, value=visibility_seconds
                )
                logger.warning(
                    "delivery failed; retry scheduled",
                    delay_seconds=visibility_seconds,
                    **retry.failure_fields,
                )

    def _visibility_left_seconds(self) -> int:
        spent = _RECEIVE_BEFORE_INVOKE_SECONDS + self.deadline.elapsed_seconds()
        return max(0, int(MAX_VISIBILITY_TIMEOUT_SECONDS - spent))


def _describe_failure(error: BaseException) -> dict[str, Any]:
    fields: dict[str, Any] = {"error": str(error), "error_type": type(error).__name__}
    if isinstance(error, DownstreamFailure):
        fields.update(
            outcome=error.outcome,
            status_code=error.status_code,
            retry_after_seconds=error.retry_after_seconds,
        )
    elif not isinstance(error, _EXPECTED_FAILURES):
        # A defect, not a delivery failure: keep the traceback. The record is still rescheduled.
        fields["exc_info"] = error
    return fields
