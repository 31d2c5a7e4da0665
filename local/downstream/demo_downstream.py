"""The demo downstream: an HTTP service on 127.0.0.1 that records every request and fails on demand.

Failure injection lives here and in the emulator only, never in the function. Each request is
answered, in this order of precedence:
- as its body asks: {"simulate": {"status": N, "retryAfter": S}} (the sample events use this);
- 503 during the outage, the first `outage_seconds` after the first request arrived (counted
  from the first delivery, so that a slow start, a cold start or a long send, does not use the
  outage up before any message meets it);
- an injected fault (see faults), drawn the same way: a read timeout or an answer slower
  than the function timeout (the call is processed, 200, but answered too late for the
  function to see it), a connection reset (closed before processing), 429 with Retry-After, 5xx;
- 503 with probability `failure_rate`, drawn from (seed, body, attempt number), so a seed gives
  every message the same fate whatever order concurrent environments call in;
- 200 otherwise, after `latency_ms` in every case.

A HEAD request is the circuit breaker's probe (a HEAD to DownstreamUrl when BreakerProbeUrl is
empty), and so is a GET of the health path (`probe_path`, the local run's BreakerProbeUrl):
503 during the outage, 200 otherwise; with `probe_fault_status` the health path answers that
status whatever the outage (`make run RUN_ARGS="--probe-fault 404"`: a probe URL that is wrong,
which must never keep the breaker open for good). Probes are recorded apart from the calls,
which are the messages' deliveries the reconciliation counts.
"""

from __future__ import annotations

import json
import random
import socket
import struct
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from local.downstream.faults import (
    BEYOND_FUNCTION_TIMEOUT,
    READ_TIMEOUT,
    RESET,
    SERVER_ERROR,
    THROTTLED_429,
    FaultLog,
    FaultPlan,
)

PATH = "/messages"
OUTAGE_STATUS = 503
# Status recorded for a call whose connection was reset before it was processed.
RESET_STATUS = 0
SERVER_ERROR_STATUSES = (500, 502, 503, 504)


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    # Extra seconds before answering, beyond the latency.
    delay_seconds: float = 0.0
    # Close the connection with a reset instead of answering.
    reset: bool = False


@dataclass(frozen=True)
class SlowAnswers:
    """How late the injected slow answers come: past the function's read timeout, or past the
    function timeout itself."""

    read_timeout_seconds: float = 10.0
    function_timeout_seconds: float = 60.0


@dataclass(frozen=True)
class FailurePlan:
    failure_rate: float = 0.0
    outage_seconds: float = 0.0
    latency_ms: int = 0
    seed: str = "0"

    def draws_failure(self, body: str, attempt: int) -> bool:
        """The failure-rate draw for the `attempt`-th call carrying `body` (1-based)."""
        return random.Random(f"{self.seed}|{attempt}|{body}").random() < self.failure_rate


@dataclass(frozen=True)
class Call:
    idempotency_key: str | None
    body: str
    attempt: int
    status: int
    # Seconds on the monotonic clock when the request arrived.
    received_at: float
    reason: str


INJECTED = frozenset({READ_TIMEOUT, BEYOND_FUNCTION_TIMEOUT, RESET, THROTTLED_429, SERVER_ERROR})


def carries_content(status: int) -> bool:
    """Whether an answer with this status may have content. RFC 9110 (sections 6.4.1 and
    15.3.5): a 204 or 304 answer ends with its header section, whatever its headers say, and a
    204 has no Content-Length. A client reads no body after one, so a server that sends one
    anyway leaves it on the connection, where the client reads it as the start of its next
    answer (a BadStatusLine, when the bytes arrive after the pool's check for a readable idle
    connection)."""
    return status not in (204, 304) and not 100 <= status <= 199


def simulated_answer(body: str) -> tuple[int, dict[str, str]] | None:
    """(status, headers) a body asks for with {"simulate": {...}}, or None."""
    try:
        document = json.loads(body)
    except ValueError:
        return None
    simulate = document.get("simulate") if isinstance(document, dict) else None
    if not isinstance(simulate, dict):
        return None
    headers = {}
    if "retryAfter" in simulate:
        headers["Retry-After"] = str(simulate["retryAfter"])
    return int(simulate.get("status", 200)), headers


class DemoDownstream:
    def __init__(
        self,
        plan: FailurePlan,
        faults: FaultPlan | None = None,
        fault_log: FaultLog | None = None,
        slow: SlowAnswers | None = None,
        *,
        probe_path: str = "/health",
        probe_fault_status: int | None = None,
    ) -> None:
        self.plan = plan
        self.probe_path = probe_path
        self.probe_fault_status = probe_fault_status
        self.faults = faults or FaultPlan()
        self.fault_log = fault_log or FaultLog()
        self.slow = slow or SlowAnswers()
        # Called with the Idempotency-Key of every call once it is recorded, before the answer.
        self.call_observers: list[Callable[[str | None], None]] = []
        self._calls: list[Call] = []
        # (monotonic seconds, status) of every HEAD probe.
        self._probes: list[tuple[float, int]] = []
        self._attempts: Counter[tuple[str | None, str]] = Counter()
        self._lock = threading.Lock()
        # When the first request arrived: the outage counts from there.
        self._first_call_at: float | None = None
        self._server = _Server(("127.0.0.1", 0), _handler_for(self))

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}{PATH}"

    @property
    def probe_url(self) -> str:
        """The health check's URL: the breaker's probe URL in a local run."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}{self.probe_path}"

    def calls(self) -> list[Call]:
        with self._lock:
            return list(self._calls)

    def probes(self) -> list[tuple[float, int]]:
        with self._lock:
            return list(self._probes)

    def probe_answer(self, *, health_path: bool = False) -> int:
        """The status of a probe: the outage's 503 while it lasts (it has not begun before
        the first call), else 200; on the health path, the injected fault's status if any."""
        now = time.monotonic()
        with self._lock:
            first = self._first_call_at
            status = (
                OUTAGE_STATUS
                if first is not None and now - first < self.plan.outage_seconds
                else 200
            )
            if health_path and self.probe_fault_status is not None:
                status = self.probe_fault_status
            self._probes.append((now, status))
        return status

    def status_counts(self) -> Counter[int]:
        return Counter(call.status for call in self.calls())

    def answer(self, key: str | None, body: str) -> Answer:
        received_at = time.monotonic()
        with self._lock:
            if self._first_call_at is None:
                self._first_call_at = received_at
            self._attempts[key, body] += 1
            attempt = self._attempts[key, body]
            answer, reason = self._decide(key, body, attempt, received_at)
            self._calls.append(Call(key, body, attempt, answer.status, received_at, reason))
        if reason in INJECTED:
            self.fault_log.record(reason, message_id=key)
        for observer in self.call_observers:
            observer(key)
        return answer

    def _decide(self, key: str | None, body: str, attempt: int, now: float) -> tuple[Answer, str]:
        simulated = simulated_answer(body)
        if simulated is not None:
            return Answer(simulated[0], simulated[1]), "simulated"
        first_call_at = now if self._first_call_at is None else self._first_call_at
        if now - first_call_at < self.plan.outage_seconds:
            return Answer(OUTAGE_STATUS, {}), "outage"
        fault = self.faults.downstream_fault(key, body, attempt)
        if fault is not None:
            return self._injected(fault, key, attempt), fault
        if self.plan.draws_failure(body, attempt):
            return Answer(OUTAGE_STATUS, {}), "failure-rate"
        return Answer(200, {}), "ok"

    def _injected(self, fault: str, key: str | None, attempt: int) -> Answer:
        if fault == READ_TIMEOUT:
            # Processed (the side effect happened), answered after the function gave up.
            return Answer(200, {}, delay_seconds=self.slow.read_timeout_seconds + 0.5)
        if fault == BEYOND_FUNCTION_TIMEOUT:
            return Answer(200, {}, delay_seconds=self.slow.function_timeout_seconds + 1)
        if fault == RESET:
            return Answer(RESET_STATUS, {}, reset=True)
        if fault == THROTTLED_429:
            return Answer(429, {"Retry-After": str(self.faults.retry_after_seconds)})
        if fault == SERVER_ERROR:
            draw = random.Random(f"{self.faults.seed}|5xx|{key}|{attempt}")
            return Answer(draw.choice(SERVER_ERROR_STATUSES), {})
        raise ValueError(f"not a downstream fault: {fault}")

    @contextmanager
    def serving(self) -> Iterator[DemoDownstream]:
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()
            thread.join()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog of 5 drops the connections of a burst of concurrent
    # callers (environments, a batch's pool), and a dropped SYN costs the caller a second.
    request_queue_size = 128

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (its read timeout) or a connection reset on purpose: the
        # write fails and there is nobody left to answer. Anything else is a real error.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


def _handler_for(downstream: DemoDownstream) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in separate writes: with Nagle on, the body waits for the
        # client's delayed ACK (about 40 ms a call on loopback).
        disable_nagle_algorithm = True

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode("utf-8", errors="replace")
            answer = downstream.answer(self.headers.get("Idempotency-Key"), body)
            if answer.reset:
                # SO_LINGER 0: close sends a reset, not an orderly end of stream.
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                self.connection.close()
                self.close_connection = True
                return
            # The service's own processing time (and an injected slowness), not a
            # synchronisation.
            time.sleep(downstream.plan.latency_ms / 1000 + answer.delay_seconds)
            self.send_response(answer.status)
            if not carries_content(answer.status):
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                return
            reply = json.dumps({"status": answer.status}).encode()
            for name, value in {**answer.headers, "Content-Type": "application/json"}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        do_POST = do_PUT = do_PATCH = _serve

        def do_HEAD(self) -> None:
            time.sleep(downstream.plan.latency_ms / 1000)  # the service's answer time
            self.send_response(downstream.probe_answer())
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:
            time.sleep(downstream.plan.latency_ms / 1000)  # the service's answer time
            if self.path.split("?", 1)[0] != downstream.probe_path:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = downstream.probe_answer(health_path=True)
            reply = json.dumps({"status": status}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # every request is recorded in calls(); no access log on the terminal

    return Handler
