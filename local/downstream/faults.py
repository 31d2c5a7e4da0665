"""Fault injection for the local system: the downstream, the SQS API, the execution environments.

Each fault is a fraction of the calls or batches it concerns, drawn from a seeded random source,
and every injected fault is recorded, so that a run can explain what it saw (a duplicate
delivery, a receive after the queue's visibility timeout instead of the backoff) by what was
injected. Nothing here is in the function: faults are injected around it, where AWS and the
network would produce them.

- Downstream (see demo_downstream): read timeouts (the downstream processes the call but answers
  after the function's read timeout), connection resets (closed before processing), answers
  slower than the function timeout, 429 with Retry-After, 5xx.
- SQS (SqsFaults, a WSGI layer in front of the emulator): the function's
  ChangeMessageVisibilityBatch failing, expired receipt handles (every entry refused with
  ReceiptHandleIsInvalid), its SendMessage to the dead-letter queue failing, throttling of any
  of its calls, and the event source mapping's DeleteMessageBatch failing. A failing call fails
  every retry the SDK makes of it (one SDK invocation id); throttling is drawn per attempt, so
  the SDK's retries usually get through, as they do in AWS.
- Execution environments (EnvironmentFaults): killed mid-batch (after some of the batch's
  downstream calls, before the response) and killed while idle.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from typing import Any, Protocol

from local.shared.access_keys import FUNCTION_ACCESS_KEY_ID

# Fault kinds, as recorded.
READ_TIMEOUT = "downstream-read-timeout"
RESET = "downstream-reset"
BEYOND_FUNCTION_TIMEOUT = "downstream-beyond-function-timeout"
THROTTLED_429 = "downstream-429"
SERVER_ERROR = "downstream-5xx"
VISIBILITY_FAILED = "sqs-change-visibility-failed"
RECEIPT_EXPIRED = "sqs-receipt-handle-expired"
DLQ_SEND_FAILED = "sqs-dlq-send-failed"
SQS_THROTTLED = "sqs-throttled"
DELETE_FAILED = "sqs-delete-failed"
KILLED_MID_BATCH = "environment-killed-mid-batch"
KILLED_IDLE = "environment-killed-idle"
# An idle kill that landed on an environment a poller had just taken: that invocation crashed.
KILLED_IDLE_DURING_INVOCATION = "environment-killed-idle-during-invocation"

# Faults after which a message the downstream already accepted can be delivered again: the
# function or the mapping never learnt of the success.
DUPLICATING_FAULTS = frozenset(
    {
        READ_TIMEOUT,
        BEYOND_FUNCTION_TIMEOUT,
        DELETE_FAILED,
        KILLED_MID_BATCH,
        KILLED_IDLE_DURING_INVOCATION,
    }
)


@dataclass(frozen=True)
class FaultPlan:
    """Fractions (0..1) of the calls or batches each fault concerns."""

    downstream_read_timeout: float = 0.0
    downstream_reset: float = 0.0
    downstream_beyond_function_timeout: float = 0.0
    downstream_429: float = 0.0
    downstream_5xx: float = 0.0
    sqs_change_visibility: float = 0.0
    sqs_expired_receipt: float = 0.0
    sqs_dlq_send: float = 0.0
    sqs_throttle: float = 0.0
    sqs_delete: float = 0.0
    kill_mid_batch: float = 0.0
    kill_idle: float = 0.0
    seed: str = "faults"
    # Retry-After of the injected 429s.
    retry_after_seconds: int = 8

    @property
    def any(self) -> bool:
        return any(
            getattr(self, f.name) > 0 for f in fields(self) if f.name.startswith(FRACTION_PREFIXES)
        )

    @property
    def hides_messages_for_the_visibility_timeout(self) -> bool:
        """True when a fault can leave a message to the queue's visibility timeout."""
        return any(
            (
                self.sqs_change_visibility,
                self.sqs_expired_receipt,
                self.sqs_dlq_send,
                self.sqs_delete,
                self.kill_mid_batch,
                self.kill_idle,
            )
        )

    def downstream_fault(self, key: str | None, body: str, attempt: int) -> str | None:
        """The fault injected into the `attempt`-th call carrying this message, if any."""
        draw = random.Random(f"{self.seed}|downstream|{key}|{attempt}|{body}").random()
        for kind, fraction in (
            (READ_TIMEOUT, self.downstream_read_timeout),
            (RESET, self.downstream_reset),
            (BEYOND_FUNCTION_TIMEOUT, self.downstream_beyond_function_timeout),
            (THROTTLED_429, self.downstream_429),
            (SERVER_ERROR, self.downstream_5xx),
        ):
            if draw < fraction:
                return kind
            draw -= fraction
        return None


FRACTION_PREFIXES = ("downstream_", "sqs_", "kill_")


@dataclass(frozen=True)
class InjectedFault:
    kind: str
    # Monotonic seconds, the runner's clock.
    at: float
    message_id: str | None = None
    receipt_handle: str | None = None


@dataclass(frozen=True)
class VisibilityChange:
    """A ChangeMessageVisibilityBatch entry the emulator accepted."""

    receipt_handle: str
    timeout_seconds: int
    # When its request arrived (monotonic seconds): the message is hidden at least until
    # `at + timeout_seconds`.
    at: float


@dataclass
class FaultLog:
    """What was injected, and the visibility changes that went through; thread-safe."""

    faults: list[InjectedFault] = field(default_factory=list)
    visibility_changes: list[VisibilityChange] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(
        self, kind: str, message_id: str | None = None, receipt_handle: str | None = None
    ) -> None:
        with self._lock:
            self.faults.append(InjectedFault(kind, time.monotonic(), message_id, receipt_handle))

    def record_each(
        self,
        kind: str,
        message_ids: Iterable[str | None] = (),
        receipt_handles: Iterable[str | None] = (),
    ) -> None:
        """One fault concerning several messages (a batch): one entry each, one moment."""
        now = time.monotonic()
        with self._lock:
            self.faults.extend(InjectedFault(kind, now, m) for m in message_ids)
            self.faults.extend(InjectedFault(kind, now, None, r) for r in receipt_handles)

    def record_visibility(
        self, changes: Iterable[tuple[str, int]], at: float | None = None
    ) -> None:
        """Record changes the emulator accepted, made by a request that arrived `at` (now if
        None): SQS counts a visibility timeout from the call, no earlier than its arrival."""
        at = time.monotonic() if at is None else at
        with self._lock:
            self.visibility_changes.extend(VisibilityChange(r, t, at) for r, t in changes)

    def counts(self) -> dict[str, int]:
        """Faults injected, by kind: a fault concerning a whole batch counts once."""
        with self._lock:
            counts: dict[str, int] = {}
            for kind, _ in {(fault.kind, fault.at) for fault in self.faults}:
                counts[kind] = counts.get(kind, 0) + 1
            return counts

    def snapshot(self) -> tuple[list[InjectedFault], list[VisibilityChange]]:
        with self._lock:
            return list(self.faults), list(self.visibility_changes)


class _Draws:
    """A seeded random source shared by threads."""

    def __init__(self, seed: str) -> None:
        self._random = random.Random(seed)
        self._lock = threading.Lock()

    def below(self, fraction: float) -> bool:
        if fraction <= 0:
            return False
        with self._lock:
            return self._random.random() < fraction

    def integer(self, low: int, high: int) -> int:
        with self._lock:
            return self._random.randint(low, high)


WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class SqsFaults:
    """A WSGI layer in front of the emulator that injects SQS API faults (JSON protocol)."""

    def __init__(self, plan: FaultPlan, log: FaultLog, dead_letter_queue_url: str = "") -> None:
        self.plan = plan
        self.log = log
        self.dead_letter_queue_url = dead_letter_queue_url
        self._draws = _Draws(f"{plan.seed}|sqs")
        # SDK invocation id -> the fault every attempt of that call gets.
        self._decided: dict[tuple[str, str], str | None] = {}
        self._lock = threading.Lock()

    def wrap(self, app: WsgiApp) -> WsgiApp:
        def layer(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
            if not target.startswith("AmazonSQS."):
                return app(environ, start_response)
            return self._serve(app, target.removeprefix("AmazonSQS."), environ, start_response)

        return layer

    def _serve(
        self,
        app: WsgiApp,
        operation: str,
        environ: dict[str, Any],
        start_response: Callable[..., Any],
    ) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = _Replay(body)
        request = json.loads(body or b"{}")
        from_function = f"Credential={FUNCTION_ACCESS_KEY_ID}/" in str(
            environ.get("HTTP_AUTHORIZATION", "")
        )
        fault = self._fault_for(operation, request, from_function, environ)
        if fault is not None:
            if not environ.get("local.fault_retry"):
                self._record(fault, request)
            return self._refuse(fault, request, start_response)
        if operation == "ChangeMessageVisibilityBatch" and from_function:
            return self._recording_visibility(app, request, environ, start_response)
        return app(environ, start_response)

    def _fault_for(
        self, operation: str, request: dict[str, Any], from_function: bool, environ: dict[str, Any]
    ) -> str | None:
        if from_function and self._draws.below(self.plan.sqs_throttle):
            return SQS_THROTTLED
        if operation == "DeleteMessageBatch":
            return self._per_call(environ, DELETE_FAILED, self.plan.sqs_delete)
        if not from_function:
            return None
        if operation == "ChangeMessageVisibilityBatch":
            return self._per_call(environ, VISIBILITY_FAILED, self.plan.sqs_change_visibility) or (
                self._per_call(environ, RECEIPT_EXPIRED, self.plan.sqs_expired_receipt)
            )
        if operation == "SendMessage" and _queue_name(request.get("QueueUrl")) == _queue_name(
            self.dead_letter_queue_url
        ):
            return self._per_call(environ, DLQ_SEND_FAILED, self.plan.sqs_dlq_send)
        return None

    def _per_call(self, environ: dict[str, Any], kind: str, fraction: float) -> str | None:
        """Decided once per SDK call, so that the SDK's retries of it fail too; the retries are
        marked so that a call is recorded once, not once per attempt."""
        invocation = str(environ.get("HTTP_AMZ_SDK_INVOCATION_ID", "")) or None
        with self._lock:
            if invocation is not None and (invocation, kind) in self._decided:
                fault = self._decided[invocation, kind]
                environ["local.fault_retry"] = fault is not None
                return fault
            fault = kind if self._draws.below(fraction) else None
            if invocation is not None:
                self._decided[invocation, kind] = fault
            return fault

    def _record(self, fault: str, request: dict[str, Any]) -> None:
        receipts: list[str | None] = [
            str(e["ReceiptHandle"]) for e in request.get("Entries", []) if "ReceiptHandle" in e
        ]
        self.log.record_each(fault, receipt_handles=receipts or [None])

    def _refuse(
        self, fault: str, request: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        entries = request.get("Entries", [])
        if fault == RECEIPT_EXPIRED:
            # The call succeeds; every entry is refused, as SQS refuses an expired handle.
            document: dict[str, Any] = {
                "Successful": [],
                "Failed": [
                    {
                        "Id": entry["Id"],
                        "SenderFault": True,
                        "Code": "ReceiptHandleIsInvalid",
                        "Message": "The receipt handle has expired.",
                    }
                    for entry in entries
                ],
            }
            return _respond(start_response, "200 OK", document)
        if fault == SQS_THROTTLED:
            return _error(start_response, "400 Bad Request", "RequestThrottled", "Sender")
        # A service-side failure: the SDK retries it, and each retry of this call fails too.
        return _error(start_response, "500 Internal Server Error", "InternalError", "Receiver")

    def _recording_visibility(
        self,
        app: WsgiApp,
        request: dict[str, Any],
        environ: dict[str, Any],
        start_response: Callable[..., Any],
    ) -> Iterable[bytes]:
        captured: dict[str, Any] = {}
        # The entries are applied one by one, each after the emulator's lock, and the response
        # comes back later still: what bounds the message's return is the request's arrival.
        arrived = time.monotonic()

        def capture(status: str, headers: Any, *args: Any) -> Any:
            captured["status"] = status
            return start_response(status, headers, *args)

        chunks = list(app(environ, capture))
        if str(captured.get("status", "")).startswith("200"):
            response = json.loads(b"".join(chunks) or b"{}")
            done = {entry["Id"] for entry in response.get("Successful", [])}
            self.log.record_visibility(
                (
                    (str(entry["ReceiptHandle"]), int(entry["VisibilityTimeout"]))
                    for entry in request.get("Entries", [])
                    if entry["Id"] in done
                ),
                arrived,
            )
        return chunks


def _queue_name(queue_url: object) -> str:
    # The function's DEAD_LETTER_QUEUE_URL and the stack output may differ in host, never in
    # the queue's name.
    return str(queue_url or "").rstrip("/").rsplit("/", 1)[-1]


class _Replay:
    """The request body, read once by the fault layer, handed on to the emulator."""

    def __init__(self, body: bytes) -> None:
        self._body = body
        self._position = 0

    def read(self, size: int = -1) -> bytes:
        end = len(self._body) if size is None or size < 0 else self._position + size
        chunk = self._body[self._position : end]
        self._position += len(chunk)
        return chunk

    def readline(self, size: int = -1) -> bytes:
        return self.read(size)


def _respond(
    start_response: Callable[..., Any],
    status: str,
    document: dict[str, Any],
    headers: list[tuple[str, str]] | None = None,
) -> list[bytes]:
    payload = json.dumps(document).encode()
    start_response(
        status,
        [
            ("Content-Type", "application/x-amz-json-1.0"),
            ("Content-Length", str(len(payload))),
            *(headers or []),
        ],
    )
    return [payload]


def _error(start_response: Callable[..., Any], status: str, code: str, fault: str) -> list[bytes]:
    # awsQueryCompatible: the SDK reads the query-era code from x-amzn-query-error.
    return _respond(
        start_response,
        status,
        {"__type": f"com.amazonaws.sqs#{code}", "message": f"injected fault: {code}"},
        [("x-amzn-query-error", f"{code};{fault}")],
    )


class Killable(Protocol):
    def kill(self) -> None: ...


class EnvironmentFaults:
    """Kills execution environments mid-batch and while idle; used by the event source mapping."""

    def __init__(self, plan: FaultPlan, log: FaultLog) -> None:
        self.plan = plan
        self.log = log
        self._draws = _Draws(f"{plan.seed}|environments")
        # message id -> the armed kill watching its batch's downstream calls.
        self._armed: dict[str, _ArmedKill] = {}
        # The environments killed while idle (by identity).
        self._killed_idle: set[int] = set()
        self._lock = threading.Lock()

    def arm(self, message_ids: tuple[str, ...], environment: Killable) -> _ArmedKill | None:
        """Maybe arm a kill of `environment` after some of this batch's downstream calls."""
        if not self._draws.below(self.plan.kill_mid_batch):
            return None
        armed = _ArmedKill(message_ids, environment, self._draws.integer(1, len(message_ids)))
        with self._lock:
            for message_id in message_ids:
                self._armed[message_id] = armed
        return armed

    def disarm(self, armed: _ArmedKill | None) -> bool:
        """Forget the kill; True if it had fired."""
        if armed is None:
            return False
        with self._lock:
            for message_id in armed.message_ids:
                if self._armed.get(message_id) is armed:
                    del self._armed[message_id]
        return armed.fired

    def fire(self, armed: _ArmedKill) -> None:
        """Kill now (the batch's response has not been returned yet), once."""
        with self._lock:
            if armed.fired:
                return
            armed.fired = True
        self.log.record_each(KILLED_MID_BATCH, message_ids=armed.message_ids)
        armed.environment.kill()

    def on_downstream_call(self, message_id: str | None) -> None:
        """Called by the downstream after it recorded a call, before it answers."""
        if message_id is None:
            return
        with self._lock:
            armed = self._armed.get(message_id)
            if armed is None or armed.fired:
                return
            armed.calls += 1
            due = armed.calls >= armed.after_calls
        if due:
            self.fire(armed)

    def maybe_kill_idle(self, environment: Killable) -> None:
        """After an invocation, maybe kill its environment while it waits for the next one.
        The pool replaces a dead idle environment; a poller that took it at that very moment
        has its invocation fail, as an invocation on a lost sandbox does."""
        if self._draws.below(self.plan.kill_idle):
            self.log.record(KILLED_IDLE)
            with self._lock:
                self._killed_idle.add(id(environment))
            environment.kill()

    def on_crash(self, environment: Killable, message_ids: tuple[str, ...]) -> None:
        """An invocation crashed: if its environment was one killed while idle, the kill
        landed after a poller took it, and the batch's messages met that fault."""
        with self._lock:
            hit = id(environment) in self._killed_idle
        if hit:
            self.log.record_each(KILLED_IDLE_DURING_INVOCATION, message_ids=message_ids)


@dataclass
class _ArmedKill:
    message_ids: tuple[str, ...]
    environment: Killable
    after_calls: int
    calls: int = 0
    fired: bool = False
