"""An AWS service a delivery needs that cannot be reached (a VPC without its endpoint): the
authentication secret's read and the idempotency table's calls give up within their budget,
the first failure says so once (one ERROR line naming the endpoint needed, one
DependencyUnreachable count), and the calls of the hold that follows fail without a connection.

The unreachable service is a local socket that accepts each connection and closes it at once,
counting them: what botocore meets when nothing answers on the other side."""

from __future__ import annotations

import io
import logging
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from consumer.delivery import Outcome
from consumer.idempotency import OnceOnly
from local.lambda_service.lambda_context import FakeLambdaContext
from shared import aws_dependencies
from shared.aws_dependencies import CALL_BUDGET_SECONDS, MAX_ATTEMPTS
from shared.downstream import SecretHeader
from shared.errors import IdempotencyUnavailable, SecretUnavailable
from shared.observability import logger

SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:downstream-token-AbCdEf"


class ClosingServer:
    """Accepts connections and closes them unanswered; counts them."""

    def __init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]
        self._lock = threading.Lock()
        self._connections = 0
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def connections(self) -> int:
        with self._lock:
            return self._connections

    def _serve(self) -> None:
        self._socket.settimeout(0.2)
        while not self._stopped.is_set():
            try:
                connection, _ = self._socket.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self._connections += 1
            connection.close()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()
        self._socket.close()


@pytest.fixture
def unreachable(monkeypatch: pytest.MonkeyPatch) -> Iterator[ClosingServer]:
    server = ClosingServer()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{server.port}")
    yield server
    server.stop()


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The metrics counted by the module, in order."""
    seen: list[str] = []
    monkeypatch.setattr(aws_dependencies, "count", lambda metric, value=1: seen.append(str(metric)))
    return seen


class LogLines:
    """The function's log lines, from the logger's own stream (it holds import time's stdout)."""

    def __init__(self) -> None:
        self.stream = io.StringIO()
        self._read = 0

    def new(self) -> list[str]:
        """The lines about an unreachable dependency written since the last call."""
        text = self.stream.getvalue()
        fresh, self._read = text[self._read :], len(text)
        return [line for line in fresh.splitlines() if "dependency unreachable" in line]


@pytest.fixture
def logs() -> Iterator[LogLines]:
    lines = LogLines()
    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    original = handler.setStream(lines.stream)
    yield lines
    handler.setStream(original)


def test_an_unreachable_secret_store_fails_loudly_once_then_fast(
    unreachable: ClosingServer, counted: list[str], logs: LogLines
) -> None:
    # Given the authentication header read from a Secrets Manager that cannot be reached
    header = SecretHeader("Authorization", SECRET_ARN, max_age_seconds=300)
    # When the first delivery needs it
    started = time.monotonic()
    with pytest.raises(SecretUnavailable, match="secretsmanager unreachable"):
        header.headers()
    first_call_seconds = time.monotonic() - started
    # Then it gave up within the budget, after the bounded attempts
    assert first_call_seconds < CALL_BUDGET_SECONDS
    assert unreachable.connections == MAX_ATTEMPTS
    # ...and said so once: one ERROR line naming the endpoint a VPC needs, one metric
    [line] = logs.new()
    assert '"level":"ERROR"' in line
    assert "com.amazonaws.<region>.secretsmanager" in line
    assert counted == ["DependencyUnreachable"]
    # When the next nine deliveries need it during the hold
    for _ in range(9):
        with pytest.raises(SecretUnavailable, match="not tried again"):
            header.headers()
    # Then none of them connected, logged or counted again
    assert unreachable.connections == MAX_ATTEMPTS
    assert logs.new() == []
    assert counted == ["DependencyUnreachable"]


def test_after_the_hold_the_service_is_tried_again_and_the_outage_is_not_counted_twice(
    unreachable: ClosingServer, counted: list[str], logs: LogLines
) -> None:
    # Given a read that found the service unreachable, and a hold that has ended
    header = SecretHeader("Authorization", SECRET_ARN, max_age_seconds=300)
    now = [1000.0]
    header.reachability.clock = lambda: now[0]
    with pytest.raises(SecretUnavailable):
        header.headers()
    now[0] += header.reachability.hold_seconds + 1
    # When the next read comes, still without the service
    with pytest.raises(SecretUnavailable, match="secretsmanager unreachable"):
        header.headers()
    # Then it connected again, and the same outage was neither logged nor counted twice
    assert unreachable.connections == 2 * MAX_ATTEMPTS
    assert len(logs.new()) == 1
    assert counted == ["DependencyUnreachable"]


def test_an_unreachable_idempotency_table_fails_loudly_once_then_fast(
    unreachable: ClosingServer, counted: list[str], logs: LogLines
) -> None:
    # Given idempotent delivery whose DynamoDB table cannot be reached
    once: OnceOnly[Outcome] = OnceOnly("outcomes", "messageId", 3600, Outcome)
    once.register(FakeLambdaContext())  # type: ignore[arg-type]
    attempts: list[str] = []

    def attempt() -> Outcome:
        attempts.append("called")
        return Outcome(status_code=200)

    # When a message is delivered
    started = time.monotonic()
    with pytest.raises(IdempotencyUnavailable, match="dynamodb unreachable"):
        once("m-1", '{"n": 1}', attempt)
    # Then the downstream was not called, the table was given up within the budget, and it
    # was said once, naming the gateway endpoint a VPC needs
    assert attempts == []
    assert time.monotonic() - started < CALL_BUDGET_SECONDS
    [line] = logs.new()
    assert "gateway endpoint com.amazonaws.<region>.dynamodb" in line
    # When the rest of the batch follows during the hold
    connections = unreachable.connections
    for n in range(2, 11):
        with pytest.raises(IdempotencyUnavailable, match="not tried again"):
            once(f"m-{n}", '{"n": 1}', attempt)
    # Then no call reached for the table again, and nothing more was logged or counted
    assert unreachable.connections == connections
    assert attempts == []
    assert logs.new() == []
    assert counted == ["DependencyUnreachable"]


def test_a_refusal_by_the_service_is_not_taken_for_unreachable() -> None:
    # Given an error the service answered (access denied), wrapped as the libraries wrap it
    from botocore.exceptions import ClientError  # noqa: PLC0415

    denied = ClientError({"Error": {"Code": "AccessDeniedException"}}, "GetSecretValue")
    try:
        try:
            raise denied
        except ClientError:
            raise RuntimeError("wrapped") from None
    except RuntimeError as wrapped:
        error = wrapped
    # Then it is not a reachability problem (the hold is for endpoints, not permissions)
    assert aws_dependencies.is_unreachable(error) is False
