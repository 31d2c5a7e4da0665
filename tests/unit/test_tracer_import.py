"""The X-Ray SDK is imported only when the tracer is on: the largest import of a cold start."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from local.shared.paths import ROOT

# What the handler module left imported of the X-Ray SDK, and the tracer's state.
PROBE = """
import json, sys
import consumer.app
from shared.observability import tracer
print(json.dumps({"core": "aws_xray_sdk.core" in sys.modules, "disabled": tracer.disabled}))
"""


def load_handler(environment: dict[str, str]) -> dict[str, bool]:
    # A fresh interpreter: Powertools decides at import, and this process has imported it.
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        env={**os.environ, "PYTHONPATH": str(ROOT / "functions"), **environment},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    loaded: dict[str, bool] = json.loads(result.stdout.splitlines()[-1])
    return loaded


def test_tracing_off_in_lambda_never_imports_the_xray_sdk() -> None:
    # Given Lambda's environment with TracingMode=PassThrough
    environment = {"LAMBDA_TASK_ROOT": str(ROOT), "POWERTOOLS_TRACE_DISABLED": "true"}
    # When the handler module is imported
    loaded = load_handler(environment)
    # Then the tracer is off and the X-Ray SDK's core never loaded
    assert loaded == {"core": False, "disabled": True}


def test_active_tracing_in_lambda_loads_the_xray_recorder() -> None:
    # Given Lambda's environment with TracingMode=Active
    environment = {"LAMBDA_TASK_ROOT": str(ROOT), "POWERTOOLS_TRACE_DISABLED": "false"}
    # When the handler module is imported
    loaded = load_handler(environment)
    # Then the tracer records through the X-Ray SDK
    assert loaded == {"core": True, "disabled": False}
