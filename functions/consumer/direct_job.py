"""Direct asynchronous invocations: one job, retried by Lambda itself, never by the queue.

A failure raises, so the function's MaximumRetryAttempts, MaximumEventAgeInSeconds and OnFailure
destination apply. Lambda keeps the request id across its retries of one event, which makes it
the job's Idempotency-Key.
"""

from __future__ import annotations

import json
import math
import secrets
from dataclasses import dataclass
from typing import Any

from consumer.deadline import Deadline
from consumer.delivery import DeadLetterReason, Message, dead_letter, deliver_or_dead_letter
from consumer.errors import DownstreamFailure
from consumer.observability import logger, record_context
from consumer.runtime import Runtime


def handle_direct_job(
    event: dict[str, Any], request_id: str, runtime: Runtime, deadline: Deadline
) -> dict[str, Any]:
    body = job_body(event["body"])
    message = Message(body.text, idempotency_key=request_id, source={"SourceRequestId": request_id})
    with record_context(job_request_id=request_id):
        try:
            if body.refusal is not None:
                # Delivering 1e999 for what was sent as 1e400 would change the job silently.
                reason, detail = body.refusal
                outcome = dead_letter(runtime, message, reason, detail)
            else:
                outcome = deliver_or_dead_letter(runtime, deadline, message)
        except DownstreamFailure as failure:
            logger.warning("direct job failed; Lambda's async retries apply", error=str(failure))
            raise
    if outcome.dead_lettered:
        return {"status": "dead-lettered", "deadLetterMessageId": outcome.dead_letter_message_id}
    return {"status": "delivered", "statusCode": outcome.status_code}


@dataclass(frozen=True)
class JobBody:
    # Compact JSON (RFC 8259) in every case: what is delivered, or the dead-letter copy.
    text: str
    # Why it cannot be delivered as it was sent, if it cannot.
    refusal: tuple[DeadLetterReason, str] | None = None


def job_body(value: Any) -> JobBody:
    """The job's body as compact JSON, or a JSON copy and why it cannot be delivered.

    The runtime parses the invocation's JSON before the handler sees it: a number beyond a
    double's range (1e400) arrives as Infinity, the token NaN as NaN, which json.dumps would
    write as the non-JSON tokens Infinity and NaN. The copy writes them as 1e999 and -1e999
    (JSON numbers a double-based parser reads back as the same Infinity) and null.
    """
    try:
        return JobBody(json.dumps(value, separators=(",", ":"), allow_nan=False))
    except ValueError:
        pass
    marker = secrets.token_hex(16)
    found: dict[str, int] = {"inf": 0, "-inf": 0, "nan": 0}

    def finite(item: Any) -> Any:
        if isinstance(item, float) and not math.isfinite(item):
            found[str(item)] += 1
            return f"{marker}{item}"
        if isinstance(item, dict):
            return {key: finite(member) for key, member in item.items()}
        if isinstance(item, list | tuple):
            return [finite(member) for member in item]
        return item

    text = json.dumps(finite(value), separators=(",", ":"))
    for name, written in (("inf", "1e999"), ("-inf", "-1e999"), ("nan", "null")):
        # The marker is random: no string of the body holds it as json.dumps quotes it.
        text = text.replace(f'"{marker}{name}"', written)
    if found["nan"]:
        return JobBody(
            text,
            (
                DeadLetterReason.INVALID_JSON,
                "the job's body held NaN, which is not JSON (RFC 8259); this copy writes it "
                "as null",
            ),
        )
    return JobBody(
        text,
        (
            DeadLetterReason.NUMBER_OUT_OF_RANGE,
            f"the job's body held {found['inf'] + found['-inf']} number(s) beyond a double's "
            "range, which the Lambda runtime parsed as Infinity: the digits sent are lost; "
            "this copy writes each as 1e999 or -1e999",
        ),
    )
