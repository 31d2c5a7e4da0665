"""`make redrive`: move dead-lettered messages back to the source queue, replay failed jobs.

Messages (the DLQ -> the source queue): with --method auto, StartMessageMoveTask when the
endpoint supports it and the DLQ holds no OnFailure record (stacks deployed before the
failed-jobs queue sent those to the DLQ); otherwise receive, send, delete in batches of 10,
paced to --rate messages a second, keeping each message's attributes (the consumer's own
DeadLetter*/Source* attributes are left off: a redriven message is a fresh start).

Jobs (the failed-jobs queue, and any OnFailure record met in the DLQ): Lambda's OnFailure record
of a failed direct invocation is replayed as that job, an asynchronous invocation of the
function with the record's requestPayload, never sent to the source queue as a message.

Bounded: a run takes at most what the queue held when it started (its depth, visible and in
flight; --limit caps it lower), as StartMessageMoveTask does, and never the same message twice.
What comes back while it runs (poison dead-lettered again by the consumer) is left, visible,
for the next run: the run ends, and says how far it went.

Safe to interrupt and run again: a message leaves its queue only after its copy was accepted;
an interrupted batch is made visible again at once, so at worst that batch (10) is delivered
twice, which the consumer's Idempotency-Key is there for.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

from local.commands.send import unknown_config_env
from tools.dead_letters import DeadLetter, Shape, classify
from tools.dlq_peek import BATCH, EMPTY_RECEIVES_TO_STOP, peek, receive_batch, release
from tools.stack_outputs import StackOutputs, add_stack_arguments, session_for

# StartMessageMoveTask accepts up to 500 messages a second.
MAX_MOVE_TASK_RATE = 500
# What an endpoint without StartMessageMoveTask answers, besides a server error after the SDK's
# retries (moto's server answers 500; moto in process raises NotImplementedError). Copying is
# correct everywhere, so in doubt the redrive copies.
_UNSUPPORTED_CODES = {
    "UnsupportedOperation",
    "AWS.SimpleQueueService.UnsupportedOperation",
    "InvalidAction",
    "NotImplemented",
    "UnknownOperationException",
}
_TASK_DONE = {"COMPLETED", "FAILED", "CANCELLED"}


class MoveTaskUnsupportedError(Exception):
    """The endpoint has no StartMessageMoveTask."""


# The function that replays OnFailure records: its name, or how to find it (the stack's outputs),
# asked only when a record is met, so that a redrive whose flags name every queue needs no
# CloudFormation (an endpoint with SQS alone).
FunctionName = str | Callable[[], str] | None


class Pacer:
    """At most `rate_per_s` items a second on average, with an injectable clock and sleep."""

    def __init__(
        self,
        rate_per_s: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval_s = 1.0 / rate_per_s
        self.clock = clock
        self.sleep = sleep
        self.next_s = clock()

    def wait(self, items: int) -> None:
        now = self.clock()
        if self.next_s > now:
            self.sleep(self.next_s - now)
            now = self.next_s
        self.next_s = max(now, self.next_s) + items * self.interval_s


@dataclass
class RedriveReport:
    moved: int = 0
    replayed: int = 0
    # (message id, why) of everything left where it was.
    failed: list[tuple[str, str]] = field(default_factory=list)
    method: str = "copy"
    # The queue's depth when the redrive started: the most it takes (--limit may cap it lower).
    at_start: int = 0
    limit: int | None = None
    # Copies this run sent that it met again on the queue it empties (dead-lettered again while
    # it ran): left there, visible, for the next redrive.
    met_again: int = 0
    # The queue's depth when the run ended (copy only).
    at_end: int = 0

    @property
    def came_back(self) -> int:
        """What reached the queue while the run went on: what it holds now, less what it held
        at the start, plus what left it. Copies that came back and were never met (the run had
        reached its bound) count too, and so do messages newly dead-lettered meanwhile."""
        arrived = self.at_end - self.at_start + self.moved + self.replayed
        return max(self.met_again, arrived)


class ProgressBar:
    """One line on stderr, redrawn: how many of about `total` are done."""

    def __init__(self, label: str, total: int, out: TextIO, width: int = 30) -> None:
        self.label = label
        self.total = max(total, 1)
        self.out = out
        self.width = width
        self.drawn = False

    def update(self, report: RedriveReport) -> None:
        self.drawn = True
        done = report.moved + report.replayed + len(report.failed)
        filled = min(self.width, self.width * done // self.total)
        bar = "#" * filled + "-" * (self.width - filled)
        print(
            f"\r{self.label} [{bar}] {done}/~{self.total}  moved={report.moved} "
            f"replayed={report.replayed} failed={len(report.failed)}",
            end="",
            file=self.out,
            flush=True,
        )

    def close(self) -> None:
        if self.drawn:
            print(file=self.out, flush=True)


def queue_depth(sqs: Any, queue_url: str) -> int:
    """What the queue holds: visible messages and those in flight (held by a receiver)."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes.get("ApproximateNumberOfMessages", 0)) + int(
        attributes.get("ApproximateNumberOfMessagesNotVisible", 0)
    )


def queue_arn(sqs: Any, queue_url: str) -> str:
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    return str(attributes["Attributes"]["QueueArn"])


def replay_job(lambda_client: Any, function_name: str, letter: DeadLetter) -> None:
    """The OnFailure record's job, invoked again as it was first: asynchronously."""
    response = lambda_client.invoke(
        FunctionName=function_name,
        InvocationType="Event",
        Payload=json.dumps(letter.job_payload).encode(),
    )
    if response.get("StatusCode") != 202:
        raise RuntimeError(f"Lambda answered {response.get('StatusCode')} to the replay")


@dataclass
class _Seen:
    """What one copy run has met, so that it never takes a message twice.

    A message sent back to the source queue that fails again returns to the queue being
    emptied in one of two shapes: moved by the source queue's redrive policy, it keeps the id
    our SendMessageBatch gave it (SQS moves the message itself: for standard queues "the
    enqueue timestamp is unchanged" (SQS Developer Guide, dead-letter queue retention); the
    docs found say nothing explicit of the id, which moto keeps: the same Message object);
    copied by the consumer, it is a new message whose SourceMessageId is that id. Should an
    endpoint give a moved message a new id, the bound still ends the run. A message taken
    earlier in the run can also be met again: its delete failed, or it was left in place.
    """

    taken: set[str] = field(default_factory=set)
    sent: set[str] = field(default_factory=set)
    # message id -> its latest receipt handle: hidden until the run ends, then made visible.
    held: dict[str, str] = field(default_factory=dict)

    def came_back(self, letter: DeadLetter) -> bool:
        return letter.message_id in self.sent or letter.source_id in self.sent


def copy_redrive(
    sqs: Any,
    from_url: str,
    *,
    to_url: str | None,
    lambda_client: Any,
    function_name: FunctionName,
    pacer: Pacer,
    visibility_s: int = 60,
    limit: int | None = None,
    at_start: int | None = None,
    on_progress: Callable[[RedriveReport], None] = lambda _: None,
) -> RedriveReport:
    """Receive, send (messages) or invoke (OnFailure records), delete: batch by batch.

    Takes at most what the queue held when it started (`at_start`, else its depth read now),
    capped by `limit`, as StartMessageMoveTask does: SQS counts the messages to move when the
    task starts (ListMessageMoveTasks' ApproximateNumberOfMessagesToMove, "obtained at the time
    of starting the message movement task"). Without that bound, poison messages that the
    consumer dead-letters again at once would be moved round for ever.
    """
    if at_start is None:
        at_start = queue_depth(sqs, from_url)
    bound = at_start if limit is None else min(limit, at_start)
    report = RedriveReport(at_start=at_start, limit=limit)
    seen = _Seen()
    taken = 0
    # Receives in a row that met nothing new. One that only hides messages met for the first
    # time is progress: each message is hidden once per visibility window, so the run ends.
    empty = 0
    try:
        while taken < bound and empty < EMPTY_RECEIVES_TO_STOP:
            received = receive_batch(sqs, from_url, visibility_s, min(BATCH, bound - taken))
            letters, newly_held = _sort_out(received, seen, report)
            if not letters:
                empty = 0 if newly_held else empty + 1
                continue
            empty = 0
            taken += len(letters)
            seen.taken.update(letter.message_id for letter in letters)
            pacer.wait(len(letters))
            try:
                done = _redrive_batch(
                    sqs,
                    letters,
                    to_url=to_url,
                    lambda_client=lambda_client,
                    function_name=function_name,
                    report=report,
                    sent=seen.sent,
                )
                _delete(sqs, from_url, done)
            except KeyboardInterrupt:
                # Back on the queue at once, so that the next run finds them; a copy already
                # sent makes that message at-least-once.
                release(sqs, from_url, [letter.receipt_handle for letter in letters])
                raise
            on_progress(report)
    finally:
        # What came back is left for the next redrive, visible now rather than after the
        # visibility window.
        release(sqs, from_url, list(seen.held.values()))
    report.at_end = queue_depth(sqs, from_url)
    return report


def _sort_out(
    received: Sequence[dict[str, Any]], seen: _Seen, report: RedriveReport
) -> tuple[list[DeadLetter], int]:
    """The messages to take, and how many others were hidden for the first time."""
    letters: list[DeadLetter] = []
    newly_held = 0
    for message in received:
        letter = classify(message)
        if letter.message_id in seen.held:
            seen.held[letter.message_id] = letter.receipt_handle
        elif seen.came_back(letter) or letter.message_id in seen.taken:
            seen.held[letter.message_id] = letter.receipt_handle
            newly_held += 1
            if letter.message_id not in seen.taken:
                report.met_again += 1
        else:
            letters.append(letter)
    return letters, newly_held


def _redrive_batch(
    sqs: Any,
    letters: Sequence[DeadLetter],
    *,
    to_url: str | None,
    lambda_client: Any,
    function_name: FunctionName,
    report: RedriveReport,
    sent: set[str],
) -> list[DeadLetter]:
    done: list[DeadLetter] = []
    messages = [letter for letter in letters if letter.shape is not Shape.ON_FAILURE_RECORD]
    for letter in letters:
        if letter.shape is not Shape.ON_FAILURE_RECORD:
            continue
        if function_name is None:
            report.failed.append((letter.message_id, "an OnFailure record and no function"))
            continue
        try:
            if callable(function_name):
                function_name = function_name()
        except (BotoCoreError, ClientError, ValueError) as error:
            report.failed.append((letter.message_id, f"no function to replay it: {error}"))
            continue
        try:
            replay_job(lambda_client, function_name, letter)
        except (BotoCoreError, ClientError, RuntimeError) as error:
            report.failed.append((letter.message_id, f"replay: {error}"))
            continue
        report.replayed += 1
        done.append(letter)
    if messages and to_url is None:
        report.failed += [
            (m.message_id, "not an OnFailure record: no queue to send to") for m in messages
        ]
    elif messages and to_url is not None:
        # SQS names every FIFO queue with this suffix.
        fifo = to_url.endswith(".fifo")
        response = sqs.send_message_batch(
            QueueUrl=to_url,
            Entries=[
                _send_entry(str(index), letter, fifo=fifo) for index, letter in enumerate(messages)
            ],
        )
        for entry in response.get("Successful", []):
            done.append(messages[int(entry["Id"])])
            sent.add(entry["MessageId"])
            report.moved += 1
        for entry in response.get("Failed", []):
            failed = messages[int(entry["Id"])]
            report.failed.append(
                (failed.message_id, f"{entry.get('Code')}: {entry.get('Message')}")
            )
    return done


def _send_entry(entry_id: str, letter: DeadLetter, *, fifo: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {"Id": entry_id, "MessageBody": letter.body}
    if kept := letter.attributes_to_keep():
        entry["MessageAttributes"] = kept
    if fifo:
        # Back into its own group, in DLQ order. The DLQ message's id as the deduplication id:
        # a rerun within SQS's 5-minute window after an interruption sends no second copy, and
        # it never collides with the original's id, which would silently drop the redrive.
        entry["MessageGroupId"] = letter.message_group_id or "redrive"
        entry["MessageDeduplicationId"] = letter.message_id
    return entry


def _delete(sqs: Any, queue_url: str, letters: Sequence[DeadLetter]) -> None:
    for start in range(0, len(letters), BATCH):
        chunk = letters[start : start + BATCH]
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(index), "ReceiptHandle": letter.receipt_handle}
                for index, letter in enumerate(chunk)
            ],
        )


def move_task_redrive(
    sqs: Any,
    dlq_url: str,
    to_url: str,
    *,
    rate_per_s: int,
    at_start: int = 0,
    sleep: Callable[[float], None] = time.sleep,
    poll_s: float = 2.0,
    on_progress: Callable[[RedriveReport], None] = lambda _: None,
) -> RedriveReport:
    """SQS's own redrive: one StartMessageMoveTask, followed until it ends.

    `at_start`: the DLQ's depth read before, reported until SQS gives its own count.
    """
    source_arn = queue_arn(sqs, dlq_url)
    try:
        task = sqs.start_message_move_task(
            SourceArn=source_arn,
            DestinationArn=queue_arn(sqs, to_url),
            MaxNumberOfMessagesPerSecond=min(rate_per_s, MAX_MOVE_TASK_RATE),
        )
    except NotImplementedError as error:
        raise MoveTaskUnsupportedError(str(error)) from error
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code")
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code in _UNSUPPORTED_CODES or status >= 500:
            raise MoveTaskUnsupportedError(f"{code}: HTTP {status}") from error
        raise
    # The task moves only what the DLQ held when it started: SQS counts it then
    # (ApproximateNumberOfMessagesToMove, "obtained at the time of starting the message movement
    # task"), so messages that come back while it runs wait for the next redrive.
    report = RedriveReport(method="move-task", at_start=at_start)
    try:
        while True:
            [status] = sqs.list_message_move_tasks(SourceArn=source_arn, MaxResults=1)["Results"]
            report.moved = int(status.get("ApproximateNumberOfMessagesMoved", 0))
            report.at_start = int(status.get("ApproximateNumberOfMessagesToMove", at_start))
            on_progress(report)
            if status["Status"] in _TASK_DONE:
                if status["Status"] != "COMPLETED":
                    reason = status.get("FailureReason", status["Status"])
                    report.failed.append(("move task", str(reason)))
                return report
            sleep(poll_s)
    except KeyboardInterrupt:
        # SQS would go on moving without us: stop it, so that a rerun starts from what is left.
        sqs.cancel_message_move_task(TaskHandle=task["TaskHandle"])
        raise


def holds_on_failure_records(sqs: Any, queue_url: str, limit: int) -> bool:
    return any(
        letter.shape is Shape.ON_FAILURE_RECORD for letter in peek(sqs, queue_url, limit, hold_s=30)
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="make redrive", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dlq-url", help="default: the stack's DeadLetterQueueUrl")
    parser.add_argument("--source-queue-url", help="default: the stack's SourceQueueUrl")
    parser.add_argument("--failed-jobs-queue-url", help="default: the stack's FailedJobsQueueUrl")
    parser.add_argument("--function-name", help="default: the stack's ConsumerFunctionName")
    parser.add_argument(
        "--only", choices=["messages", "jobs"], help="redrive only the DLQ, or only failed jobs"
    )
    parser.add_argument("--method", choices=["auto", "move-task", "copy"], default="auto")
    parser.add_argument("--rate", type=int, default=10, help="messages a second (default 10)")
    parser.add_argument(
        "--limit",
        type=int,
        help="take at most this many (copy only; default: all that the queue held at the start)",
    )
    parser.add_argument(
        "--visibility-seconds",
        type=int,
        default=60,
        help="how long a batch stays hidden while it is copied (default 60)",
    )
    parser.add_argument(
        "--scan-limit",
        type=int,
        default=10_000,
        help="auto: DLQ messages looked at for OnFailure records first (default 10000)",
    )
    add_stack_arguments(parser)
    return parser


def _redrive_messages(
    args: argparse.Namespace, outputs: StackOutputs, sqs: Any, lambda_client: Any, err: TextIO
) -> RedriveReport:
    dlq_url = outputs.value(args.dlq_url, "DeadLetterQueueUrl")
    source_url = outputs.value(args.source_queue_url, "SourceQueueUrl")
    # Read before anything else: the auto method's peek holds messages for a moment.
    at_start = queue_depth(sqs, dlq_url)
    if args.method == "move-task" or (
        args.method == "auto" and not holds_on_failure_records(sqs, dlq_url, args.scan_limit)
    ):
        bar = ProgressBar("dlq -> source", at_start, err)
        try:
            return move_task_redrive(
                sqs,
                dlq_url,
                source_url,
                rate_per_s=args.rate,
                at_start=at_start,
                on_progress=bar.update,
            )
        except MoveTaskUnsupportedError:
            if args.method == "move-task":
                raise
            print("StartMessageMoveTask is not supported here: copying", file=err)
        finally:
            bar.close()

    # Needed only if the DLQ holds an OnFailure record (stacks deployed before the failed-jobs
    # queue): asked for then.
    def function_name() -> str:
        return outputs.value(args.function_name, "ConsumerFunctionName")

    return _copy(
        args,
        sqs,
        lambda_client,
        label="dlq -> source",
        from_url=dlq_url,
        to_url=source_url,
        function_name=function_name,
        at_start=at_start,
        err=err,
    )


def _replay_jobs(
    args: argparse.Namespace, outputs: StackOutputs, sqs: Any, lambda_client: Any, err: TextIO
) -> RedriveReport:
    jobs_url = outputs.value(args.failed_jobs_queue_url, "FailedJobsQueueUrl")
    function_name = outputs.value(args.function_name, "ConsumerFunctionName")
    return _copy(
        args,
        sqs,
        lambda_client,
        label="failed jobs -> function",
        from_url=jobs_url,
        to_url=None,
        function_name=function_name,
        at_start=queue_depth(sqs, jobs_url),
        err=err,
    )


def _copy(
    args: argparse.Namespace,
    sqs: Any,
    lambda_client: Any,
    *,
    label: str,
    from_url: str,
    to_url: str | None,
    function_name: FunctionName,
    at_start: int,
    err: TextIO,
) -> RedriveReport:
    """The copy method, for messages and for jobs alike: same bound, same progress bar."""
    bound = at_start if args.limit is None else min(args.limit, at_start)
    bar = ProgressBar(label, bound, err)
    try:
        return copy_redrive(
            sqs,
            from_url,
            to_url=to_url,
            lambda_client=lambda_client,
            function_name=function_name,
            pacer=Pacer(args.rate),
            visibility_s=args.visibility_seconds,
            limit=args.limit,
            at_start=at_start,
            on_progress=bar.update,
        )
    finally:
        bar.close()


def ending(what: str, report: RedriveReport) -> str:
    """How far the redrive went, against what the queue held when it started."""
    if what == "jobs":
        line = (
            f"replayed {report.replayed} of the {report.at_start} that were on the failed-jobs "
            "queue when the replay started"
        )
    else:
        done = f"moved {report.moved}"
        if report.replayed:
            done += f" and replayed {report.replayed} as jobs"
        line = f"{done} of the {report.at_start} that were in the DLQ when the redrive started"
    if report.limit is not None and report.limit < report.at_start:
        line += f" (--limit {report.limit})"
    if report.method == "move-task":
        return line + "; messages that came back meanwhile wait for the next redrive"
    if what == "jobs":
        return line + (
            f"; {report.came_back} came back meanwhile (or newly failed) and were left for "
            "the next replay"
        )
    return line + (
        f"; {report.came_back} came back meanwhile (or were newly dead-lettered) and were left "
        "for the next redrive"
    )


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = sys.stderr
    parser = _parser()
    args = parser.parse_args(argv)
    problem = unknown_config_env(args.config_env)
    if problem:
        parser.error(problem)
    reports: list[tuple[str, RedriveReport]] = []
    try:
        session = session_for(args)
        outputs = StackOutputs(session, args)
        config = BotoConfig(retries={"mode": "standard"})
        sqs = session.client("sqs", config=config)
        lambda_client = session.client("lambda", config=config)
        if args.only != "jobs":
            reports.append(("messages", _redrive_messages(args, outputs, sqs, lambda_client, err)))
        if args.only != "messages":
            reports.append(("jobs", _replay_jobs(args, outputs, sqs, lambda_client, err)))
    except KeyboardInterrupt:
        print("interrupted: run it again to go on (at most one batch is sent twice)", file=err)
        return 130
    except (OSError, ValueError, BotoCoreError, ClientError, MoveTaskUnsupportedError) as error:
        print(f"error: {error}", file=err)
        return 1
    failed = 0
    for what, report in reports:
        print(
            f"{what}: moved={report.moved} replayed={report.replayed} "
            f"failed={len(report.failed)} method={report.method}",
            file=out,
        )
        print(f"  {ending(what, report)}", file=out)
        for message_id, why in report.failed:
            print(f"  left in place  {message_id}  {why}", file=out)
        failed += len(report.failed)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
