"""The embedded AWS emulator: moto's server, in this process, on 127.0.0.1.

Two things of moto are adjusted while it runs, each because it would make the emulator behave
unlike AWS, never to change what the consumer sees:

- moto's SQS backend is not thread-safe (DeleteMessage rebuilds a queue's message list, so two
  concurrent deletes, or a delete during a redrive, can bring a deleted message back). Its
  operations are serialised; a long poll releases the lock while it waits, as SQS would not
  block other callers during a ReceiveMessage wait.
- moto's SQS hands messages straight to its own Lambda emulation (through Docker) when a queue
  has an event source mapping. That hook is detached: the local event source mapping is the only
  poller, as Lambda's is in AWS. The mapping itself stays deployed and readable.
- moto stamps an event source mapping's LastModified with time.mktime of UTC's clock: seconds
  since the epoch only where local time is UTC, hours off elsewhere. The circuit breaker's probe
  reads it (a half-open mapping closes when quiet long enough), so the emulator answers the
  instant moto meant.

And some of moto's SQS bookkeeping is made cheaper, with the same results (see
_indexed_sqs_backend): moto walks a queue's whole message list, reading the clock twice per
message, several times in every call, which made the emulator, not the function, the local
system's limit at a few dozen messages a second.
"""

from __future__ import annotations

import calendar
import functools
import inspect
import json
import logging
import math
import os
import threading
import time
import urllib.request
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config as BotoConfig
from moto.awslambda.models import EventSourceMapping
from moto.backends import get_backend
from moto.cloudformation import models as cloudformation_models
from moto.core.utils import camelcase_to_underscores
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from moto.server import ThreadedMotoServer
from moto.sqs import models as sqs_models
from moto.sqs.exceptions import InvalidParameterValue, ReceiptHandleIsInvalid, SQSException
from moto.sqs.models import Message, Queue, SQSBackend
from werkzeug.serving import make_server

from local.aws.control_plane import BOOKKEEPING_HEADER
from local.aws.intrinsics import stable_stack_uuid
from local.aws.message_move_tasks import message_move_tasks

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"
# Credentials that can only ever reach the emulator: a user's real ones are never sent to it.
EMULATOR_CREDENTIALS = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}


@dataclass(frozen=True)
class Emulator:
    endpoint_url: str
    region: str = REGION

    def client(self, service: str, config: BotoConfig | None = None) -> Any:
        session = boto3.session.Session(
            aws_access_key_id=EMULATOR_CREDENTIALS["aws_access_key_id"],
            aws_secret_access_key=EMULATOR_CREDENTIALS["aws_secret_access_key"],
            region_name=self.region,
        )
        client: Any = session.client(service, endpoint_url=self.endpoint_url, config=config)  # type: ignore[call-overload]
        return client

    def own_client(self, service: str, config: BotoConfig | None = None) -> Any:
        """A client for the local system's own bookkeeping (reading the mapping for the pollers,
        the deploy's reads): its Lambda requests say so, and spend none of the account's
        control-plane budget (local.aws.control_plane)."""
        client = self.client(service, config)

        def mark(request: Any, **_: Any) -> None:
            request.headers[BOOKKEEPING_HEADER] = "true"

        client.meta.events.register("before-sign", mark)
        return client

    def message_ids_on_queue(self, queue_url: str) -> set[str]:
        """Ids of every message the queue holds, visible, delayed or in flight.

        Read from the emulator's own state: SQS has no API that lists in-flight messages, and
        the reconciliation must tell a message still on its queue (unfinished) from a lost one.
        """
        name = queue_url.rstrip("/").rsplit("/", 1)[-1]
        queue = get_backend("sqs")[ACCOUNT_ID][self.region].get_queue(name)
        _expire(queue)
        return {message.id for message in list(queue._messages)}

    def detach_builtin_sqs_pollers(self) -> int:
        """Detach moto's own SQS-to-Lambda hook from every queue; return how many were attached."""
        detached = 0
        for queue in get_backend("sqs")[ACCOUNT_ID][self.region].queues.values():
            detached += len(queue.lambda_event_source_mappings)
            queue.lambda_event_source_mappings.clear()
        return detached


def endpoint_override_note() -> str | None:
    """Why an AWS_ENDPOINT_URL in the caller's environment is not used, if one is set.

    The local system's fixes to the emulator (see above) only apply in this process, so it
    always deploys into its own embedded emulator; the SDK inside the function gets that
    emulator's URL as AWS_ENDPOINT_URL instead.
    """
    configured = os.environ.get("AWS_ENDPOINT_URL")
    if not configured:
        return None
    return f"AWS_ENDPOINT_URL={configured} is not used: this runs against its embedded emulator"


WsgiLayer = Callable[[Any], Any]


class _LayeredMotoServer(ThreadedMotoServer):
    """moto's threaded server with a WSGI layer in front of its application (fault injection)."""

    def __init__(self, layer: WsgiLayer, port: int) -> None:
        super().__init__(ip_address="127.0.0.1", port=port, verbose=False)
        self._layer = layer

    def _server_entry(self) -> None:
        app = self._layer(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(
            self._ip_address, self._port, app, True, request_handler=MotoRequestHandler
        )
        self._server_ready_event.set()
        self._server.serve_forever()


@contextmanager
def running_emulator(port: int = 0, layer: WsgiLayer | None = None) -> Iterator[Emulator]:
    """Start moto's server on 127.0.0.1 (a free port unless given); stop it on exit.

    `layer` wraps moto's WSGI application: the local system injects SQS API faults there.
    """
    # moto logs each request and warns of each resource type its CloudFormation skips; the
    # deploy step reports the skipped ones itself.
    for name in ("werkzeug", "moto"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message="Tried to parse .* not supported by moto")
    with (
        _steady_sqs_clock(),
        _indexed_sqs_backend(),
        _serialised_sqs_backend(),
        _mapping_last_modified_in_utc(),
        message_move_tasks(),
        _stable_stack_ids(),
    ):
        server = (
            _LayeredMotoServer(layer, port)
            if layer is not None
            else ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        )
        server.start()
        try:
            host, bound_port = server.get_host_and_port()
            endpoint_url = f"http://{host}:{bound_port}"
            # moto's backends live in this process, beyond one server: start from nothing, so
            # that a second run in the same process (the tests) deploys into an empty account.
            urllib.request.urlopen(
                urllib.request.Request(f"{endpoint_url}/moto-api/reset", method="POST")
            ).close()
            yield Emulator(endpoint_url=endpoint_url)
        finally:
            server.stop()


@contextmanager
def _steady_sqs_clock() -> Iterator[None]:
    """moto's SQS on the steady clock (steady_unix_time): visibility timeouts, delays and
    retention as SQS counts them, whatever the wall clock does meanwhile."""
    originals = (sqs_models.unix_time, sqs_models.unix_time_millis)  # type: ignore[attr-defined]
    setattr(sqs_models, "unix_time", steady_unix_time)  # noqa: B010
    setattr(sqs_models, "unix_time_millis", steady_unix_time_millis)  # noqa: B010
    try:
        yield
    finally:
        setattr(sqs_models, "unix_time", originals[0])  # noqa: B010
        setattr(sqs_models, "unix_time_millis", originals[1])  # noqa: B010


@contextmanager
def _stable_stack_ids() -> Iterator[None]:
    """A stack's id the same in every run: derived from its account, region and name instead of
    random. The template names the source queue after the stack's id (docs/deploy-safety.md), so
    `make up`'s queue URLs stay the same from one start to the next, as a script pasted from the
    README expects. In AWS the id is random, and the queue's name with it."""
    original = cloudformation_models.generate_stack_id  # type: ignore[attr-defined]

    def generate_stack_id(stack_name: str, region: str, account: str) -> str:
        stable = stable_stack_uuid(stack_name, region, account)
        return original(stack_name, region, account).rsplit("/", 1)[0] + f"/{stable}"

    setattr(cloudformation_models, "generate_stack_id", generate_stack_id)  # noqa: B010
    try:
        yield
    finally:
        setattr(cloudformation_models, "generate_stack_id", original)  # noqa: B010


@contextmanager
def _mapping_last_modified_in_utc() -> Iterator[None]:
    """LastModified as seconds since the epoch, wherever the emulator runs. moto computes
    time.mktime(utcnow().timetuple()), which reads UTC's wall time as local time; localtime
    undoes mktime, and calendar.timegm reads that wall time as UTC, as moto meant."""
    original = EventSourceMapping.get_configuration

    def get_configuration(mapping: EventSourceMapping) -> dict[str, Any]:
        configuration = original(mapping)
        stamp = configuration.get("LastModified")
        if isinstance(stamp, int | float):
            configuration["LastModified"] = calendar.timegm(time.localtime(stamp))
        return configuration

    setattr(EventSourceMapping, "get_configuration", get_configuration)  # noqa: B010
    try:
        yield
    finally:
        setattr(EventSourceMapping, "get_configuration", original)  # noqa: B010


class _OwnedLock:
    """A reentrant lock that can be let go entirely while its owner waits, then taken back."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._local = threading.local()

    def _depth(self) -> int:
        return int(getattr(self._local, "depth", 0))

    def acquire(self) -> None:
        if self._depth() == 0:
            self._lock.acquire()
        self._local.depth = self._depth() + 1

    def release(self) -> None:
        self._local.depth = self._depth() - 1
        if self._local.depth == 0:
            self._lock.release()

    @contextmanager
    def released(self) -> Iterator[None]:
        depth = self._depth()
        if depth:
            self._local.depth = 0
            self._lock.release()
        try:
            yield
        finally:
            if depth:
                self._lock.acquire()
                self._local.depth = depth


@contextmanager
def _serialised_sqs_backend() -> Iterator[None]:
    lock = _OwnedLock()
    originals: dict[tuple[type, str], Callable[..., Any]] = {}

    def serialised(method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def call(*args: Any, **kwargs: Any) -> Any:
            lock.acquire()
            try:
                return method(*args, **kwargs)
            finally:
                lock.release()

        return call

    original_wait = Queue.wait_for_messages

    def wait_for_messages(queue: Queue, timeout: int) -> None:
        with lock.released():
            original_wait(queue, timeout)

    original_receive = SQSBackend.receive_message

    def receive_message(
        backend: SQSBackend,
        queue_name: str,
        count: int,
        wait_seconds_timeout: int,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        queue = backend.get_queue(queue_name)
        if not queue.fifo_queue:
            return original_receive(
                backend, queue_name, count, wait_seconds_timeout, *args, **kwargs
            )
        # A FIFO message group is blocked while a message of it is in flight. moto keeps a
        # message "in flight" until a receive walks past it visible again, and decides which
        # groups are blocked once per long poll: when a group's messages come back visible
        # together it releases the last of them, not the first, out of order. SQS releases them
        # when their visibility ends: so here, before every look at the queue.
        deadline = time.monotonic() + wait_seconds_timeout
        while True:
            queue.pending_messages.difference_update(
                [message for message in queue.pending_messages if message.visible]
            )
            received = original_receive(backend, queue_name, count, 0, *args, **kwargs)
            remaining = deadline - time.monotonic()
            if received or remaining <= 0:
                return received
            # Visible messages of a blocked group would wake moto's wait at once: poll instead,
            # letting other calls in meanwhile.
            with lock.released():
                time.sleep(min(remaining, 0.2))

    setattr(SQSBackend, "receive_message", receive_message)  # noqa: B010
    for name, member in vars(SQSBackend).items():
        # Plain functions only: static and class methods keep their binding untouched.
        if inspect.isfunction(member) and not name.startswith("_"):
            originals[(SQSBackend, name)] = (
                original_receive if member is receive_message else member
            )
            setattr(SQSBackend, name, serialised(member))
    originals[(Queue, "wait_for_messages")] = original_wait
    setattr(Queue, "wait_for_messages", wait_for_messages)  # noqa: B010
    try:
        yield
    finally:
        for (owner, name), member in originals.items():
            setattr(owner, name, member)


# moto's own members, as imported: the cheaper versions below fall back on them.
_MOTO_MARK_RECEIVED = Message.mark_received
_MOTO_DELETE = Queue.delete_message
_MOTO_GET_QUEUE_ATTRIBUTES = SQSBackend.get_queue_attributes
_MOTO_CHANGE_VISIBILITY = SQSBackend.change_message_visibility
_ATTRIBUTE_NAMES = {
    name: camelcase_to_underscores(name)
    for name in (*Queue.BASE_ATTRIBUTES, *Queue.FIFO_ATTRIBUTES, *Queue.KMS_ATTRIBUTES)
}
_COUNT_ATTRIBUTES = {
    "ApproximateNumberOfMessages": 0,
    "ApproximateNumberOfMessagesNotVisible": 1,
    "ApproximateNumberOfMessagesDelayed": 2,
}
# Every receipt handle issued while the emulator runs -> its message (dropped when deleted).
_RECEIPT_HANDLES: dict[str, Message] = {}
# Ids of the messages expired at their queue's retention while the emulator runs.
_EXPIRED: list[str] = []
# Receipt handle -> when the emulator handed it out (monotonic seconds): the moment the message's
# visibility timeout started, which a poller only learns a little later, when its answer is back.
_RECEIVED_AT: dict[str, float] = {}

# SQS keeps time on its own servers: a step of the client host's wall clock (an NTP step, a
# virtual machine's clock set again after a pause) shortens no visibility timeout in AWS. moto
# counts visibility, delays and retention on the wall clock (datetime.utcnow), the runner and its
# checks on the monotonic clock: a step of +1 s brought hidden messages back 1 s early by the
# monotonic clock (docs/soak.md). The emulator's SQS counts on a steady clock instead: the wall
# clock's reading when this module was loaded, advanced by the monotonic clock since.
_monotonic = time.monotonic
_STEADY_WALL_ANCHOR = time.time()
_STEADY_MONOTONIC_ANCHOR = _monotonic()


def steady_unix_time() -> float:
    """Seconds since the epoch by the emulator's SQS clock: no step of the wall clock moves it."""
    return _STEADY_WALL_ANCHOR + (_monotonic() - _STEADY_MONOTONIC_ANCHOR)


def steady_unix_time_millis() -> float:
    return steady_unix_time() * 1000.0


def received_at(receipt_handle: str) -> float | None:
    """When the emulator handed out this receipt handle (monotonic seconds), if it did."""
    return _RECEIVED_AT.get(receipt_handle)


def _mark_received(message: Message, visibility_timeout: int | None = None) -> None:
    # Read before moto starts the timeout: on a loaded machine this thread can wait a few tenths
    # of a second between the two, and a hand-out recorded after the start would make a receive
    # at the timeout's end look early (a soak under two CI runs saw 0.3 s). Read before, the
    # checks' end of the timeout is never later than SQS's.
    handed_out = _monotonic()
    _MOTO_MARK_RECEIVED(message, visibility_timeout)
    if message.receipt_handle is not None:
        _RECEIPT_HANDLES[message.receipt_handle] = message
        _RECEIVED_AT[message.receipt_handle] = handed_out


def _counts(queue: Queue) -> tuple[int, int, int]:
    """(visible and not delayed, not visible, delayed), all at one instant."""
    _expire(queue)
    now = steady_unix_time_millis()
    visible = not_visible = delayed = 0
    for message in queue._messages:
        is_delayed = now < message.delayed_until
        if now > message.visible_at:
            visible += not is_delayed
        else:
            not_visible += 1
        delayed += is_delayed
    return visible, not_visible, delayed


def _expire(queue: Queue) -> None:
    """Remove the messages older than the queue's MessageRetentionPeriod, as SQS deletes them
    (counted from the first enqueue). moto only looks at retention inside a receive, and there
    marks the expired message received and keeps it: a disabled mapping never receives, so
    without this nothing would ever expire."""
    retention_ms = int(queue.message_retention_period) * 1000  # type: ignore[attr-defined]
    now = steady_unix_time_millis()
    expired = [
        m
        for m in queue._messages
        if m.sent_timestamp is not None and now >= int(m.sent_timestamp) + retention_ms
    ]
    for message in expired:
        queue._messages.remove(message)
        queue.pending_messages.discard(message)
        for handle in message.all_receipt_handles:
            _RECEIPT_HANDLES.pop(handle or "", None)
        _EXPIRED.append(message.id)


def expired_message_ids() -> list[str]:
    """Ids of the messages the emulator's queues expired at their retention, oldest first."""
    return list(_EXPIRED)


def _visible_messages(queue: Queue) -> list[Message]:
    _expire(queue)
    now = steady_unix_time_millis()
    return [m for m in queue._messages if now > m.visible_at and not now < m.delayed_until]


def _any_visible(queue: Queue) -> bool:
    now = steady_unix_time_millis()
    return any(now > m.visible_at and not now < m.delayed_until for m in queue._messages)


def _attributes(queue: Queue) -> dict[str, Any]:
    """moto's Queue.attributes, step for step, with the three counts from one pass."""
    counts = _counts(queue)
    names = list(Queue.BASE_ATTRIBUTES)
    if queue.fifo_queue:
        names += Queue.FIFO_ATTRIBUTES
    if queue.kms_master_key_id:  # type: ignore[attr-defined]
        names += Queue.KMS_ATTRIBUTES
    result: dict[str, Any] = {
        name: counts[_COUNT_ATTRIBUTES[name]]
        if name in _COUNT_ATTRIBUTES
        else getattr(queue, _ATTRIBUTE_NAMES[name])
        for name in names
    }
    if queue.policy:
        result["Policy"] = queue.policy
    if queue.redrive_policy:
        result["RedrivePolicy"] = json.dumps(queue.redrive_policy)
    for key, value in result.items():
        if isinstance(value, bool):
            result[key] = str(value).lower()
    return result


def _get_queue_attributes(
    backend: SQSBackend, queue_name: str, attribute_names: list[str]
) -> dict[str, Any]:
    queue = backend.get_queue(queue_name)
    if (
        not attribute_names
        or "All" in attribute_names
        or any(name not in _ATTRIBUTE_NAMES for name in attribute_names)
    ):
        # Nothing asked, everything asked (one build in moto too), or a name moto refuses.
        return _MOTO_GET_QUEUE_ATTRIBUTES(backend, queue_name, attribute_names)
    current = queue.attributes
    return {
        name: current[name]
        for name in attribute_names
        if name in current and current[name] is not None
    }


def _is_message_valid_based_on_retention_period(
    backend: SQSBackend, queue_name: str, message: Message
) -> bool:
    retention_period = backend.get_queue(queue_name).message_retention_period  # type: ignore[attr-defined]
    return bool(retention_period + message.sent_timestamp / 1000 > steady_unix_time())  # type: ignore[operator]


def _indexed(queue: Queue, receipt_handle: str) -> Message | None:
    """The message on `queue` that was given this handle, if the index knows it."""
    message = _RECEIPT_HANDLES.get(receipt_handle)
    # `in` compares by identity: moto's Message defines no equality.
    return message if message is not None and message in queue._messages else None


class StaleReceiptHandle(ReceiptHandleIsInvalid):
    """A receipt handle of an earlier receive of a message that has been received again.

    SQS acts on a message's most recent receipt handle only: a DeleteMessage with an older one
    "succeeds, but the message will not be deleted" (SQS API Reference, DeleteMessage), and a
    visibility change with one is refused, "Message does not exist or is not available for
    visibility timeout change". moto honours every handle a message ever had: an invocation
    that outlived its message's visibility reset the backoff another invocation had just set,
    and the message came back seconds early. A subclass of moto's error so that moto's
    ChangeMessageVisibilityBatch refuses the entry, not the whole call.
    """

    def __init__(self, receipt_handle: str) -> None:
        SQSException.__init__(
            self,
            "InvalidParameterValue",
            f"Value {receipt_handle} for parameter ReceiptHandle is invalid. Reason: Message "
            "does not exist or is not available for visibility timeout change.",
        )


def _stale(message: Message, receipt_handle: str) -> bool:
    return message.receipt_handle != receipt_handle


def _delete_message(queue: Queue, receipt_handle: str) -> None:
    message = _indexed(queue, receipt_handle)
    if message is not None and _stale(message, receipt_handle):
        return
    if message is None or receipt_handle in queue.deleted_messages:
        _MOTO_DELETE(queue, receipt_handle)
        return
    # What moto's walk does to the one message that had this handle.
    queue._messages.remove(message)
    queue.pending_messages.discard(message)
    queue.deleted_messages.update(message.all_receipt_handles)  # type: ignore[arg-type]
    for handle in message.all_receipt_handles:
        _RECEIPT_HANDLES.pop(handle or "", None)


def _change_message_visibility(
    backend: SQSBackend, queue_name: str, receipt_handle: str, visibility_timeout: int
) -> None:
    queue = backend.get_queue(queue_name)
    message = _indexed(queue, receipt_handle)
    if message is None:
        _MOTO_CHANGE_VISIBILITY(backend, queue_name, receipt_handle, visibility_timeout)
        return
    if _stale(message, receipt_handle):
        raise StaleReceiptHandle(receipt_handle)
    # moto's change for the one message that has this handle, step for step: SQS's 12 hours
    # (counted from the send, as moto counts them), then the change.
    given_visibility_timeout = steady_unix_time_millis() + int(visibility_timeout) * 1000
    if given_visibility_timeout - message.sent_timestamp > 43200 * 1000:  # type: ignore[operator]
        raise InvalidParameterValue(
            f"Value {visibility_timeout} for parameter VisibilityTimeout is invalid. Reason: "
            "Total VisibilityTimeout for the message is beyond the limit [43200 seconds]"
        )
    message.change_visibility(visibility_timeout)
    if message.visible and message in queue.pending_messages:
        queue.pending_messages.remove(message)


def _wait_for_messages(queue: Queue, timeout: int) -> None:
    # moto's wait, woken by every send, lists every visible message to learn whether there is one,
    # and otherwise sleeps out its whole timeout (a second per turn of a long poll), even when a
    # hidden or delayed message becomes visible sooner: a redelivery came up to a second late.
    # Here the wait also ends when the first such message is due: SQS's ReceiveMessage returns
    # sooner than WaitTimeSeconds as soon as a message is available (Amazon SQS API Reference,
    # ReceiveMessage, WaitTimeSeconds).
    with queue._messages_lock:
        queue._messages_lock.wait_for(
            lambda: _any_visible(queue), timeout=min(timeout, _seconds_until_due(queue))
        )


def _seconds_until_due(queue: Queue) -> float:
    """Seconds until the first hidden or delayed message becomes visible (a millisecond past it:
    a message is visible once the clock is strictly past its visible_at); inf if none."""
    now = steady_unix_time_millis()
    due = [
        due_at
        for due_at in (max(m.visible_at, m.delayed_until) for m in queue._messages)
        if due_at >= now
    ]
    return (min(due) - now) / 1000 + 0.001 if due else math.inf


@contextmanager
def _indexed_sqs_backend() -> Iterator[None]:
    """moto's SQS with the same answers at a fraction of the cost; none of these changes what a
    caller can observe. moto walks a queue's whole message list several times in each call,
    reading the clock (through datetime) twice per message:

    - The counts and the visible messages: one clock reading serves a whole pass, and the three
      counts come from one pass (a message is visible once the clock is past its visible_at,
      delayed while the clock is before its delayed_until, as in moto).
    - GetQueueAttributes with a list of names builds every attribute (each count a walk) twice
      per name asked: here once. Attribute names are converted once, not per call.
    - The retention of each received message was checked through GetQueueAttributes (every
      attribute, every count): here the queue's MessageRetentionPeriod, the value it returns.
    - DeleteMessage and ChangeMessageVisibility find a receipt handle by walking the queue and
      building each message's list of handles: here an index of the handles issued names the
      message, used only if it is still on that queue. A handle the index does not place (never
      issued, or its message gone) gets moto's own walk and answer (ReceiptHandleIsInvalid, or
      an already-deleted handle accepted).
    - A long poll's wake-up test lists every visible message: here it stops at the first. Its
      wait also ends when the first hidden or delayed message is due, not a second later.
    """
    replacements: list[tuple[type, str, Any]] = [
        (Message, "mark_received", _mark_received),
        (Queue, "messages", property(_visible_messages)),
        (Queue, "approximate_number_of_messages", property(lambda q: _counts(q)[0])),
        (Queue, "approximate_number_of_messages_not_visible", property(lambda q: _counts(q)[1])),
        (Queue, "approximate_number_of_messages_delayed", property(lambda q: _counts(q)[2])),
        (Queue, "attributes", property(_attributes)),
        (Queue, "delete_message", _delete_message),
        (Queue, "wait_for_messages", _wait_for_messages),
        (SQSBackend, "get_queue_attributes", _get_queue_attributes),
        (SQSBackend, "change_message_visibility", _change_message_visibility),
        (
            SQSBackend,
            "is_message_valid_based_on_retention_period",
            _is_message_valid_based_on_retention_period,
        ),
    ]
    originals = [(owner, name, vars(owner)[name]) for owner, name, _ in replacements]
    for owner, name, member in replacements:
        setattr(owner, name, member)
    try:
        yield
    finally:
        for owner, name, member in originals:
            setattr(owner, name, member)
        _RECEIPT_HANDLES.clear()
        _EXPIRED.clear()
