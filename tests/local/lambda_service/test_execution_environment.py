"""Execution environments: separate warm processes with only the function, its layers and the
runtime's boto3 on the path, killed at the function timeout."""

from __future__ import annotations

import os
import textwrap
import threading
from pathlib import Path

import pytest

from local.lambda_service.execution_environment import (
    INIT_TIMEOUT_SECONDS,
    EnvironmentPool,
    ExecutionEnvironment,
    FunctionSpec,
    PoolClosedError,
    Setup,
)
from local.lambda_service.function_code import CodePaths, link_distribution_closure

HANDLERS = """
import importlib.util
import os
import sys
import threading

import layer_module

invocations = 0


def count(event, context):
    global invocations
    invocations += 1
    return {
        "invocations": invocations,
        "sys_path": sys.path,
        "layer": layer_module.NAME,
        "pytest_importable": importlib.util.find_spec("pytest") is not None,
        "boto3": importlib.util.find_spec("boto3").origin,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "request_id": context.aws_request_id,
        "variable": os.environ["SETTING"],
        "endpoint": os.environ["AWS_ENDPOINT_URL"],
        "tracing_disabled": os.environ["POWERTOOLS_TRACE_DISABLED"],
    }


def hang(event, context):
    threading.Event().wait()


def fail(event, context):
    raise ValueError("bad event")


def unserialisable(event, context):
    return object()
"""


@pytest.fixture(scope="module")
def code(tmp_path_factory: pytest.TempPathFactory) -> CodePaths:
    root = tmp_path_factory.mktemp("environment")
    paths = CodePaths(root / "task", root / "opt", root / "runtime-packages")
    (paths.task_root / "fn").mkdir(parents=True)
    (paths.task_root / "fn" / "__init__.py").write_text("")
    (paths.task_root / "fn" / "handlers.py").write_text(textwrap.dedent(HANDLERS))
    (paths.task_root / "fn" / "needs_pytest.py").write_text("import pytest\n")
    # An init phase that takes a second: the module's import work, before any invocation.
    (paths.task_root / "fn" / "slow_init.py").write_text(
        "import time\ntime.sleep(1)\n\ndef handler(event, context):\n    return {'ok': True}\n"
    )
    (paths.opt / "python").mkdir(parents=True)
    (paths.opt / "python" / "layer_module.py").write_text("NAME = 'from the layer'\n")
    link_distribution_closure("boto3", paths.runtime_packages)
    return paths


def environment(
    code: CodePaths,
    tmp_path: Path,
    handler: str,
    timeout: float = 5,
    init_timeout: float = INIT_TIMEOUT_SECONDS,
) -> ExecutionEnvironment:
    return ExecutionEnvironment(
        setup_for(code, handler, timeout), tmp_path / "environment.log", init_timeout
    )


def setup_for(code: CodePaths, handler: str, timeout: float = 5) -> Setup:
    spec = FunctionSpec(
        name="fn",
        arn="arn:aws:lambda:us-east-1:123456789012:function:fn",
        handler=handler,
        runtime="python3.13",
        timeout_seconds=timeout,
        memory_mb=128,
        environment={"SETTING": "from the configuration"},
        log_group="/aws/lambda/fn",
    )
    return Setup(spec, code, "http://127.0.0.1:9", "us-east-1")


def test_one_warm_process_with_only_function_layer_and_sdk_on_its_path(
    code: CodePaths, tmp_path: Path
) -> None:
    # Given an environment for a handler that counts its invocations and reports what it sees
    env = environment(code, tmp_path, "fn.handlers.count")
    try:
        # When invoked twice
        first = env.invoke({}, request_id="r-1")
        second = env.invoke({})
    finally:
        env.shutdown()

    # Then the second invocation found the first one's module state (a warm start)
    assert (first.cold_start, second.cold_start) == (True, False)
    assert first.response["invocations"] == 1
    assert second.response["invocations"] == 2
    # ...and the path holds the task root, the layer, the standard library and the SDK only
    sys_path = first.response["sys_path"]
    assert sys_path[0] == str(code.task_root)
    assert sys_path[1:3] == [
        str(code.opt / "python" / "lib" / "python3.13" / "site-packages"),
        str(code.opt / "python"),
    ]
    assert sys_path[-1] == str(code.runtime_packages)
    assert not any("site-packages" in entry for entry in sys_path[3:-1])
    assert first.response["layer"] == "from the layer"
    assert first.response["pytest_importable"] is False
    assert first.response["boto3"].startswith(str(code.runtime_packages))
    # ...with the function's variables, the context, and the local endpoint
    assert first.response["variable"] == "from the configuration"
    assert first.response["request_id"] == "r-1"
    assert 0 < first.response["remaining_ms"] <= 5000
    assert first.response["endpoint"] == "http://127.0.0.1:9"
    assert first.response["tracing_disabled"] == "true"
    log = (tmp_path / "environment.log").read_text()
    assert "START RequestId: r-1" in log
    assert "REPORT RequestId: r-1" in log


def test_an_invocation_past_the_timeout_is_killed_with_its_environment(
    code: CodePaths, tmp_path: Path
) -> None:
    # Given an environment whose handler never returns, with a 1 s function timeout
    env = environment(code, tmp_path, "fn.handlers.hang", timeout=1)
    # When it is invoked
    try:
        invocation = env.invoke({})
    finally:
        env.shutdown()
    # Then the invocation times out, the environment is killed and the log says so
    assert invocation.outcome == "timeout"
    assert invocation.error["errorType"] == "Sandbox.Timedout"
    # (The handler waits forever: that the invocation returned at all is the kill; how long
    # after the 1 s the kill came is the loaded machine's business.)
    assert invocation.duration_seconds >= 1
    assert not env.alive
    assert "Task timed out after 1.00 seconds" in (tmp_path / "environment.log").read_text()


def test_a_raised_error_is_reported_and_the_environment_stays_warm(
    code: CodePaths, tmp_path: Path
) -> None:
    # Given an environment whose handler raises
    env = environment(code, tmp_path, "fn.handlers.fail")
    # When it is invoked
    try:
        invocation = env.invoke({})
        # Then the environment is still alive
        assert env.alive
    finally:
        env.shutdown()
    # ...and the error is reported with its type and message, and logged
    assert invocation.outcome == "error"
    assert invocation.error["errorType"] == "ValueError"
    assert invocation.error["errorMessage"] == "bad event"
    assert "[ERROR] ValueError: bad event" in (tmp_path / "environment.log").read_text()


def test_a_response_that_is_not_json_is_a_marshal_error(code: CodePaths, tmp_path: Path) -> None:
    # Given an environment whose handler returns an object JSON cannot encode
    env = environment(code, tmp_path, "fn.handlers.unserialisable")
    # When it is invoked
    try:
        invocation = env.invoke({})
    finally:
        env.shutdown()
    # Then the invocation fails with Lambda's marshal error
    assert invocation.outcome == "error"
    assert invocation.error["errorType"] == "Runtime.MarshalError"


def test_a_dependency_missing_from_the_layer_fails_the_init_phase(
    code: CodePaths, tmp_path: Path
) -> None:
    # Given a handler module importing something only the developer's environment has
    env = environment(code, tmp_path, "fn.needs_pytest.handler")
    # When it is invoked
    try:
        invocation = env.invoke({})
    finally:
        env.shutdown()
    # Then the init phase fails with Lambda's import error and the environment is gone
    assert invocation.outcome == "error"
    assert invocation.error["errorType"] == "Runtime.ImportModuleError"
    assert "No module named 'pytest'" in invocation.error["errorMessage"]
    assert not env.alive


def test_an_environment_killed_while_idle_is_replaced_before_the_next_invocation(
    code: CodePaths, tmp_path: Path
) -> None:
    # Given a pool whose one warm environment is killed while it waits for work
    pool = EnvironmentPool(setup_for(code, "fn.handlers.count"), tmp_path, max_environments=1)
    try:
        with pool.environment() as env:
            first = env.invoke({})
        [idle] = pool.idle_environments()
        idle.kill()
        idle.wait_exited()

        # When the next batch arrives
        with pool.environment() as env:
            second = env.invoke({})
    finally:
        pool.shutdown()

    # Then it runs in a fresh environment (a cold start) instead of failing on the dead one
    assert first.succeeded
    assert second.succeeded
    assert second.cold_start
    assert second.response["invocations"] == 1
    assert pool.started == 2


def test_an_environment_killed_during_an_invocation_fails_that_invocation(
    code: CodePaths, tmp_path: Path
) -> None:
    # Given a warm environment
    env = environment(code, tmp_path, "fn.handlers.hang", timeout=30)
    killer = threading.Timer(1.0, env.kill)
    try:
        # When its process is killed while the handler runs
        killer.start()
        invocation = env.invoke({})
    finally:
        killer.cancel()
        env.shutdown()

    # Then the invocation fails as a whole, well before the timeout: the batch returns to the
    # queue when its visibility timeout ends
    assert invocation.outcome == "crash"
    assert invocation.error["errorType"] == "Runtime.ExitError"
    assert invocation.duration_seconds < 30
    assert not env.alive


def test_shutting_the_pool_down_during_an_invocation_ends_it_cleanly(
    code: CodePaths, tmp_path: Path
) -> None:
    # Given an invocation in progress on another thread
    pool = EnvironmentPool(setup_for(code, "fn.handlers.hang", 30), tmp_path, max_environments=1)
    outcomes: list[str] = []
    errors: list[BaseException] = []
    started = threading.Event()

    def invoke() -> None:
        try:
            with pool.environment() as env:
                started.set()
                outcomes.append(env.invoke({}).outcome)
        except BaseException as error:
            errors.append(error)

    thread = threading.Thread(target=invoke)
    thread.start()
    assert started.wait(10)

    # When the pool shuts down under it
    pool.shutdown()
    thread.join(30)

    # Then the invocation ends as a crash, without an error from the pool's bookkeeping, and
    # the pool hands out nothing more
    assert not thread.is_alive()
    assert errors == []
    assert outcomes == ["crash"]
    with pytest.raises(PoolClosedError), pool.environment():
        pass


def test_an_init_past_its_limit_is_retried_within_the_first_invocations_timeout(
    code: CodePaths, tmp_path: Path
) -> None:
    # Given a function whose init takes 1 s, and an init limit of 0.3 s (Lambda's is 10 s)
    env = environment(code, tmp_path, "fn.slow_init.handler", timeout=5, init_timeout=0.3)
    try:
        # When it is invoked for the first time
        invocation = env.invoke({})
    finally:
        env.shutdown()

    # Then the init is retried as part of the invocation, within the function timeout, and the
    # invocation succeeds; the log shows the first init's timeout as Lambda's does
    assert invocation.succeeded
    assert invocation.cold_start
    assert invocation.response == {"ok": True}
    log = (tmp_path / "environment.log").read_text()
    assert "Phase: init Status: timeout" in log
    assert "Phase: invoke Status" not in log


def test_a_retried_init_that_outlives_the_function_timeout_fails_the_invocation(
    code: CodePaths, tmp_path: Path
) -> None:
    # Given an init of 1 s, an init limit of 0.3 s and a function timeout of 0.5 s
    env = environment(code, tmp_path, "fn.slow_init.handler", timeout=0.5, init_timeout=0.3)
    try:
        invocation = env.invoke({})
    finally:
        env.shutdown()

    # Then both inits time out and the invocation fails (the batch returns to the queue)
    assert invocation.outcome == "timeout"
    assert invocation.error["errorType"] == "Sandbox.Timedout"
    log = (tmp_path / "environment.log").read_text()
    assert "Phase: init Status: timeout" in log
    assert "Phase: invoke Status: timeout" in log


def test_two_messages_arriving_in_one_read_are_both_received(
    code: CodePaths, tmp_path: Path
) -> None:
    # Given a control channel on which the runtime wrote two messages back to back
    env = environment(code, tmp_path, "fn.handlers.count")
    read_end, write_end = os.pipe()
    os.write(write_end, b'{"type": "bootstrapped"}\n{"type": "ready"}\n')
    env._outbox = os.fdopen(read_end, "rb", buffering=0)
    try:
        # When they are received one after the other, Then each is whole
        assert env._receive(1) == {"type": "bootstrapped"}
        assert env._receive(1) == {"type": "ready"}
    finally:
        env._outbox.close()
        os.close(write_end)
