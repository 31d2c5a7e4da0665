"""The running `make up`'s state file, as the tools (ENV=local) and `make logs` read it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from local.commands import send, up_state
from tools import dlq_peek


def state(pid: int) -> up_state.UpState:
    return up_state.UpState(
        pid=pid,
        endpoint_url="http://127.0.0.1:4599",
        region="us-east-1",
        access_key_id="local",
        secret_access_key="local",
        stack_name="sqs-backoff-consumer",
        queues={"SourceQueueUrl": "http://127.0.0.1:4599/123456789012/source"},
        log_dir="/tmp/logs",
    )


def gone_pid() -> int:
    """The id of a process that has ended."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_live_make_up_is_read_back_and_its_clients_reach_its_endpoint(tmp_path: Path) -> None:
    # Given the state file of a running make up (this process stands in for it)
    path = tmp_path / "up.json"
    path.write_text(state(os.getpid()).to_json())
    # When it is read
    running = up_state.require_running(path)
    # Then it is the same state, and a client of its session talks to its endpoint
    assert running == state(os.getpid())
    assert running.session().client("sqs").meta.endpoint_url == "http://127.0.0.1:4599"


def test_a_state_file_whose_process_is_gone_means_nothing_is_running(tmp_path: Path) -> None:
    # Given the state file of a make up killed without cleaning up
    path = tmp_path / "up.json"
    path.write_text(state(gone_pid()).to_json())
    # Then nothing is running, and ENV=local says to start make up
    assert up_state.running(path) is None
    with pytest.raises(up_state.NotRunningError, match="start one with make up"):
        up_state.require_running(path)


def test_an_unreadable_state_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "up.json"
    path.write_text("{not json")
    with pytest.raises(up_state.NotRunningError, match="unreadable"):
        up_state.running(path)


@pytest.mark.parametrize("tool", [send.main, dlq_peek.main])
def test_env_local_without_make_up_is_a_clear_error(
    tool: Callable[[list[str]], int],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given no make up running
    monkeypatch.setenv(up_state.STATE_FILE_VARIABLE, str(tmp_path / "up.json"))
    # When a tool is pointed at it
    status = tool(["--config-env", "local"])
    # Then it fails, saying to start make up
    assert status == 1
    assert "start one with make up" in capsys.readouterr().err
