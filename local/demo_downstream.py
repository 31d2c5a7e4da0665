"""The demo downstream: an HTTP service on 127.0.0.1 that records every request and fails on demand.

Failure injection lives here and in the emulator only, never in the function. Each request is
answered, in this order of precedence:
- as its body asks: {"simulate": {"status": N, "retryAfter": S}} (the sample events use this);
- 503 during the outage, the first `outage_seconds` after the service started;
- 503 with probability `failure_rate`, drawn from (seed, body, attempt number), so a seed gives
  every message the same fate whatever order concurrent environments call in;
- 200 otherwise, after `latency_ms` in every case.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PATH = "/messages"
OUTAGE_STATUS = 503


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
    def __init__(self, plan: FailurePlan) -> None:
        self.plan = plan
        self._calls: list[Call] = []
        self._attempts: Counter[tuple[str | None, str]] = Counter()
        self._lock = threading.Lock()
        self._started_at = time.monotonic()
        self._server = _Server(("127.0.0.1", 0), _handler_for(self))

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}{PATH}"

    def calls(self) -> list[Call]:
        with self._lock:
            return list(self._calls)

    def status_counts(self) -> Counter[int]:
        return Counter(call.status for call in self.calls())

    def answer(self, key: str | None, body: str) -> tuple[int, dict[str, str]]:
        received_at = time.monotonic()
        with self._lock:
            self._attempts[key, body] += 1
            attempt = self._attempts[key, body]
            status, headers, reason = self._decide(body, attempt, received_at)
            self._calls.append(Call(key, body, attempt, status, received_at, reason))
        return status, headers

    def _decide(self, body: str, attempt: int, now: float) -> tuple[int, dict[str, str], str]:
        simulated = simulated_answer(body)
        if simulated is not None:
            return simulated[0], simulated[1], "simulated"
        if now - self._started_at < self.plan.outage_seconds:
            return OUTAGE_STATUS, {}, "outage"
        if self.plan.draws_failure(body, attempt):
            return OUTAGE_STATUS, {}, "failure-rate"
        return 200, {}, "ok"

    @contextmanager
    def serving(self) -> Iterator[DemoDownstream]:
        self._started_at = time.monotonic()
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


def _handler_for(downstream: DemoDownstream) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in separate writes: with Nagle on, the body waits for the
        # client's delayed ACK (about 40 ms a call on loopback).
        disable_nagle_algorithm = True

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode("utf-8", errors="replace")
            status, headers = downstream.answer(self.headers.get("Idempotency-Key"), body)
            # The service's own processing time, not a synchronisation.
            time.sleep(downstream.plan.latency_ms / 1000)
            reply = json.dumps({"status": status}).encode()
            self.send_response(status)
            for name, value in {**headers, "Content-Type": "application/json"}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        do_POST = do_PUT = do_PATCH = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass  # every request is recorded in calls(); no access log on the terminal

    return Handler
