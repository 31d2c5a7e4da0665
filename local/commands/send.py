"""`make send`: drop messages on the source queue of a deployed stack, or of any endpoint.

The queue is --queue-url, or the SourceQueueUrl output of the stack (--stack-name, else the
stack_name of --config-env in samconfig.toml). AWS_ENDPOINT_URL points the SDK at another
endpoint; --config-env local at the running `make up` (its endpoint, credentials and queue).
Bodies come from --body (repeatable), --file (one body a line, '-' for standard input) or are
generated (--count). SendMessageBatch, with the SDK's
standard retry mode; every entry SQS refuses is reported, and the exit status is then 1.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tomllib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

from local.commands.up_state import LOCAL_ENV, require_running
from local.shared.paths import ROOT

SAMCONFIG = ROOT / "samconfig.toml"
# SendMessageBatch: at most 10 entries and 1 MiB of bodies per call.
MAX_BATCH_ENTRIES = 10
MAX_BATCH_BYTES = 1024 * 1024
# SendMessageBatch calls in flight at once.
SEND_CONCURRENCY = 8


@dataclass
class SendReport:
    # (message id, body) in the order sent.
    sent: list[tuple[str, str]] = field(default_factory=list)
    # (body, error code, message) of every entry SQS refused.
    failed: list[tuple[str, str, str]] = field(default_factory=list)


def generated_bodies(count: int, prefix: str = "demo") -> list[str]:
    return [json.dumps({"orderId": f"{prefix}-{n:04d}", "amount": n}) for n in range(1, count + 1)]


def send_bodies(
    sqs: Any,
    queue_url: str,
    bodies: Sequence[str],
    concurrency: int = SEND_CONCURRENCY,
    groups: int = 0,
) -> SendReport:
    """Send in batches, `concurrency` calls at a time; the report keeps the bodies' order.

    A FIFO queue (its name ends in .fifo) gets each body in group `g<n mod groups>` (one group
    when `groups` is 0), with a deduplication id of its own, one call at a time: FIFO order is
    the order SQS receives the calls in.
    """
    fifo = queue_url.endswith(".fifo")

    def request_entry(index: int, body: str) -> dict[str, Any]:
        if not fifo:
            return {"Id": str(index), "MessageBody": body}
        return {
            "Id": str(index),
            "MessageBody": body,
            "MessageGroupId": fifo_group(body, groups),
            "MessageDeduplicationId": hashlib.sha256(body.encode()).hexdigest(),
        }

    def send(batch: list[str]) -> dict[str, Any]:
        response: dict[str, Any] = sqs.send_message_batch(
            QueueUrl=queue_url,
            Entries=[request_entry(index, body) for index, body in enumerate(batch)],
        )
        return response

    if fifo:
        concurrency = 1
    batches = _batches(bodies)
    # boto3 clients are thread-safe; one call's round trip dominates, so calls overlap well.
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as executor:
        responses = list(executor.map(send, batches))
    report = SendReport()
    for batch, response in zip(batches, responses, strict=True):
        for entry in sorted(response.get("Successful", []), key=lambda e: int(e["Id"])):
            report.sent.append((entry["MessageId"], batch[int(entry["Id"])]))
        for entry in response.get("Failed", []):
            report.failed.append(
                (batch[int(entry["Id"])], entry.get("Code", "?"), entry.get("Message", ""))
            )
    return report


def fifo_group(body: str, groups: int) -> str:
    """The message group a body is sent in: spread over `groups` by a hash of the body."""
    if groups <= 1:
        return "g0"
    return f"g{int(hashlib.sha256(body.encode()).hexdigest(), 16) % groups}"


def _batches(bodies: Sequence[str]) -> list[list[str]]:
    batches: list[list[str]] = []
    current: list[str] = []
    size = 0
    for body in bodies:
        body_size = len(body.encode("utf-8"))
        if current and (len(current) == MAX_BATCH_ENTRIES or size + body_size > MAX_BATCH_BYTES):
            batches.append(current)
            current, size = [], 0
        current.append(body)
        size += body_size
    if current:
        batches.append(current)
    return batches


def unknown_config_env(config_env: str, samconfig: Path = SAMCONFIG) -> str | None:
    """Why ENV names no environment of samconfig.toml, worded as make run words it; None when
    it names one, or is `local` (the running make up)."""
    if config_env == LOCAL_ENV:
        return None
    config = tomllib.loads(samconfig.read_text())
    envs = [name for name, value in config.items() if isinstance(value, dict)]
    if config_env in envs:
        return None
    return (
        f"{samconfig.name} has no environment {config_env!r}: its environments are "
        f"{', '.join(envs) or '(none)'} (and {LOCAL_ENV}: the running make up)"
    )


def stack_name_from_samconfig(config_env: str, samconfig: Path = SAMCONFIG) -> str:
    config = tomllib.loads(samconfig.read_text())
    try:
        return str(config[config_env]["global"]["parameters"]["stack_name"])
    except KeyError:
        raise ValueError(
            f"{samconfig.name} has no stack_name for config env {config_env!r}"
        ) from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="make send", description=__doc__.split("\n\n")[0])
    parser.add_argument("--queue-url", help="send here instead of the stack's SourceQueueUrl")
    parser.add_argument("--stack-name", help="stack whose SourceQueueUrl output to use")
    parser.add_argument("--config-env", default="default", help="samconfig.toml section")
    parser.add_argument("--region", help="AWS region (default: the SDK's configuration)")
    parser.add_argument("--body", action="append", default=[], help="a message body (repeatable)")
    parser.add_argument("--file", help="a file with one message body a line ('-': stdin)")
    parser.add_argument("--count", type=_positive_int, help="generated bodies (default 10)")
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is below 1")
    return value


def _bodies(args: argparse.Namespace, stdin: TextIO) -> list[str]:
    bodies = list(args.body)
    if args.file:
        lines = stdin.read() if args.file == "-" else Path(args.file).read_text()
        bodies.extend(line for line in lines.splitlines() if line.strip())
    if args.count or not bodies:
        bodies.extend(generated_bodies(args.count or 10, prefix="sent"))
    return bodies


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    parser = _parser()
    args = parser.parse_args(argv)
    problem = unknown_config_env(args.config_env)
    if problem:
        parser.error(problem)
    try:
        bodies = _bodies(args, sys.stdin)
        # AWS_REGION as well as the SDK's own AWS_DEFAULT_REGION and profile: the CLI and the
        # other SDKs read AWS_REGION, and users of them expect it to work here too.
        region = args.region or os.environ.get("AWS_REGION") or None
        up = require_running() if args.config_env == LOCAL_ENV else None
        session = up.session() if up else boto3.session.Session(region_name=region)
        if not session.region_name:
            parser.error("no AWS region: pass --region or set AWS_REGION or AWS_DEFAULT_REGION")
        queue_url = args.queue_url or (up.queues["SourceQueueUrl"] if up else "")
        queue_url = queue_url or _queue_url(session, args)
        sqs = session.client("sqs", config=BotoConfig(retries={"mode": "standard"}))
        report = send_bodies(sqs, queue_url, bodies)
    except (OSError, ValueError, BotoCoreError, ClientError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"sent {len(report.sent)} of {len(bodies)} messages to {queue_url}", file=out)
    for message_id, body in report.sent:
        print(f"  sent    {message_id}  {_preview(body)}", file=out)
    for body, code, message in report.failed:
        print(f"  FAILED  {code}: {message}  {_preview(body)}", file=out)
    return 1 if report.failed else 0


def _queue_url(session: boto3.session.Session, args: argparse.Namespace) -> str:
    stack_name = args.stack_name or stack_name_from_samconfig(args.config_env)
    [stack] = session.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    if "SourceQueueUrl" not in outputs:
        raise ValueError(f"stack {stack_name} has no SourceQueueUrl output")
    return outputs["SourceQueueUrl"]


def _preview(body: str, limit: int = 60) -> str:
    return body if len(body) <= limit else body[: limit - 1] + "…"


if __name__ == "__main__":
    sys.exit(main())
