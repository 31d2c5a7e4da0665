"""Execution environments: one warm Python 3.13 process each, invoked the way Lambda invokes.

An environment starts on its first invocation (a cold start), runs the init phase once, and then
serves invocations one at a time until it is shut down. An invocation that outlives the function
timeout is killed with its process, as Lambda kills a timed-out environment; the next invocation
gets a fresh one.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from local.aws.emulator import EMULATOR_CREDENTIALS
from local.lambda_service import lambda_bootstrap
from local.lambda_service.function_code import CodePaths
from local.shared.access_keys import FUNCTION_ACCESS_KEY_ID

# Lambda's limit on the init phase of an on-demand environment.
INIT_TIMEOUT_SECONDS = 10.0
# How long starting the Python process may take before the runtime reports in: the emulator's
# own overhead, kept out of the function's init budget, generous for a loaded machine.
PROCESS_START_LIMIT_SECONDS = 60.0

Outcome = Literal["response", "error", "timeout", "crash"]


@dataclass(frozen=True)
class FunctionSpec:
    """What an execution environment needs of the deployed function configuration."""

    name: str
    arn: str
    handler: str
    runtime: str
    timeout_seconds: float
    memory_mb: int
    environment: dict[str, str]
    log_group: str

    @classmethod
    def from_configuration(cls, configuration: Mapping[str, Any]) -> FunctionSpec:
        variables = configuration.get("Environment", {}).get("Variables", {})
        logging_config = configuration.get("LoggingConfig") or {}
        name = str(configuration["FunctionName"])
        return cls(
            name=name,
            arn=str(configuration["FunctionArn"]),
            handler=str(configuration["Handler"]),
            runtime=str(configuration["Runtime"]),
            timeout_seconds=float(configuration["Timeout"]),
            memory_mb=int(configuration["MemorySize"]),
            # Lambda hands every variable over as a string.
            environment={key: str(value) for key, value in variables.items()},
            log_group=str(logging_config.get("LogGroup", f"/aws/lambda/{name}")),
        )


@dataclass(frozen=True)
class Invocation:
    request_id: str
    outcome: Outcome
    duration_seconds: float
    cold_start: bool
    # The handler's return value (outcome "response"), else None.
    response: Any = None
    # Lambda's error document (errorMessage, errorType, ...) for every other outcome.
    error: dict[str, Any] = field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        return self.outcome == "response"


@dataclass(frozen=True)
class Setup:
    """What every execution environment of one function shares."""

    function: FunctionSpec
    code: CodePaths
    # The emulator the SDK inside the function talks to, and its region.
    endpoint_url: str
    region: str


class ExecutionEnvironment:
    def __init__(
        self, setup: Setup, log_path: Path, init_timeout_seconds: float = INIT_TIMEOUT_SECONDS
    ) -> None:
        function = setup.function
        if function.runtime != f"python{sys.version_info.major}.{sys.version_info.minor}":
            raise RuntimeError(
                f"the function's runtime is {function.runtime}, but this interpreter is "
                f"Python {sys.version_info.major}.{sys.version_info.minor}: "
                "run the local system with the runtime's version"
            )
        self.function = function
        self.code = setup.code
        self.endpoint_url = setup.endpoint_url
        self.region = setup.region
        self.log_path = log_path
        self.init_timeout_seconds = init_timeout_seconds
        self._process: subprocess.Popen[bytes] | None = None
        self._inbox: Any = None
        self._outbox: Any = None
        self._eof = False
        self._unread = b""
        # Set when the pool shuts down under a running invocation: no process starts again.
        self._abandoned = False
        self._process_lock = threading.Lock()
        self.invocations = 0

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def invoke(self, event: Any, request_id: str | None = None) -> Invocation:
        request_id = request_id or str(uuid.uuid4())
        started = time.monotonic()
        cold_start = self._process is None
        # The function timeout counts from the start of the invocation; a retried init spends it.
        budget_ends = None
        if cold_start:
            failure = self._start(self.init_timeout_seconds, phase="init")
            if failure is not None:
                # Lambda retries an init that failed or passed its 10 s at the first invocation,
                # this time within the function timeout (AWS Lambda Developer Guide, "Lambda
                # execution environment lifecycle": Init phase).
                self._discard_process()
                retry_started = time.monotonic()
                budget_ends = retry_started + self.function.timeout_seconds
                failure = self._start(self.function.timeout_seconds, phase="invoke")
                if failure is not None:
                    self.shutdown()
                    outcome, error = failure
                    return Invocation(
                        request_id, outcome, time.monotonic() - started, True, error=error
                    )
        invoke_started = time.monotonic()
        budget_ends = budget_ends or invoke_started + self.function.timeout_seconds
        remaining_seconds = max(0.0, budget_ends - invoke_started)
        deadline_ms = int(time.time() * 1000 + remaining_seconds * 1000)
        self._log(f"START RequestId: {request_id} Version: $LATEST")
        self._send(
            {
                "requestId": request_id,
                "deadlineMs": deadline_ms,
                "invokedFunctionArn": self.function.arn,
                "event": event,
            }
        )
        reply = self._receive(remaining_seconds)
        duration = time.monotonic() - started
        self.invocations += 1
        self._log(f"END RequestId: {request_id}")
        self._log(f"REPORT RequestId: {request_id}\tDuration: {duration * 1000:.2f} ms")
        if reply is None:
            return self._killed(request_id, duration, cold_start)
        if reply["type"] == "response":
            return Invocation(
                request_id, "response", duration, cold_start, response=json.loads(reply["payload"])
            )
        return Invocation(request_id, "error", duration, cold_start, error=reply["error"])

    def kill(self) -> None:
        """End the process at once, as a crashed or reclaimed sandbox ends; an invocation in
        progress then fails (outcome "crash") and the next one needs a new environment."""
        process = self._process
        if process is not None and process.poll() is None:
            process.kill()

    def abandon(self) -> None:
        """Kill the process and start none again: the local system is shutting down."""
        with self._process_lock:
            self._abandoned = True
            self.kill()

    def wait_exited(self, timeout_seconds: float = 10) -> None:
        if self._process is not None:
            self._process.wait(timeout=timeout_seconds)

    def shutdown(self) -> None:
        if self._process is None:
            return
        for channel in (self._inbox, self._outbox):
            if channel is not None:
                # BrokenPipeError: closing flushes to a process that is already gone (killed
                # while idle, or crashed); there is nothing left to tell it.
                with contextlib.suppress(OSError):
                    channel.close()
        self._inbox = self._outbox = None
        try:
            # A closed control channel ends the runtime's loop: let it exit on its own.
            self._process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    def _start(self, limit_seconds: float, phase: str) -> tuple[Outcome, dict[str, Any]] | None:
        """Start the process and run its init phase; return (outcome, error) if it failed.

        The limit counts from the moment the runtime is up: starting a Python process on this
        machine (slow when the machine is loaded) is the emulator's overhead, which Lambda's
        provisioned sandbox does not have, so it stays out of the function's init budget.
        """
        with self._process_lock:
            if self._abandoned:
                return "crash", {
                    "errorMessage": "the execution environment was shut down",
                    "errorType": "Runtime.ExitError",
                }
            self._spawn()
        bootstrapped = self._receive(PROCESS_START_LIMIT_SECONDS)
        if bootstrapped is None or bootstrapped.get("type") != "bootstrapped":
            return "crash", {
                "errorMessage": "the execution environment's process did not start",
                "errorType": "Runtime.ExitError",
            }
        init_started = time.monotonic()
        reply = self._receive(limit_seconds)
        init_ms = (time.monotonic() - init_started) * 1000
        if reply is None:
            status = "timeout" if not self._eof else "error"
            self._log(
                f"INIT_REPORT Init Duration: {init_ms:.2f} ms Phase: {phase} Status: {status}"
            )
            if self._eof:
                return "crash", {
                    "errorMessage": "the runtime exited during the init phase",
                    "errorType": "Runtime.ExitError",
                }
            return "timeout", {
                "errorMessage": f"init phase timed out after {limit_seconds:.2f} seconds",
                "errorType": "Sandbox.Timedout",
            }
        if reply["type"] == "init-error":
            self._log(f"INIT_REPORT Init Duration: {init_ms:.2f} ms Phase: {phase} Status: error")
            return "error", dict(reply["error"])
        return None

    def _spawn(self) -> None:
        to_child_read, to_child_write = os.pipe()
        from_child_read, from_child_write = os.pipe()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [
                    sys.executable, "-I", "-S", "-B", "-u", lambda_bootstrap.__file__,
                    "--task-root", str(self.code.task_root),
                    "--opt", str(self.code.opt),
                    "--runtime-packages", str(self.code.runtime_packages),
                    "--control-in", str(to_child_read),
                    "--control-out", str(from_child_write),
                ],
                env=self._environment(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=(to_child_read, from_child_write),
                cwd=self.code.task_root,
                # Its own process group: Ctrl-C in the terminal reaches the runner, which stops
                # the environments itself, and not every environment at once mid-invocation.
                process_group=0,
            )  # fmt: skip
        os.close(to_child_read)
        os.close(from_child_write)
        self._inbox = os.fdopen(to_child_write, "w", encoding="utf-8")
        self._outbox = os.fdopen(from_child_read, "rb", buffering=0)
        self._eof = False
        self._unread = b""

    def _discard_process(self) -> None:
        """End a process whose init failed, so that the retried init starts from scratch."""
        self.kill()
        self.shutdown()
        self._process = None

    def _environment(self) -> dict[str, str]:
        """The function's resolved variables plus what Lambda sets in every environment."""
        task_root = str(self.code.task_root)
        return {
            **self.function.environment,
            "_HANDLER": self.function.handler,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{self.function.runtime}",
            "AWS_LAMBDA_FUNCTION_NAME": self.function.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.function.memory_mb),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_LAMBDA_LOG_GROUP_NAME": self.function.log_group,
            "AWS_LAMBDA_LOG_STREAM_NAME": self.log_path.stem,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            # Its own access key: the emulator's fault layer tells the function's calls by it.
            "AWS_ACCESS_KEY_ID": FUNCTION_ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": EMULATOR_CREDENTIALS["aws_secret_access_key"],
            "LAMBDA_TASK_ROOT": task_root,
            "LAMBDA_RUNTIME_DIR": str(Path(lambda_bootstrap.__file__).parent),
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            # Local differences, each needed to run outside AWS: the SDK inside the function
            # reaches the emulator, and Powertools' Tracer (on whenever LAMBDA_TASK_ROOT is set)
            # has no X-Ray daemon to send to.
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "POWERTOOLS_TRACE_DISABLED": "true",
        }

    def _send(self, message: dict[str, Any]) -> None:
        try:
            self._inbox.write(json.dumps(message) + "\n")
            self._inbox.flush()
        except (BrokenPipeError, ValueError):
            pass  # the process is gone: _receive reports it

    def _receive(self, timeout_seconds: float) -> dict[str, Any] | None:
        """The next message from the process, or None if it did not answer in time or died."""
        deadline = time.monotonic() + timeout_seconds
        with selectors.DefaultSelector() as selector:
            selector.register(self._outbox, selectors.EVENT_READ)
            # One read can hold more than one message (the runtime reports "bootstrapped" and
            # "ready" back to back): what follows the first line waits for the next call.
            while b"\n" not in self._unread:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not selector.select(remaining):
                    return None
                chunk = self._outbox.read(65536)
                if not chunk:
                    self._eof = True
                    return None
                self._unread += chunk
        line, _, self._unread = self._unread.partition(b"\n")
        message: dict[str, Any] = json.loads(line)
        return message

    def _killed(self, request_id: str, duration: float, cold_start: bool) -> Invocation:
        # End of file on the control channel: the process died; otherwise it is still working.
        timed_out = not self._eof
        if timed_out and self._process is not None:
            self._process.kill()
        self.shutdown()
        if timed_out:
            message = f"Task timed out after {self.function.timeout_seconds:.2f} seconds"
            self._log(f"{_utc_now()} {request_id} {message}")
            return Invocation(
                request_id,
                "timeout",
                duration,
                cold_start,
                error={"errorMessage": message, "errorType": "Sandbox.Timedout"},
            )
        message = "the execution environment's process exited during the invocation"
        self._log(f"{_utc_now()} {request_id} {message}")
        return Invocation(
            request_id,
            "crash",
            duration,
            cold_start,
            error={"errorMessage": message, "errorType": "Runtime.ExitError"},
        )

    def _log(self, line: str) -> None:
        with self.log_path.open("a", encoding="utf-8") as log:
            log.write(line + "\n")


def _utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class PoolClosedError(RuntimeError):
    """An invocation was asked of a pool that has been shut down."""


class EnvironmentPool:
    """Up to `max_environments` environments; an idle warm one is reused before a new one starts."""

    def __init__(
        self, setup: Setup, log_dir: Path, max_environments: int, log_prefix: str = "environment"
    ) -> None:
        self.setup = setup
        self.log_dir = log_dir
        # Each environment's log file is <log_prefix>-NN.log: one prefix per function.
        self.log_prefix = log_prefix
        self.max_environments = max_environments
        self._idle: list[ExecutionEnvironment] = []
        self._all: list[ExecutionEnvironment] = []
        self._started = 0
        self._closed = False
        self._lock = threading.Condition()
        # The setup each environment was started with (by id): one of an earlier function
        # configuration is not reused.
        self._setups: dict[int, Setup] = {}

    @property
    def started(self) -> int:
        return self._started

    @contextmanager
    def environment(self) -> Iterator[ExecutionEnvironment]:
        with self._lock:
            self._discard_dead_idle()
            self._lock.wait_for(
                lambda: self._closed or self._idle or len(self._all) < self.max_environments
            )
            if self._closed:
                raise PoolClosedError("the execution environments are shut down")
            if self._idle:
                environment = self._idle.pop()
            else:
                self._started += 1
                environment = ExecutionEnvironment(
                    self.setup, self.log_dir / f"{self.log_prefix}-{self._started:02d}.log"
                )
                self._all.append(environment)
                self._setups[id(environment)] = self.setup
        try:
            yield environment
        finally:
            with self._lock:
                current = self._setups.get(id(environment)) is self.setup
                if environment.alive and not self._closed and current:
                    self._idle.append(environment)
                else:
                    # Killed (timeout, crash) or broken, or the pool shut down while it ran:
                    # the next invocation gets a fresh environment.
                    environment.shutdown()
                    if environment in self._all:
                        self._all.remove(environment)
                    self._setups.pop(id(environment), None)
                self._lock.notify()

    def replace_setup(self, setup: Setup) -> None:
        """A new function configuration (a stack update changed it), as Lambda applies one:
        new invocations get environments started with it; idle environments of the old one are
        shut down now, busy ones when their invocation ends."""
        with self._lock:
            self.setup = setup
            for environment in list(self._idle):
                environment.shutdown()
                self._idle.remove(environment)
                self._all.remove(environment)
                self._setups.pop(id(environment), None)
            self._lock.notify_all()

    def _discard_dead_idle(self) -> None:
        """Replace idle environments whose process died, as Lambda replaces a lost sandbox: an
        invocation is only ever given an environment that was alive when it was handed out."""
        for environment in [e for e in self._idle if not e.alive]:
            environment.shutdown()
            self._idle.remove(environment)
            self._all.remove(environment)

    def idle_environments(self) -> list[ExecutionEnvironment]:
        with self._lock:
            return list(self._idle)

    def shutdown(self) -> None:
        with self._lock:
            self._closed = True
            for environment in self._all:
                if environment in self._idle:
                    environment.shutdown()
                else:
                    # In an invocation on another thread, which owns its channels: killing the
                    # process ends that invocation, and its thread shuts the environment down.
                    environment.abandon()
            self._all.clear()
            self._idle.clear()
            self._lock.notify_all()
