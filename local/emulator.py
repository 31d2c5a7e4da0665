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
"""

from __future__ import annotations

import functools
import inspect
import logging
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
from moto.backends import get_backend
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from moto.server import ThreadedMotoServer
from moto.sqs.models import Queue, SQSBackend
from werkzeug.serving import make_server

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

    def message_ids_on_queue(self, queue_url: str) -> set[str]:
        """Ids of every message the queue holds, visible, delayed or in flight.

        Read from the emulator's own state: SQS has no API that lists in-flight messages, and
        the reconciliation must tell a message still on its queue (unfinished) from a lost one.
        """
        name = queue_url.rstrip("/").rsplit("/", 1)[-1]
        queue = get_backend("sqs")[ACCOUNT_ID][self.region].get_queue(name)
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
    with _serialised_sqs_backend():
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
