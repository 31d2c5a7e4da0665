"""Direct asynchronous invocations: one job, retried by Lambda itself, never by the queue.

A failure raises, so the function's MaximumRetryAttempts, MaximumEventAgeInSeconds and OnFailure
destination apply. Lambda keeps the request id across its retries of one event, which makes it
the job's Idempotency-Key.
"""

from __future__ import annotations

import json
from typing import Any

from consumer.deadline import Deadline
from consumer.delivery import Message, deliver_or_dead_letter
from consumer.errors import DownstreamFailure
from consumer.observability import logger, record_context
from consumer.runtime import Runtime


def handle_direct_job(
    event: dict[str, Any], request_id: str, runtime: Runtime, deadline: Deadline
) -> dict[str, Any]:
    body = json.dumps(event["body"], separators=(",", ":"))
    message = Message(body, idempotency_key=request_id, source={"SourceRequestId": request_id})
    with record_context(job_request_id=request_id):
        try:
            outcome = deliver_or_dead_letter(runtime, deadline, message)
        except DownstreamFailure as failure:
            logger.warning("direct job failed; Lambda's async retries apply", error=str(failure))
            raise
    if outcome.dead_lettered:
        return {"status": "dead-lettered", "deadLetterMessageId": outcome.dead_letter_message_id}
    return {"status": "delivered", "statusCode": outcome.status_code}
