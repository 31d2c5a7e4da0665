"""Lambda's SQS event source mapping, emulated from the deployed mapping's own settings.

Pollers long-poll the queue (ReceiveMessage, 20 s wait, all attributes), gather up to BatchSize
messages within the batching window and within Lambda's 6 MB invocation payload (a batch whose
payload reaches it is invoked at once, and what did not fit starts the poller's next batch),
invoke the function synchronously with the batch shaped as Lambda shapes it, and then delete
what the response says succeeded (see batch_response). At most MaximumConcurrency invocations
run at once. Lambda never changes a failed message's visibility: the function's own
ChangeMessageVisibility, or the queue's timeout, decides when it returns.

The pollers follow the deployed mapping as it changes (the function's circuit breaker disables
it and lowers its MaximumConcurrency; a stack update changes its BatchSize or batching window):
one MappingWatcher reads it through the emulator's Lambda
API, GetEventSourceMapping, about once a second, and every poller asks it for a slot before each
ReceiveMessage. A disabled mapping starts no receive; a receive already in its long poll still
returns and its batch is invoked, as what Lambda has received is processed.
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

from local.lambda_service.batch_response import BatchOutcome, batch_outcome
from local.lambda_service.execution_environment import Invocation, PoolClosedError
from local.lambda_service.lambda_sqs_event import (
    MAX_EVENT_BYTES,
    lambda_sqs_event,
    record_bytes,
    records_within_limit,
)

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
            maximum_concurrency=int(scaling.get("MaximumConcurrency", UNSCALED_CONCURRENCY)),
            report_batch_item_failures="ReportBatchItemFailures"
            in (mapping.get("FunctionResponseTypes") or []),
            enabled=mapping.get("State", "Enabled") == "Enabled",
        )


@dataclass(frozen=True)
class Batching:
    """How the pollers fill a batch, as the mapping says now: a stack update may change it."""

    batch_size: int
    window_seconds: float

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any]) -> Batching:
        return cls(
            # 10 is Lambda's default for SQS.
            batch_size=int(mapping.get("BatchSize") or 10),
            window_seconds=float(mapping.get("MaximumBatchingWindowInSeconds") or 0),
        )


# States in which Lambda polls. The states a mapping reports are Creating, Enabling, Enabled,
# Disabling, Disabled, Updating and Deleting (GetEventSourceMapping, State). The emulator's
# control plane (local.aws.control_plane) shows an account caller Disabling, Enabling or Updating
# for a while after an update, but answers the pollers' own reads with the configuration still
# in force until the change lands: polling stops only when a disable has landed. A transitional
# state that reaches the pollers anyway keeps what they were doing (Disabling included).
POLLING_STATES = frozenset({"Enabled"})
STOPPED_STATES = frozenset({"Disabled", "Deleting"})
# Without ScalingConfig Lambda scales to the account's concurrency; 1000 is the ceiling
# MaximumConcurrency itself accepts.
UNSCALED_CONCURRENCY = 1000


@dataclass(frozen=True)
class MappingState:
    """What the pollers honour of the deployed mapping, as GetEventSourceMapping returned it."""

    state: str
    polling: bool
    maximum_concurrency: int

    @classmethod
    def from_mapping(
        cls, mapping: Mapping[str, Any], previous: MappingState | None = None
    ) -> MappingState:
        state = str(mapping.get("State", "Enabled"))
        if state in POLLING_STATES:
            polling = True
        elif state in STOPPED_STATES:
            polling = False
        else:
            polling = previous.polling if previous is not None else False
        scaling = mapping.get("ScalingConfig") or {}
        return cls(state, polling, int(scaling.get("MaximumConcurrency", UNSCALED_CONCURRENCY)))

    def render(self) -> str:
        """As the progress line shows it: "off", or "on x3"."""
        return f"on x{self.maximum_concurrency}" if self.polling else "off"


class MappingWatcher:
    """One reader of the deployed mapping for all its pollers, and the gate they pass.

    `read` returns the mapping (GetEventSourceMapping's answer); it is called every
    `interval_seconds` on a thread of its own. A read that fails keeps the last state (Lambda's
    pollers do not stop because a control-plane read failed). `on_change(old, new)` is called on
    that thread for every change seen (more listeners may be appended to `listeners`).
    """

    def __init__(
        self,
        read: Callable[[], Mapping[str, Any]],
        *,
        interval_seconds: float = 1.0,
        on_change: Callable[[MappingState, MappingState], None] | None = None,
    ) -> None:
        self._read = read
        self.interval_seconds = interval_seconds
        self.listeners: list[Callable[[MappingState, MappingState], None]] = (
            [on_change] if on_change is not None else []
        )
        self._changed = threading.Condition()
        first = read()
        self._state = MappingState.from_mapping(first)
        self._batching = Batching.from_mapping(first)
        self._busy = 0
        self._reads = 0
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mapping-watcher", daemon=True)

    @property
    def state(self) -> MappingState:
        with self._changed:
            return self._state

    @property
    def batching(self) -> Batching:
        with self._changed:
            return self._batching

    @property
    def reads(self) -> int:
        """How many reads have completed (failed ones too): tests wait on it."""
        with self._changed:
            return self._reads

    @property
    def busy(self) -> int:
        """Pollers holding a slot: in a receive or in an invocation."""
        with self._changed:
            return self._busy

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        with self._changed:
            self._changed.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def refresh(self) -> None:
        """Read the mapping once, now."""
        try:
            mapping = self._read()
        except Exception as error:  # any failure of the read: keep the last state
            logger.warning(
                "could not read the event source mapping; its last state holds",
                extra={"fields": {"error": str(error)}},
            )
            with self._changed:
                self._reads += 1
                self._changed.notify_all()
            return
        with self._changed:
            old = self._state
            new = MappingState.from_mapping(mapping, old)
            self._state = new
            old_batching, self._batching = self._batching, Batching.from_mapping(mapping)
            self._reads += 1
            self._changed.notify_all()
        if self._batching != old_batching:
            logger.info(
                "event source mapping batching changed; the next batches follow it",
                extra={
                    "fields": {
                        "batch_size": self._batching.batch_size,
                        "window_seconds": self._batching.window_seconds,
                    }
                },
            )
        if new != old:
            for listener in list(self.listeners):
                listener(old, new)

    def wait_for_reads(self, count: int, timeout_seconds: float) -> bool:
        """Wait until `count` more reads have completed; False if the timeout came first."""
        with self._changed:
            target = self._reads + count
            return self._changed.wait_for(lambda: self._reads >= target, timeout_seconds)

    def acquire(self, stopping: threading.Event) -> bool:
        """Wait for a slot: the mapping enabled and fewer than MaximumConcurrency pollers busy.
        False when `stopping` was set first."""
        with self._changed:
            while not stopping.is_set():
                if self._state.polling and self._busy < self._state.maximum_concurrency:
                    self._busy += 1
                    return True
                # Woken by a change or a release; the timeout only notices `stopping`.
                self._changed.wait(0.5)
            return False

    def release(self) -> None:
        with self._changed:
            self._busy -= 1
            self._changed.notify_all()

    def _run(self) -> None:
        while not self._stopping.wait(self.interval_seconds):
            self.refresh()


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
    # The batch's receipt handles (in message_ids' order) and when the mapping was done with
    # it, on the monotonic clock: the soak tells which deliveries overlapped.
    receipt_handles: tuple[str, ...] = ()
    finished_at: float = 0.0
    # The BatchSize the batch was gathered under (the mapping's when its receive began).
    batch_size_limit: int = 0


@dataclass(frozen=True)
class Receive:
    """One delivery of a message to the mapping, as ReceiveMessage returned it."""

    message_id: str
    receipt_handle: str
    receive_count: int
    # Monotonic seconds when ReceiveMessage returned.
    at: float


class MappingFaults(Protocol):
    """Faults injected around invocations.

    local.downstream.faults.EnvironmentFaults in a faulty run: a room this one may not import."""

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
        watcher: MappingWatcher | None = None,
        max_event_bytes: int = MAX_EVENT_BYTES,
    ) -> None:
        self.sqs = sqs
        self.settings = settings
        self.pool = pool
        self.on_batch = on_batch
        self.long_poll_seconds = long_poll_seconds
        self.max_event_bytes = max_event_bytes
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
        # ReceiveMessage calls made, empty ones included.
        self.receive_calls = 0
        # Without a watcher the settings read at the deploy hold for the whole run.
        self.watcher = watcher
        if watcher is not None:
            watcher.listeners.append(self._follow)

    @property
    def messages_in_invocation(self) -> int:
        with self._counter_lock:
            return self._in_invocation

    def start(self) -> None:
        if self.watcher is None:
            if not self.settings.enabled:
                logger.warning("event source mapping is disabled: nothing will be polled")
                return
            self._add_pollers(self.settings.maximum_concurrency)
            return
        # As many pollers as the mapping allows at most; the watcher's gate lets through as
        # many as its current MaximumConcurrency, and none while it is disabled.
        self.watcher.start()
        self._add_pollers(
            max(self.settings.maximum_concurrency, self.watcher.state.maximum_concurrency)
        )

    def _add_pollers(self, count: int) -> None:
        with self._counter_lock:
            for index in range(len(self._pollers), count):
                poller = threading.Thread(target=self._poll, name=f"poller-{index}", daemon=True)
                poller.start()
                self._pollers.append(poller)

    def _follow(self, old: MappingState, new: MappingState) -> None:
        """A MaximumConcurrency raised beyond the pollers started gets pollers of its own."""
        if not self._stopping.is_set() and new.maximum_concurrency > len(self._pollers):
            self._add_pollers(new.maximum_concurrency)

    @property
    def polling(self) -> bool:
        """Whether the mapping polls now (always, without a watcher)."""
        return self.watcher is None or self.watcher.state.polling

    def stop(self, wait_seconds: float = 0.1) -> None:
        """Stop polling. A poller still in a long poll finds the stop when its receive returns
        and starts nothing new; each is waited for up to `wait_seconds`."""
        self._stopping.set()
        if self.watcher is not None:
            self.watcher.stop()
        for poller in list(self._pollers):
            poller.join(timeout=wait_seconds)

    def _poll(self) -> None:
        # Received messages that did not fit the last batch's payload: the next batch's first.
        carried: list[dict[str, Any]] = []
        while not self._stopping.is_set():
            if self.watcher is not None and not self.watcher.acquire(self._stopping):
                return
            try:
                batching = self.batching
                messages, carried = self._receive_batch(carried, batching)
                if messages and not self._stopping.is_set():
                    self._process(messages, batching.batch_size)
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
            finally:
                if self.watcher is not None:
                    self.watcher.release()

    @property
    def batching(self) -> Batching:
        """The batching the next batch follows: the mapping's as the watcher last read it (a
        stack update may have changed it), else the settings read at the deploy."""
        if self.watcher is not None:
            return self.watcher.batching
        return Batching(self.settings.batch_size, self.settings.batching_window_seconds)

    def _receive_batch(
        self, carried: list[dict[str, Any]], batching: Batching
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The next batch, and the received messages beyond its 6 MB payload."""
        batch: list[dict[str, Any]] = list(carried)
        # Each message's size in the event, kept as the batch grows: measuring the whole
        # event after each receive would cost a batch of 10,000 records 1,000 times over.
        sizes = self._record_sizes(batch)
        window_ends = time.monotonic() + batching.window_seconds
        wait_seconds = self.long_poll_seconds
        while (
            len(batch) < batching.batch_size
            and records_within_limit(sizes, self.max_event_bytes) == len(sizes)
            and not self._stopping.is_set()
        ):
            # The lock is held for one ReceiveMessage, not for the whole batching window:
            # another poller may fill its own batch meanwhile, as Lambda's pollers do. A poller
            # that holds part of a batch waits for the lock no longer than its window: behind
            # other pollers' long polls of an empty queue (up to 20 s each) it would otherwise
            # keep its records from the function for minutes; Lambda invokes at the window's
            # end with what it has.
            if batch:
                acquired = self._receive_lock.acquire(
                    timeout=max(0.0, window_ends - time.monotonic())
                )
            else:
                acquired = self._receive_lock.acquire()
            if not acquired:
                break
            try:
                # Checked under the lock: a poller that waited for it while the mapping was
                # disabled starts no receive (its batch so far is still invoked).
                if self._stopping.is_set() or not self.polling:
                    break
                self.receive_calls += 1
                response = self.sqs.receive_message(
                    QueueUrl=self.settings.queue_url,
                    MaxNumberOfMessages=min(RECEIVE_LIMIT, batching.batch_size - len(batch)),
                    WaitTimeSeconds=wait_seconds,
                    AttributeNames=["All"],
                    MessageAttributeNames=["All"],
                )
            finally:
                self._receive_lock.release()
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
            sizes.extend(self._record_sizes(received))
            remaining = window_ends - time.monotonic()
            if batch and remaining <= 0:
                break
            if batch:
                wait_seconds = min(self.long_poll_seconds, max(1, int(remaining)))
        fits = records_within_limit(sizes, self.max_event_bytes)
        if fits < len(batch):
            logger.info(
                "batch cut at Lambda's invocation payload limit; the rest starts the next batch",
                extra={
                    "fields": {
                        "records": fits,
                        "carried": len(batch) - fits,
                        "limit_bytes": self.max_event_bytes,
                    }
                },
            )
        return batch[:fits], batch[fits:]

    def _record_sizes(self, messages: list[dict[str, Any]]) -> list[int]:
        event = lambda_sqs_event(messages, self.settings.queue_arn)
        return [record_bytes(record) for record in event["Records"]]

    def _process(self, messages: list[dict[str, Any]], batch_size_limit: int = 0) -> None:
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
        self.on_batch(
            BatchReport(
                message_ids,
                invocation,
                outcome,
                undeleted,
                tuple(receipts[message_id] for message_id in message_ids),
                time.monotonic(),
                batch_size_limit,
            )
        )

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
