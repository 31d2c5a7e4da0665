"""`make up` as a user drives it: started as `python -m local.commands.up` on a free port, talked to
by a real client (boto3 configured from the lines it prints), by `make send ENV=local`, `make
dlq-peek ENV=local` and `make logs`, then stopped with Ctrl-C (SIGINT)."""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import queue
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import boto3
import pytest

from local.commands import up as up_module
from local.commands.system import queue_depth
from local.shared.paths import ROOT

START_LIMIT_SECONDS = 120.0
SETTLE_LIMIT_SECONDS = 60.0
STOP_LIMIT_SECONDS = 60.0
# The last of the ready lines.
LAST_READY_LINE = "make dlq-peek ENV=local"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Up:
    process: subprocess.Popen[str]
    lines: queue.Queue[str | None]
    printed: list[str]
    state_file: Path

    def read_until(self, predicate: Any, limit_seconds: float) -> list[str]:
        """The lines printed until one satisfies `predicate` (or the process ends)."""
        deadline = time.monotonic() + limit_seconds
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"not printed in {limit_seconds:g} s: {self.printed[-20:]}")
            try:
                line = self.lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                return self.printed
            self.printed.append(line)
            if predicate(line):
                return self.printed

    def env(self) -> dict[str, str]:
        """The environment of a tool run beside it: this `make up`'s state file."""
        return {**os.environ, "UP_STATE_FILE": str(self.state_file), "PYTHONPATH": "functions"}


def _pump(stream: Any, lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line.rstrip("\n"))
    lines.put(None)


@contextlib.contextmanager
def started_up(built: Path, work: Path, *flags: str) -> Iterator[Up]:
    """`python -m local.commands.up` on a free port with these flags, once it printed its ready
    lines; killed at the end if still running."""
    state_file = work / "up.json"
    process = subprocess.Popen(
        [
            sys.executable, "-m", "local.commands.up", "--port", str(free_port()), *flags,
            "--state-file", str(state_file),
            "--work-dir", str(work / "work"),
            "--build-dir", str(built),
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": "functions"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_pump, args=(process.stdout, lines), daemon=True).start()
    handle = Up(process, lines, [], state_file)
    try:
        handle.read_until(lambda line: line == LAST_READY_LINE, START_LIMIT_SECONDS)
        yield handle
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def up(built: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    # A retried message waits at least 2 + 30 s: still unfinished when Ctrl-C comes.
    flags = ("--backoff-base", "30", "--max-receive-count", "10")
    with started_up(built, tmp_path_factory.mktemp("up"), *flags) as handle:
        yield handle


def printed_value(printed: list[str], label: str) -> str:
    """The value of a ready line (the last line with that label: `downstream` starts one of the
    deployment's lines too)."""
    line = [line for line in printed if line.startswith(f"{label} ")][-1]
    return line.split(None, 1)[1]


def client_from_export(printed: list[str], service: str) -> Any:
    """A client configured only from the printed `export ...` line, as a shell would be."""
    [export] = [line for line in printed if line.startswith("export ")]
    variables = dict(word.split("=", 1) for word in shlex.split(export)[1:])
    session = boto3.session.Session(
        aws_access_key_id=variables["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=variables["AWS_SECRET_ACCESS_KEY"],
        region_name=variables["AWS_DEFAULT_REGION"],
    )
    return session.client(service, endpoint_url=variables["AWS_ENDPOINT_URL"])  # type: ignore[call-overload]


def wait_for(condition: Any, limit_seconds: float, what: str) -> None:
    deadline = time.monotonic() + limit_seconds
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {limit_seconds:g} s"
        time.sleep(0.2)  # polling an external process's queues, with a deadline


@pytest.mark.slow
def test_clients_outside_are_served_and_ctrl_c_reconciles_them(up: Up) -> None:
    # Given make up is ready and printed its endpoint, queues and the client's environment
    endpoint = printed_value(up.printed, "endpoint")
    source_url = printed_value(up.printed, "source")
    dlq_url = printed_value(up.printed, "dlq")
    assert source_url.startswith(f"{endpoint}/")
    assert dlq_url.startswith(f"{endpoint}/")
    [cli] = [line for line in up.printed if line.startswith("aws --endpoint-url ")]
    # (the endpoint on the line itself: AWS CLI v1 ignores AWS_ENDPOINT_URL)
    assert shlex.split(cli)[1:] == [
        "--endpoint-url", endpoint, "sqs", "send-message",
        "--queue-url", source_url, "--message-body", '{"hello": "world"}',
    ]  # fmt: skip
    state = json.loads(up.state_file.read_text())
    assert state["queues"]["SourceQueueUrl"] == source_url
    sqs = client_from_export(up.printed, "sqs")

    # When a real client sends what the printed CLI line sends, a poison body, and a body
    # the demo downstream answers 503 (retried after 32 s or more), and make send ENV=local 2
    hello = sqs.send_message(QueueUrl=source_url, MessageBody='{"hello": "world"}')["MessageId"]
    poison = sqs.send_message(QueueUrl=source_url, MessageBody="not json")["MessageId"]
    retried = sqs.send_message(QueueUrl=source_url, MessageBody='{"simulate": {"status": 503}}')[
        "MessageId"
    ]
    sent = subprocess.run(
        [sys.executable, "-m", "local.commands.send", "--config-env", "local", "--count", "2"],
        cwd=ROOT, env=up.env(), capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert f"sent 2 of 2 messages to {source_url}" in sent

    # Then the three good ones are delivered, the poison one is dead-lettered and the 503 one waits
    wait_for(
        lambda: queue_depth(sqs, source_url) == (0, 1) and sum(queue_depth(sqs, dlq_url)) == 1,
        SETTLE_LIMIT_SECONDS,
        "four delivered, one dead-lettered, one waiting",
    )
    # And make dlq-peek ENV=local lists the poison one with its reason
    peeked = subprocess.run(
        [sys.executable, "-m", "tools.dlq_peek", "--config-env", "local", "--json"],
        cwd=ROOT, env=up.env(), capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    [letter] = [json.loads(line) for line in peeked.splitlines()]
    assert (letter["sourceId"], letter["reason"]) == (poison, "invalid-json")
    # And make logs keeps the records of one message
    logged = subprocess.run(
        [sys.executable, "-m", "local.commands.logs", "--message-id", hello, "--no-follow"],
        cwd=ROOT, env=up.env(), capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert logged
    assert all(hello in line for line in logged.splitlines())
    # (its batch's delivered line names it among the batch's delivered messages)
    assert any(" - delivered " in line for line in logged.splitlines())

    # When make redrive ENV=local moves the poison one back (a new message, dead-lettered again),
    # without a --limit: it ends after the one the DLQ held
    redriven = subprocess.run(
        [
            sys.executable, "-m", "tools.redrive", "--config-env", "local",
            "--only", "messages", "--method", "copy",
        ],
        cwd=ROOT, env=up.env(), capture_output=True, text=True, check=True, timeout=120,
    ).stdout  # fmt: skip
    assert "moved=1 " in redriven
    assert "moved 1 of the 1 that were in the DLQ when the redrive started" in redriven
    wait_for(
        lambda: queue_depth(sqs, source_url) == (0, 1) and sum(queue_depth(sqs, dlq_url)) == 1,
        SETTLE_LIMIT_SECONDS,
        "the redriven copy dead-lettered again",
    )

    # And Ctrl-C (SIGINT) comes
    up.process.send_signal(signal.SIGINT)
    printed = up.read_until(lambda line: line.startswith("summary: "), STOP_LIMIT_SECONDS)
    status = up.process.wait(timeout=STOP_LIMIT_SECONDS)
    errors = up.process.stderr.read() if up.process.stderr else ""

    # Then the summary counts every message sent from outside, the redriven copy too: the
    # poison one and its copy dead-lettered (the first since redriven), the waiting one
    # unfinished
    summary = dict(re.findall(r"(\w+)=([\d.]+)", printed[-1]))
    counted = ("sent", "delivered", "dead_lettered", "lost", "unfinished")
    assert {key: summary[key] for key in counted} == {
        "sent": "6", "delivered": "3", "dead_lettered": "2", "lost": "0", "unfinished": "1",
    }  # fmt: skip
    assert any(line.split() == ["redriven", "1", *line.split()[2:]] for line in printed)
    unfinished = [line for line in printed if line.strip().startswith("unfinished")]
    assert unfinished
    assert retried in unfinished[-1]
    # And it ends as make run does with unfinished messages, without a traceback
    assert status == 3, errors[-3000:]
    assert "Traceback" not in errors, errors[-3000:]
    assert not up.state_file.exists()


def test_a_port_in_use_is_refused_with_how_to_pick_another(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        # When make up is asked for a port another server listens on
        status = up_module.main(["--port", str(port)])
    # Then it refuses before starting anything, naming the port and how to choose another
    assert status == 2
    error = capsys.readouterr().err
    assert f"port {port} is in use" in error
    assert "UP_PORT=" in error
    assert "--port" in error


@pytest.mark.slow
def test_ctrl_c_in_make_run_prints_the_reconciliation_so_far(built: Path, tmp_path: Path) -> None:
    # Given make run with every downstream call failing and retries at least 32 s away
    process = subprocess.Popen(
        [
            sys.executable, "-m", "local.commands.run",
            "--messages", "4", "--failure-rate", "1", "--outage", "0", "--latency-ms", "0",
            "--backoff-base", "30", "--max-receive-count", "10",
            "--build-dir", str(built), "--work-dir", str(tmp_path / "work"),
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": "functions"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_pump, args=(process.stdout, lines), daemon=True).start()
    run = Up(process, lines, [], tmp_path / "unused.json")
    try:
        # When Ctrl-C comes once all four wait out their backoff
        run.read_until(lambda line: "waiting_backoff=4 " in line, START_LIMIT_SECONDS)
        process.send_signal(signal.SIGINT)
        printed = run.read_until(lambda line: line.startswith("summary: "), STOP_LIMIT_SECONDS)
        status = process.wait(timeout=STOP_LIMIT_SECONDS)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    errors = process.stderr.read() if process.stderr else ""

    # Then the reconciliation follows: nothing lost, the four unfinished, exit status 3
    summary = dict(re.findall(r"(\w+)=([\d.]+)", printed[-1]))
    assert {key: summary[key] for key in ("sent", "delivered", "lost", "unfinished")} == {
        "sent": "4", "delivered": "0", "lost": "0", "unfinished": "4",
    }  # fmt: skip
    assert any("interrupted (Ctrl-C)" in line for line in printed)
    assert status == 3, errors[-3000:]
    assert "Traceback" not in errors, errors[-3000:]


class _Accepting(http.server.BaseHTTPRequestHandler):
    """A downstream of "your own": 200 to every POST, the Idempotency-Keys kept."""

    keys: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        _Accepting.keys.append(self.headers.get("Idempotency-Key", ""))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.mark.slow
def test_with_your_own_downstream_delivered_means_reported_done(
    built: Path, tmp_path: Path
) -> None:
    # Given your own downstream on 127.0.0.1, and make up started with DOWNSTREAM_URL
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Accepting)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/orders"
    try:
        with started_up(built, tmp_path, "--downstream-url", url) as up:
            assert printed_value(up.printed, "downstream") == url
            sqs = client_from_export(up.printed, "sqs")
            source_url = printed_value(up.printed, "source")
            dlq_url = printed_value(up.printed, "dlq")
            # When two good messages and a poison one are sent
            good = [
                sqs.send_message(QueueUrl=source_url, MessageBody=f'{{"n": {n}}}')["MessageId"]
                for n in range(2)
            ]
            sqs.send_message(QueueUrl=source_url, MessageBody="not json")
            wait_for(
                lambda: (
                    queue_depth(sqs, source_url) == (0, 0) and sum(queue_depth(sqs, dlq_url)) == 1
                ),
                SETTLE_LIMIT_SECONDS,
                "two delivered, one dead-lettered",
            )
            up.process.send_signal(signal.SIGINT)
            printed = up.read_until(lambda line: line.startswith("summary: "), STOP_LIMIT_SECONDS)
            status = up.process.wait(timeout=STOP_LIMIT_SECONDS)
    finally:
        server.shutdown()
    # Then your downstream had the good ones, and the reconciliation counts them delivered
    # from the function's reports, saying that it did not see the answers
    assert sorted(_Accepting.keys) == sorted(good)
    summary = dict(re.findall(r"(\w+)=([\d.]+)", printed[-1]))
    assert {key: summary[key] for key in ("sent", "delivered", "dead_lettered", "lost")} == {
        "sent": "3", "delivered": "2", "dead_lettered": "1", "lost": "0",
    }  # fmt: skip
    # And the downstream calls are the ones your server had, as the function reported them
    # (the poison one never called it), not 0
    assert summary["downstream_calls"] == str(len(_Accepting.keys))
    [calls] = [line for line in printed if line.startswith("  downstream ")]
    assert calls.split()[1:2] == [str(len(_Accepting.keys))]
    assert "2xx=2" in calls
    [dead] = [line for line in printed if line.startswith("  dead-lettered ")]
    assert "1 not JSON (never sent downstream)" in dead
    assert any("reported done by the function" in line for line in printed)
    assert status == 0
