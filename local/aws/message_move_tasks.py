"""SQS's DLQ redrive (StartMessageMoveTask, ListMessageMoveTasks, CancelMessageMoveTask) for
the embedded emulator: moto has none of the three, and answered `make redrive ENV=local` with a
server error and a traceback in make up's terminal.

As the SQS API Reference describes them:
- the source must be a queue that is some queue's dead-letter queue (its RedrivePolicy's
  deadLetterTargetArn), else UnsupportedOperation; one active task per source queue;
- the destination is DestinationArn, or the queue whose dead-letter queue the source is;
- the task moves what the source held when it started (ApproximateNumberOfMessagesToMove,
  counted then), at MaxNumberOfMessagesPerSecond (1 to 500; unset: as fast as it goes); each
  message is sent to the destination with its body and attributes, then deleted from the source;
- ListMessageMoveTasks gives the source's most recent tasks first (MaxResults 1 to 10, default
  1), with a TaskHandle only while RUNNING; CancelMessageMoveTask stops a RUNNING task (the
  messages already moved stay moved) and answers how many were moved.
Standard queues only: a FIFO source is refused with UnsupportedOperation, and `make redrive`
then copies, as it does against any endpoint without the action.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from moto.core.responses import ActionResult
from moto.sqs.exceptions import SQSException
from moto.sqs.models import Queue, SQSBackend
from moto.sqs.responses import SQSResponse

MAX_RATE = 500
MAX_RESULTS = 10
# How long a message being moved stays hidden on the source: it is deleted right after.
MOVING_VISIBILITY_SECONDS = 30
# A task whose messages are all in flight on the source (a consumer holds them) waits for them.
IDLE_POLL_SECONDS = 0.2


@dataclass
class MoveTask:
    handle: str
    source: Queue
    destination: Queue
    backend: SQSBackend
    rate_per_s: int | None
    to_move: int
    started_ms: int
    moved: int = 0
    status: str = "RUNNING"
    failure: str | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)

    def listing(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "Status": self.status,
            "SourceArn": self.source.queue_arn,
            "DestinationArn": self.destination.queue_arn,
            "ApproximateNumberOfMessagesMoved": self.moved,
            "ApproximateNumberOfMessagesToMove": self.to_move,
            "StartedTimestamp": self.started_ms,
        }
        if self.rate_per_s is not None:
            entry["MaxNumberOfMessagesPerSecond"] = self.rate_per_s
        if self.status == "RUNNING":
            entry["TaskHandle"] = self.handle
        if self.failure is not None:
            entry["FailureReason"] = self.failure
        return entry

    def run(self) -> None:
        try:
            self._move()
        except SQSException as error:
            self.status, self.failure = "FAILED", f"{error.code}: {error.message}"
        else:
            self.status = "CANCELLED" if self.cancelled.is_set() else "COMPLETED"

    def _move(self) -> None:
        started = time.monotonic()
        while self.moved < self.to_move and not self.cancelled.is_set():
            if self.rate_per_s is not None:
                # Never ahead of the rate: message n leaves at n / rate seconds.
                due = started + self.moved / self.rate_per_s
                if self.cancelled.wait(max(0.0, due - time.monotonic())):
                    return
            # At most a second's worth at a time, so that the rate holds within each second.
            wanted = min(10, self.to_move - self.moved, self.rate_per_s or 10)
            messages = self.backend.receive_message(
                self.source.name, wanted, 0, MOVING_VISIBILITY_SECONDS, ["All"]
            )
            if not messages:
                visible, hidden = _depth(self.source)
                if visible + hidden == 0:
                    return  # nothing left to move: what was counted is gone
                self.cancelled.wait(IDLE_POLL_SECONDS)
                continue
            for message in messages:
                self.backend.send_message(
                    self.destination.name,
                    message.body,
                    message_attributes=message.message_attributes or None,
                )
                self.backend.delete_message(self.source.name, str(message.receipt_handle))
                self.moved += 1


class MoveTasks:
    """Every task of the emulator's lifetime, by source queue ARN, most recent last."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tasks: dict[str, list[MoveTask]] = {}

    def start(self, backend: SQSBackend, params: dict[str, Any]) -> str:
        source = _queue(backend, _required(params, "SourceArn"))
        if source.fifo_queue:
            raise SQSException(
                "AWS.SimpleQueueService.UnsupportedOperation",
                "Message move tasks are supported on standard queues only here.",
            )
        sources = [q for q in backend.queues.values() if q.dead_letter_queue is source]
        if not sources:
            raise SQSException(
                "AWS.SimpleQueueService.UnsupportedOperation",
                f"Source queue {source.queue_arn} is not a dead-letter queue of any queue.",
            )
        destination_arn = params.get("DestinationArn")
        destination = _queue(backend, destination_arn) if destination_arn else sources[0]
        rate = params.get("MaxNumberOfMessagesPerSecond")
        if rate is not None and not 1 <= int(rate) <= MAX_RATE:
            raise SQSException(
                "InvalidParameterValue",
                f"MaxNumberOfMessagesPerSecond must be between 1 and {MAX_RATE}.",
            )
        with self._lock:
            running = [t for t in self._tasks.get(source.queue_arn, []) if t.status == "RUNNING"]
            if running:
                raise SQSException(
                    "AWS.SimpleQueueService.UnsupportedOperation",
                    f"There is already a running message move task on {source.queue_arn}.",
                )
            task = MoveTask(
                handle=_handle(source.queue_arn),
                source=source,
                destination=destination,
                backend=backend,
                rate_per_s=None if rate is None else int(rate),
                to_move=sum(_depth(source)),
                started_ms=int(time.time() * 1000),
            )
            self._tasks.setdefault(source.queue_arn, []).append(task)
        threading.Thread(target=task.run, name="message-move-task", daemon=True).start()
        return task.handle

    def listing(self, backend: SQSBackend, params: dict[str, Any]) -> list[dict[str, Any]]:
        source = _queue(backend, _required(params, "SourceArn"))
        limit = int(params.get("MaxResults") or 1)
        if not 1 <= limit <= MAX_RESULTS:
            raise SQSException(
                "InvalidParameterValue", f"MaxResults must be between 1 and {MAX_RESULTS}."
            )
        with self._lock:
            tasks = list(reversed(self._tasks.get(source.queue_arn, [])))
        return [task.listing() for task in tasks[:limit]]

    def cancel(self, params: dict[str, Any]) -> int:
        handle = _required(params, "TaskHandle")
        with self._lock:
            found = [t for tasks in self._tasks.values() for t in tasks if t.handle == handle]
        if not found:
            raise SQSException("ResourceNotFoundException", "The task handle does not exist.")
        [task] = found
        if task.status != "RUNNING":
            raise SQSException(
                "AWS.SimpleQueueService.UnsupportedOperation",
                f"Only a RUNNING task can be cancelled; this one is {task.status}.",
            )
        task.status = "CANCELLING"
        task.cancelled.set()
        return task.moved

    def cancel_all(self) -> None:
        with self._lock:
            for tasks in self._tasks.values():
                for task in tasks:
                    task.cancelled.set()


def _required(params: dict[str, Any], name: str) -> str:
    value = params.get(name)
    if not value:
        raise SQSException("MissingParameter", f"The request must contain {name}.")
    return str(value)


def _queue(backend: SQSBackend, arn: str) -> Queue:
    for queue in backend.queues.values():
        if queue.queue_arn == arn:
            return queue
    raise SQSException("ResourceNotFoundException", f"The resource {arn} does not exist.")


def _depth(queue: Queue) -> tuple[int, int]:
    attributes = queue.attributes
    return (
        int(attributes["ApproximateNumberOfMessages"]),
        int(attributes["ApproximateNumberOfMessagesNotVisible"]),
    )


def _handle(source_arn: str) -> str:
    """An opaque handle naming the task and its queue, as SQS's are."""
    text = json.dumps({"taskId": str(uuid.uuid4()), "sourceArn": source_arn})
    return base64.b64encode(text.encode()).decode()


@contextmanager
def message_move_tasks() -> Iterator[MoveTasks]:
    """The three actions on moto's SQS API while the block runs; running tasks stop at its end."""
    tasks = MoveTasks()

    def start_message_move_task(self: SQSResponse) -> ActionResult:
        return ActionResult({"TaskHandle": tasks.start(self.sqs_backend, _params(self))})

    def list_message_move_tasks(self: SQSResponse) -> ActionResult:
        return ActionResult({"Results": tasks.listing(self.sqs_backend, _params(self))})

    def cancel_message_move_task(self: SQSResponse) -> ActionResult:
        moved = tasks.cancel(_params(self))
        return ActionResult({"ApproximateNumberOfMessagesMoved": moved})

    actions = {
        "start_message_move_task": start_message_move_task,
        "list_message_move_tasks": list_message_move_tasks,
        "cancel_message_move_task": cancel_message_move_task,
    }
    previous = {name: getattr(SQSResponse, name, None) for name in actions}
    for name, action in actions.items():
        setattr(SQSResponse, name, action)
    try:
        yield tasks
    finally:
        tasks.cancel_all()
        for name, old in previous.items():
            if old is None:
                delattr(SQSResponse, name)
            else:
                setattr(SQSResponse, name, old)


def _params(response: SQSResponse) -> dict[str, Any]:
    names = (
        "SourceArn", "DestinationArn", "MaxNumberOfMessagesPerSecond", "MaxResults", "TaskHandle",
    )  # fmt: skip
    return {name: response._get_param(name) for name in names}
