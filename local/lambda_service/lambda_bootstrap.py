"""The runtime inside one execution environment: a stand-in for Lambda's Python bootstrap.

Run as a script by a Python 3.13 started with -I -S, so that nothing of the developer's
environment is importable: the search path is set here, in the Python runtime's order (task root,
the layers' /opt/python/lib/python3.13/site-packages and /opt/python, the standard library, the
runtime's own boto3). So a dependency missing from the layer fails here as it would in AWS.

Only the standard library may be imported at module level: this file runs before the path is set.
It imports the handler once (the init phase), then answers invocations until its parent closes
the control channel, keeping module state warm between them as Lambda does.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any, TextIO


class LambdaContext:
    """The attributes and method of the context object Lambda's Python runtime passes."""

    def __init__(self, request_id: str, deadline_ms: int, invoked_function_arn: str) -> None:
        self.aws_request_id = request_id
        self.invoked_function_arn = invoked_function_arn
        self.function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
        self.function_version = os.environ["AWS_LAMBDA_FUNCTION_VERSION"]
        self.memory_limit_in_mb = os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"]
        self.log_group_name = os.environ["AWS_LAMBDA_LOG_GROUP_NAME"]
        self.log_stream_name = os.environ["AWS_LAMBDA_LOG_STREAM_NAME"]
        self.identity = None
        self.client_context = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))


def set_search_path(task_root: str, opt: str, runtime_packages: str) -> None:
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    standard_library = [entry for entry in sys.path if entry]
    sys.path[:] = [
        task_root,
        os.path.join(opt, "python", "lib", version, "site-packages"),
        os.path.join(opt, "python"),
        *standard_library,
        runtime_packages,
    ]


def load_handler(name: str) -> Callable[[Any, LambdaContext], Any]:
    module_name, _, function_name = name.rpartition(".")
    module = importlib.import_module(module_name)
    handler: Callable[[Any, LambdaContext], Any] = getattr(module, function_name)
    return handler


def error_document(error: BaseException, error_type: str | None = None) -> dict[str, Any]:
    return {
        "errorMessage": str(error),
        "errorType": error_type or type(error).__name__,
        # The first frame is this runtime's own call into the handler; Lambda's runtime leaves
        # its frames out too.
        "stackTrace": traceback.format_tb(error.__traceback__)[1:],
    }


def log_error(document: dict[str, Any]) -> None:
    # The runtime logs an unhandled error to the function's log stream, as Lambda's does.
    print(f"[ERROR] {document['errorType']}: {document['errorMessage']}", flush=True)
    print("".join(document["stackTrace"]), end="", flush=True)


def send(channel: TextIO, message: dict[str, Any]) -> None:
    channel.write(json.dumps(message) + "\n")
    channel.flush()


def invoke(handler: Callable[[Any, LambdaContext], Any], request: dict[str, Any]) -> dict[str, Any]:
    context = LambdaContext(
        request["requestId"], request["deadlineMs"], request["invokedFunctionArn"]
    )
    try:
        result = handler(request["event"], context)
    except Exception as error:
        document = error_document(error)
        log_error(document)
        return {"type": "error", "error": document}
    try:
        payload = json.dumps(result)
    except (TypeError, ValueError) as error:
        document = error_document(error, "Runtime.MarshalError")
        log_error(document)
        return {"type": "error", "error": document}
    return {"type": "response", "payload": payload}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--task-root", required=True)
    parser.add_argument("--opt", required=True)
    parser.add_argument("--runtime-packages", required=True)
    parser.add_argument("--control-in", type=int, required=True)
    parser.add_argument("--control-out", type=int, required=True)
    args = parser.parse_args(argv)
    set_search_path(args.task_root, args.opt, args.runtime_packages)
    os.chdir(args.task_root)
    with (
        os.fdopen(args.control_in, "r", encoding="utf-8") as inbox,
        os.fdopen(args.control_out, "w", encoding="utf-8") as outbox,
    ):
        # The runtime is up: the function's init phase (importing the handler) starts now.
        send(outbox, {"type": "bootstrapped"})
        try:
            handler = load_handler(os.environ["_HANDLER"])
        except Exception as error:
            document = error_document(error, "Runtime.ImportModuleError")
            log_error(document)
            send(outbox, {"type": "init-error", "error": document})
            return 1
        send(outbox, {"type": "ready"})
        for line in inbox:
            send(outbox, invoke(handler, json.loads(line)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
