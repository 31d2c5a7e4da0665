"""A real HTTP downstream on 127.0.0.1 whose answers each test scripts.

A plain HTTP/1.1 server with keep-alive, as real services are, so that tests see the client's
connection reuse; its answers can be slow, trickled, huge or cut off, as hostile ones are.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from local.downstream.demo_downstream import carries_content, simulated_answer

PATH = "/messages"


@dataclass
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"{}"
    # Set to block the request until the test releases it: a downstream that never answers
    # within the client's timeout, without any sleep in the test.
    hold: threading.Event | None = None
    # Write the answer one byte at a time, this many seconds apart (a trickling server).
    trickle_seconds: float = 0.0
    # Close the connection abruptly instead of answering.
    reset: bool = False
    # The service's own processing time before it answers.
    latency_seconds: float = 0.0
    # The status line's reason phrase (None: the standard one).
    reason: str | None = None


class Downstream:
    """Answers from a script, then `default`; a body's {"simulate": {"status": N}} overrides both.

    The simulate convention is the one the sample events in events/ use; the demo downstream of
    the local system reads it with the same function.
    """

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.script: deque[Answer] = deque()
        # Answers by exact request body, before the script: records delivered concurrently
        # reach the downstream in any order.
        self.by_body: dict[str, Answer] = {}
        self.default = Answer()
        self.requests: list[dict[str, Any]] = []
        self._served_holds: list[Answer] = []
        self._lock = threading.Lock()
        # Requests being served right now, and the most at once so far.
        self.in_flight = 0
        self.most_in_flight = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        # With a TLS context: https, each connection's handshake made as it is accepted.
        self.scheme = "http" if tls is None else "https"
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{self.scheme}://{host!s}:{port}{PATH}"

    @contextmanager
    def serving(self) -> Iterator[Downstream]:
        # A short poll interval: shutdown() waits for it, once per test.
        thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        thread.start()
        try:
            yield self
        finally:
            self.release_all()
            self._server.shutdown()
            self._server.server_close()
            thread.join()

    def release_all(self) -> None:
        with self._lock:
            answers = [*self.script, self.default, *self._served_holds]
        for answer in answers:
            if answer.hold is not None:
                answer.hold.set()

    def answer(self, *answers: Answer) -> None:
        self.script.extend(answers)

    def next_answer(self, request: dict[str, Any]) -> Answer:
        with self._lock:
            if request["body"] in self.by_body:
                answer = self.by_body[request["body"]]
            else:
                answer = self.script.popleft() if self.script else self.default
            simulated = simulated_answer(request["body"])
            if simulated is not None:
                answer = Answer(status=simulated[0], headers=simulated[1])
            # What the client was sent: None when the connection was reset instead. A trickled
            # answer is sent one byte at a time: a client may give up before it has the status.
            # Set before the request is listed: a test reading the list after its client gave
            # up must find them (the list was once appended first, and read in that gap).
            request["answered_status"] = None if answer.reset else answer.status
            request["trickled"] = bool(answer.trickle_seconds)
            self.requests.append(request)
        if answer.hold is not None:
            with self._lock:
                self._served_holds.append(answer)
            answer.hold.wait(timeout=30)
        if answer.latency_seconds:
            # The service's own pace, not a synchronisation of the test.
            time.sleep(answer.latency_seconds)
        return answer

    @contextmanager
    def serving_one(self) -> Iterator[None]:
        with self._lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            yield
        finally:
            with self._lock:
                self.in_flight -= 1


def _handler_for(downstream: Downstream) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in separate writes: with Nagle on, the body waits for the
        # client's delayed ACK (about 40 ms a call on loopback).
        disable_nagle_algorithm = True

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode("utf-8", errors="replace")
            with downstream.serving_one():
                self._answer(body)

        def _answer(self, body: str) -> None:
            answer = downstream.next_answer(
                {
                    "method": self.command,
                    "path": self.path,
                    "headers": dict(self.headers),
                    "body": body,
                    # The client's end of the connection: equal ports mean a reused connection.
                    "client_port": self.client_address[1],
                }
            )
            if answer.reset:
                # SO_LINGER 0: the close sends a TCP reset, not an orderly shutdown.
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
                )
                self.close_connection = True
                return
            head = [f"HTTP/1.1 {answer.status} {answer.reason or _reason(answer.status)}"]
            headers = {"Content-Type": "application/json", **answer.headers}
            headers["Content-Length"] = str(len(answer.body))
            if not carries_content(answer.status):
                # A 204 or 304 ends with its headers (a body would be read as the start of the
                # next answer on the connection, issue 19's flake): as a real server answers.
                headers = dict(answer.headers)
            head += [f"{name}: {value}" for name, value in headers.items()]
            head_bytes = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")
            try:
                if self.command == "HEAD" or not carries_content(answer.status):
                    # A HEAD answer has the headers of the GET it stands for, and no body;
                    # a 204 or 304 has none either.
                    self.wfile.write(head_bytes)
                    return
                if not answer.trickle_seconds:
                    # Two writes, never a copy of the body: the tests measure the client's memory.
                    self.wfile.write(head_bytes)
                    self.wfile.write(answer.body)
                    return
                raw = head_bytes + answer.body
                # The whole answer, status line included, one byte at a time.
                for index in range(len(raw)):
                    self.wfile.write(raw[index : index + 1])
                    self.wfile.flush()
                    # The server's own pace, not a synchronisation of the test.
                    time.sleep(answer.trickle_seconds)
            except (BrokenPipeError, ConnectionResetError):
                # The client gave up on a slow or huge answer: what a good client does.
                self.close_connection = True

        # GET and HEAD: the circuit breaker's probe.
        do_POST = do_PUT = do_PATCH = do_GET = do_HEAD = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass  # every request is recorded in `requests`

    return Handler


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"
