"""Direct asynchronous invocations: one job, retried by Lambda itself, never by the queue.

A failure raises, so the function's MaximumRetryAttempts, MaximumEventAgeInSeconds and OnFailure
destination apply. Lambda keeps the request id across its retries of one event, which makes it
the job's Idempotency-Key.
"""

from __future__ import annotations

import json
from typing import Any

from consumer.dead_letter import DeadLetterReason, send_to_dead_letter
from consumer.deadline import Deadline
from consumer.delivery import deliver, is_non_retryable
from consumer.errors import DownstreamFailure
from consumer.observability import logger
from consumer.runtime import Runtime


def handle_direct_job(
    event: dict[str, Any], request_id: str, runtime: Runtime, deadline: Deadline
) -> dict[str, Any]:
    body = json.dumps(event["body"], separators=(",", ":"))
    with logger.append_context_keys(job_request_id=request_id):
        try:
            status_code = deliver(
                runtime.downstream, runtime.config, deadline, body, idempotency_key=request_id
            )
        except DownstreamFailure as failure:
            if not is_non_retryable(failure, runtime.config):
                logger.warning(
                    "direct job failed; Lambda's async retries apply", error=str(failure)
                )
                raise
            # Retrying cannot help: skip Lambda's retries and dead-letter it now, as the queue
            # path does.
            dead_letter_message_id = send_to_dead_letter(
                runtime.sqs,
                body,
                reason=DeadLetterReason.NON_RETRYABLE_STATUS,
                detail=str(failure),
                source={"SourceRequestId": request_id},
            )
            return {"status": "dead-lettered", "deadLetterMessageId": dead_letter_message_id}
    return {"status": "delivered", "statusCode": status_code}
