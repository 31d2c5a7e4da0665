"""Lambda's SQS event source mapping, emulated from the deployed mapping's own settings.

Pollers long-poll the queue (ReceiveMessage, 20 s wait, all attributes), gather up to BatchSize
messages within the batching window, invoke the function synchronously with the batch shaped as
Lambda shapes it, and then delete what the response says succeeded (see batch_response). At most
MaximumConcurrency invocations run at once. Lambda never changes a failed message's visibility:
the function's own ChangeMessageVisibility, or the queue's timeout, decides when it returns.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from local.batch_response import BatchOutcome, batch_outcome
from local.execution_environment import Invocation, PoolClosedError
from local.lambda_sqs_event import lambda_sqs_event

logger = logging.getLogger(__name__)

LONG_POLL_SECONDS = 20
# ReceiveMessage returns at most 10 messages per call; larger batches take several calls.
RECEIVE_LIMIT = 10


@dataclass(frozen=True)
class MappingSettings:
    queue_arn: str
    queue_url: str
    batch_size: int
    batching_window_seconds: float
    maximum_concurrency: int
    report_batch_item_failures: bool
    enabled: bool

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any], queue_url: str) -> MappingSettings:
        scaling = mapping.get("ScalingConfig") or {}
        return cls(
            queue_arn=str(mapping["EventSourceArn"]),
            queue_url=queue_url,
            batch_size=int(mapping["BatchSize"]),
            batching_window_seconds=float(mapping.get("MaximumBatchingWindowInSeconds") or 0),
            # Without ScalingConfig Lambda scales to the account's concurrency; 1000 is the
            # ceiling MaximumConcurrency itself accepts.
            maximum_concurrency=int(scaling.get("MaximumConcurrency", 1000)),
            report_batch_item_failures="ReportBatchItemFailures"
            in (mapping.get("FunctionResponseTypes") or []),
            enabled=mapping.get("State", "Enabled") == "Enabled",
        )


class Invokable(Protocol):
    def invoke(self, event: Any, request_id: str | None = None) -> Invocation: ...


class Environments(Protocol):
    """Where invocations run: an EnvironmentPool, or a stand-in in tests."""

    def environment(self) -> AbstractContextManager[Invokable]: ...


@dataclass(frozen=True)
class BatchReport:
    message_ids: tuple[str, ...]
    invocation: Invocation
    outcome: BatchOutcome
    # Messages the function had succeeded with but whose delete SQS refused: they come back.
    undeleted: tuple[str, ...] = ()


@dataclass(frozen=True)
class Receive:
    """One delivery of a message to the mapping, as ReceiveMessage returned it."""

    message_id: str
    receipt_handle: str
    receive_count: int
    # Monotonic seconds when ReceiveMessage returned.
    at: float


class MappingFaults(Protocol):
    """Faults injected around invocations (local.faults.EnvironmentFaults in a faulty run)."""

    def arm(self, message_ids: tuple[str, ...], environment: Any) -> Any: ...

    def disarm(self, armed: Any) -> bool: ...

    def fire(self, armed: Any) -> None: ...

    def maybe_kill_idle(self, environment: Any) -> None: ...

    def on_crash(self, environment: Any, message_ids: tuple[str, ...]) -> None: ...


class SqsEventSourceMapping:
    def __init__(
        self,
        sqs: Any,
        settings: MappingSettings,
        pool: Environments,
        *,
        on_batch: Callable[[BatchReport], None] = lambda report: None,
        long_poll_seconds: int = LONG_POLL_SECONDS,
        faults: MappingFaults | None = None,
    ) -> None:
        self.sqs = sqs
        self.settings = settings
        self.pool = pool
        self.on_batch = on_batch
        self.long_poll_seconds = long_poll_seconds
        self._stopping = threading.Event()
        # One ReceiveMessage at a time: the emulator serialises them anyway, and a single
        # receiver hands batches to the invocations as fast as they free up.
        self._receive_lock = threading.Lock()
        self._in_invocation = 0
        self._counter_lock = threading.Lock()
        self._pollers: list[threading.Thread] = []
        self.faults = faults
        # Every delivery, in order: the soak checks the gaps between a message's receives.
        self.receives: list[Receive] = []

    @property
    def messages_in_invocation(self) -> int:
        with self._counter_lock:
            return self._in_invocation

    def start(self) -> None:
        if not self.settings.enabled:
            logger.warning("event source mapping is disabled: nothing will be polled")
            return
        for index in range(self.settings.maximum_concurrency):
            poller = threading.Thread(target=self._poll, name=f"poller-{index}", daemon=True)
            poller.start()
            self._pollers.append(poller)

    def stop(self, wait_seconds: float = 0.1) -> None:
        """Stop polling. A poller still in a long poll finds the stop when its receive returns
        and starts nothing new; each is waited for up to `wait_seconds`."""
        self._stopping.set()
        for poller in self._pollers:
            poller.join(timeout=wait_seconds)

    def _poll(self) -> None:
        while not self._stopping.is_set():
            try:
                messages = self._receive_batch()
                if messages and not self._stopping.is_set():
                    self._process(messages)
            except PoolClosedError:
                return  # shutting down: what was received returns at its visibility timeout
            except Exception:
                if self._stopping.is_set():
                    # A long poll cut short by the emulator stopping after the mapping (Ctrl-C,
                    # or the end of a run): not a failure to report.
                    return
                # Lambda's pollers survive a failed call and try again; so do these.
                logger.exception("event source mapping poll failed; polling again")
                self._stopping.wait(1)

    def _receive_batch(self) -> list[dict[str, Any]]:
        batch: list[dict[str, Any]] = []
        window_ends = time.monotonic() + self.settings.batching_window_seconds
        wait_seconds = self.long_poll_seconds
        while len(batch) < self.settings.batch_size and not self._stopping.is_set():
            # The lock is held for one ReceiveMessage, not for the whole batching window:
            # another poller may fill its own batch meanwhile, as Lambda's pollers do.
            with self._receive_lock:
                if self._stopping.is_set():
                    break
                response = self.sqs.receive_message(
                    QueueUrl=self.settings.queue_url,
                    MaxNumberOfMessages=min(RECEIVE_LIMIT, self.settings.batch_size - len(batch)),
                    WaitTimeSeconds=wait_seconds,
                    AttributeNames=["All"],
                    MessageAttributeNames=["All"],
                )
            received = response.get("Messages", [])
            now = time.monotonic()
            with self._counter_lock:
                self.receives.extend(
                    Receive(
                        m["MessageId"],
                        m["ReceiptHandle"],
                        int(m.get("Attributes", {}).get("ApproximateReceiveCount", 0)),
                        now,
                    )
                    for m in received
                )
            batch.extend(received)
            remaining = window_ends - time.monotonic()
            if batch and remaining <= 0:
                break
            if batch:
                wait_seconds = min(self.long_poll_seconds, max(1, int(remaining)))
        return batch

    def _process(self, messages: list[dict[str, Any]]) -> None:
        message_ids = tuple(message["MessageId"] for message in messages)
        receipts = {message["MessageId"]: message["ReceiptHandle"] for message in messages}
        with self._counter_lock:
            self._in_invocation += len(messages)
        try:
            with self.pool.environment() as environment:
                invocation = self._invoke(environment, message_ids, messages)
            if self.faults is not None:
                self.faults.maybe_kill_idle(environment)
            outcome = batch_outcome(
                message_ids,
                invocation.succeeded,
                invocation.response,
                self.settings.report_batch_item_failures,
            )
            undeleted = self._delete(
                [(message_id, receipts[message_id]) for message_id in outcome.delete]
            )
        finally:
            with self._counter_lock:
                self._in_invocation -= len(messages)
        if not invocation.succeeded or outcome.failed:
            logger.info(
                "batch not fully processed",
                extra={
                    "fields": {
                        "records": len(message_ids),
                        "failed": len(outcome.failed),
                        "reason": outcome.reason,
                        "outcome": invocation.outcome,
                    }
                },
            )
        self.on_batch(BatchReport(message_ids, invocation, outcome, undeleted))

    def _invoke(
        self, environment: Invokable, message_ids: tuple[str, ...], messages: list[dict[str, Any]]
    ) -> Invocation:
        armed = self.faults.arm(message_ids, environment) if self.faults is not None else None
        invocation = environment.invoke(lambda_sqs_event(messages, self.settings.queue_arn))
        if armed is not None and invocation.succeeded:
            # The kill was to come after more downstream calls than the batch made: it comes
            # now, before the response reaches the mapping, which then never sees it.
            self.faults.fire(armed)  # type: ignore[union-attr]
        if self.faults is not None and invocation.outcome == "crash":
            self.faults.on_crash(environment, message_ids)
        if self.faults is not None and self.faults.disarm(armed):
            return Invocation(
                invocation.request_id,
                "crash",
                invocation.duration_seconds,
                invocation.cold_start,
                error={
                    "errorMessage": "the execution environment was killed (injected fault)",
                    "errorType": "Runtime.ExitError",
                },
            )
        return invocation

    def _delete(self, entries: list[tuple[str, str]]) -> tuple[str, ...]:
        """Delete the batch's successes; return the ids SQS refused to delete."""
        undeleted: list[str] = []
        for start in range(0, len(entries), RECEIVE_LIMIT):
            chunk = entries[start : start + RECEIVE_LIMIT]
            try:
                response = self.sqs.delete_message_batch(
                    QueueUrl=self.settings.queue_url,
                    Entries=[
                        {"Id": str(index), "ReceiptHandle": receipt}
                        for index, (_, receipt) in enumerate(chunk)
                    ],
                )
            except (BotoCoreError, ClientError) as error:
                # As in Lambda: the messages stay on the queue and come back after their
                # visibility timeout; the function's idempotency absorbs the repeat.
                logger.error(
                    "could not delete processed messages; they will be delivered again",
                    extra={"fields": {"messages": len(chunk), "error": str(error)}},
                )
                undeleted.extend(message_id for message_id, _ in chunk)
                continue
            for failure in response.get("Failed", []):
                logger.error(
                    "could not delete a processed message; it will be delivered again",
                    extra={
                        "fields": {
                            "message_id": chunk[int(failure["Id"])][0],
                            "code": failure.get("Code"),
                        }
                    },
                )
                undeleted.append(chunk[int(failure["Id"])][0])
        return tuple(undeleted)
