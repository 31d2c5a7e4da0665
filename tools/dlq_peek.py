"""`make dlq-peek`: list dead-lettered messages without consuming them.

Each message is received with a short visibility timeout (--hold-seconds), listed with its
shape, reason, detail and source id, and made visible again at once (visibility 0) when the
listing is done; nothing is deleted. A DLQ has no redrive policy of its own, so the receive
counts this adds change nothing. The queue is --queue-url, else the stack's DeadLetterQueueUrl
output (--failed-jobs: FailedJobsQueueUrl).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

from local.commands.send import unknown_config_env
from tools.dead_letters import DeadLetter, classify
from tools.stack_outputs import StackOutputs, add_stack_arguments, session_for

# ReceiveMessage: at most 10 messages a call; ChangeMessageVisibilityBatch: 10 entries a call.
BATCH = 10
# Empty receives in a row before the queue counts as listed: SQS's short polls sample servers.
EMPTY_RECEIVES_TO_STOP = 2


def receive_batch(
    sqs: Any, queue_url: str, visibility_s: int, most: int = BATCH
) -> list[dict[str, Any]]:
    response = sqs.receive_message(
        QueueUrl=queue_url,
        MaxNumberOfMessages=most,
        VisibilityTimeout=visibility_s,
        WaitTimeSeconds=1,
        MessageAttributeNames=["All"],
        # Both spellings: some SQS-compatible servers honour only the older AttributeNames, and
        # without it they return no SentTimestamp (listed as 1970-01-01) and no source.
        MessageSystemAttributeNames=["All"],
        AttributeNames=["All"],
    )
    messages: list[dict[str, Any]] = response.get("Messages", [])
    return messages


def release(sqs: Any, queue_url: str, receipt_handles: Sequence[str]) -> None:
    """Make received messages visible again now."""
    for start in range(0, len(receipt_handles), BATCH):
        handles = receipt_handles[start : start + BATCH]
        sqs.change_message_visibility_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(index), "ReceiptHandle": handle, "VisibilityTimeout": 0}
                for index, handle in enumerate(handles)
            ],
        )


def peek(sqs: Any, queue_url: str, limit: int, hold_s: int = 30) -> list[DeadLetter]:
    seen: dict[str, DeadLetter] = {}
    empty = 0
    try:
        while len(seen) < limit and empty < EMPTY_RECEIVES_TO_STOP:
            messages = receive_batch(sqs, queue_url, hold_s)
            fresh = [m for m in messages if m["MessageId"] not in seen]
            empty = 0 if fresh else empty + 1
            for message in fresh:
                seen[message["MessageId"]] = classify(message)
    finally:
        release(sqs, queue_url, [letter.receipt_handle for letter in seen.values()])
    return list(seen.values())[:limit]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="make dlq-peek", description=__doc__.split("\n\n")[0])
    parser.add_argument("--queue-url", help="the queue to list (default: the stack's DLQ)")
    parser.add_argument(
        "--failed-jobs", action="store_true", help="list the failed-jobs queue instead"
    )
    parser.add_argument("--limit", type=int, default=100, help="messages to list (default 100)")
    parser.add_argument(
        "--hold-seconds", type=int, default=30, help="visibility while listing (default 30)"
    )
    parser.add_argument("--json", action="store_true", help="one JSON object a line")
    add_stack_arguments(parser)
    return parser


def _when(timestamp_ms: int) -> str:
    return datetime.fromtimestamp(timestamp_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _preview(body: str, limit: int = 60) -> str:
    flat = " ".join(body.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def print_listing(
    letters: Sequence[DeadLetter], queue_url: str, as_json: bool, out: TextIO
) -> None:
    if as_json:
        for letter in letters:
            record = {
                "messageId": letter.message_id,
                "shape": letter.shape.value,
                "reason": letter.reason,
                "detail": letter.detail,
                "sourceId": letter.source_id,
                "sentAt": _when(letter.sent_timestamp_ms),
                "body": letter.body,
            }
            print(json.dumps(record, separators=(",", ":")), file=out)
        return
    print(f"{len(letters)} message(s) on {queue_url} (none consumed)", file=out)
    for letter in letters:
        print(
            f"  {letter.message_id}  {_when(letter.sent_timestamp_ms)}  {letter.shape.value}  "
            f"reason={letter.reason}  source={letter.source_id or '-'}",
            file=out,
        )
        if letter.detail:
            print(f"      detail: {_preview(letter.detail, 100)}", file=out)
        print(f"      body:   {_preview(letter.body)}", file=out)


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    parser = _parser()
    args = parser.parse_args(argv)
    problem = unknown_config_env(args.config_env)
    if problem:
        parser.error(problem)
    try:
        session = session_for(args)
        output = "FailedJobsQueueUrl" if args.failed_jobs else "DeadLetterQueueUrl"
        queue_url = StackOutputs(session, args).value(args.queue_url, output)
        sqs = session.client("sqs", config=BotoConfig(retries={"mode": "standard"}))
        letters = peek(sqs, queue_url, args.limit, args.hold_seconds)
    except (OSError, ValueError, BotoCoreError, ClientError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print_listing(letters, queue_url, args.json, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
