"""Every message that entered a queue of the embedded emulator, whoever sent it.

The reconciliation must count what producers outside the run sent (the AWS CLI, boto3, `make
send` against `make up`'s endpoint) as well as the run's own messages: only the emulator sees
them all. Its queues take every new message through `Queue.add_message` (SendMessage,
SendMessageBatch, and SQS's own redrive into a dead-letter queue), so that method is wrapped
while the recorder is active, and only appended messages count (a FIFO duplicate within the
deduplication interval is not enqueued, as SQS does not enqueue it).

A message removed from the dead-letter queue while the system is up (`make redrive ENV=local`
moves it back to the source queue as a new message, or a client deletes it) was dead-lettered
all the same: `removals` records the original's id (SourceMessageId for the function's own
copies, else the id SQS's redrive kept), so that the reconciliation does not call it lost.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from moto.sqs.models import Queue


class EnqueuedMessages:
    """(message id, body) of every message added to one queue, in the order added."""

    def __init__(self, queue_name: str) -> None:
        self.queue_name = queue_name
        self._lock = threading.Lock()
        self._messages: dict[str, str] = {}

    def record(self, message_id: str, body: str) -> None:
        with self._lock:
            self._messages.setdefault(message_id, body)

    def messages(self) -> dict[str, str]:
        with self._lock:
            return dict(self._messages)

    def __len__(self) -> int:
        with self._lock:
            return len(self._messages)


class Removals:
    """Original ids of the messages removed from the dead-letter queue, in removal order."""

    def __init__(self, queue_name: str) -> None:
        self.queue_name = queue_name
        self._lock = threading.Lock()
        self._ids: list[str] = []

    def record(self, original_id: str) -> None:
        with self._lock:
            self._ids.append(original_id)

    def original_ids(self) -> list[str]:
        with self._lock:
            return list(self._ids)


def _name(queue_url: str) -> str:
    return queue_url.rstrip("/").rsplit("/", 1)[-1]


@contextmanager
def _watching(
    method: str, queue_name: str, watch: Callable[[Callable[[Queue, Any], None], Queue, Any], None]
) -> Iterator[None]:
    """moto's `Queue.<method>` (one argument after the queue) wrapped until the block ends: a
    call on the queue named `queue_name` goes to `watch`, with the original method to call; a
    call on any other queue goes straight to the original."""
    original = getattr(Queue, method)

    def wrapped(queue: Queue, argument: Any) -> None:
        if queue.name != queue_name:
            original(queue, argument)
        else:
            watch(original, queue, argument)

    setattr(Queue, method, wrapped)
    try:
        yield
    finally:
        setattr(Queue, method, original)


@contextmanager
def removals(dead_letter_queue_url: str) -> Iterator[Removals]:
    """Record what is deleted from the dead-letter queue until the block ends."""
    recorder = Removals(_name(dead_letter_queue_url))

    def delete_message(
        original: Callable[[Queue, Any], None], queue: Queue, receipt_handle: str
    ) -> None:
        removed = [m for m in queue._messages if m.had_receipt_handle(receipt_handle)]
        original(queue, receipt_handle)  # raises for an invalid handle: nothing removed
        for message in removed:
            source = (message.message_attributes or {}).get("SourceMessageId", {})
            recorder.record(str(source.get("StringValue") or message.id))

    with _watching("delete_message", recorder.queue_name, delete_message):
        yield recorder


@contextmanager
def recording(queue_url: str) -> Iterator[EnqueuedMessages]:
    """Record the messages added to the queue at `queue_url` until the block ends."""
    recorder = EnqueuedMessages(_name(queue_url))

    def add_message(original: Callable[[Queue, Any], None], queue: Queue, message: Any) -> None:
        # The emulator serialises its SQS operations (local.aws.emulator), so nothing else changes
        # the list between these two reads.
        before = len(queue._messages)
        original(queue, message)
        if len(queue._messages) > before:
            recorder.record(message.id, message.body)

    with _watching("add_message", recorder.queue_name, add_message):
        yield recorder
