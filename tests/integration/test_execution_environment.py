"""Execution environments: separate warm processes with only the function, its layers and the
runtime's boto3 on the path, killed at the function timeout."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from local.execution_environment import ExecutionEnvironment, FunctionSpec, Setup
from local.function_code import CodePaths, link_distribution_closure

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
    (paths.opt / "python").mkdir(parents=True)
    (paths.opt / "python" / "layer_module.py").write_text("NAME = 'from the layer'\n")
    link_distribution_closure("boto3", paths.runtime_packages)
    return paths


def environment(
    code: CodePaths, tmp_path: Path, handler: str, timeout: float = 5
) -> ExecutionEnvironment:
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
    setup = Setup(spec, code, "http://127.0.0.1:9", "us-east-1")
    return ExecutionEnvironment(setup, tmp_path / "environment.log")


def test_one_warm_process_with_only_function_layer_and_sdk_on_its_path(
    code: CodePaths, tmp_path: Path
) -> None:
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
    env = environment(code, tmp_path, "fn.handlers.hang", timeout=1)
    try:
        invocation = env.invoke({})
    finally:
        env.shutdown()
    assert invocation.outcome == "timeout"
    assert invocation.error["errorType"] == "Sandbox.Timedout"
    assert 1 <= invocation.duration_seconds < 5
    assert not env.alive
    assert "Task timed out after 1.00 seconds" in (tmp_path / "environment.log").read_text()


def test_a_raised_error_is_reported_and_the_environment_stays_warm(
    code: CodePaths, tmp_path: Path
) -> None:
    env = environment(code, tmp_path, "fn.handlers.fail")
    try:
        invocation = env.invoke({})
        assert env.alive
    finally:
        env.shutdown()
    assert invocation.outcome == "error"
    assert invocation.error["errorType"] == "ValueError"
    assert invocation.error["errorMessage"] == "bad event"
    assert "[ERROR] ValueError: bad event" in (tmp_path / "environment.log").read_text()


def test_a_response_that_is_not_json_is_a_marshal_error(code: CodePaths, tmp_path: Path) -> None:
    env = environment(code, tmp_path, "fn.handlers.unserialisable")
    try:
        invocation = env.invoke({})
    finally:
        env.shutdown()
    assert invocation.outcome == "error"
    assert invocation.error["errorType"] == "Runtime.MarshalError"


def test_a_dependency_missing_from_the_layer_fails_the_init_phase(
    code: CodePaths, tmp_path: Path
) -> None:
    # Given a handler module importing something only the developer's environment has
    env = environment(code, tmp_path, "fn.needs_pytest.handler")
    try:
        invocation = env.invoke({})
    finally:
        env.shutdown()
    assert invocation.outcome == "error"
    assert invocation.error["errorType"] == "Runtime.ImportModuleError"
    assert "No module named 'pytest'" in invocation.error["errorMessage"]
    assert not env.alive
