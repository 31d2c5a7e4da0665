"""The state file of a running `make up` (.local/up.json): its endpoint, credentials, queues
and log folder, for the tools that talk to it (`ENV=local`) and for `make logs`.

`make up` writes it once the system is up and removes it on exit. A file whose process is gone
(a `make up` killed with SIGKILL) counts as no `make up` running.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from local.shared.paths import ROOT

STATE_FILE = ROOT / ".local" / "up.json"
# Another place for it (tests, or two checkouts' `make up`s side by side).
STATE_FILE_VARIABLE = "UP_STATE_FILE"
# The samconfig-like environment name the tools take for the running `make up`.
LOCAL_ENV = "local"


class NotRunningError(ValueError):
    """No `make up` is running (or its state file is unreadable)."""


@dataclass(frozen=True)
class UpState:
    pid: int
    endpoint_url: str
    region: str
    access_key_id: str
    secret_access_key: str
    stack_name: str
    # Stack output name (SourceQueueUrl, DeadLetterQueueUrl, FailedJobsQueueUrl) -> URL.
    queues: dict[str, str]
    log_dir: str

    def to_json(self) -> str:
        return json.dumps(self.__dict__, indent=2) + "\n"

    def session(self) -> boto3.session.Session:
        """A session whose clients talk to this `make up`'s emulator with its credentials."""
        return _EndpointSession(
            self.endpoint_url,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            region_name=self.region,
        )


class _EndpointSession(boto3.session.Session):
    def __init__(self, endpoint_url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._endpoint_url = endpoint_url

    def client(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("endpoint_url", self._endpoint_url)
        return super().client(*args, **kwargs)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, another user's
    return True


def state_file_path() -> Path:
    return Path(os.environ.get(STATE_FILE_VARIABLE) or STATE_FILE)


def running(state_file: Path | None = None) -> UpState | None:
    """The running `make up`'s state, or None when none is running."""
    state_file = state_file or state_file_path()
    try:
        state = UpState(**json.loads(state_file.read_text()))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError) as error:
        raise NotRunningError(f"{state_file} is unreadable ({error}); remove it") from None
    return state if _alive(state.pid) else None


def require_running(state_file: Path | None = None) -> UpState:
    state_file = state_file or state_file_path()
    state = running(state_file)
    if state is None:
        raise NotRunningError(
            f"ENV={LOCAL_ENV} names the running `make up`, and none is running "
            f"(no live {_shown(state_file)}): start one with make up"
        )
    return state


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)
