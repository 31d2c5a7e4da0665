"""The real SAM CLI on the real template: what `sam validate --lint` and `sam build` say."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from local.shared.paths import ROOT

pytestmark = pytest.mark.slow


# PEP 552 flags of a hash-based pyc whose source is not checked at import.
UNCHECKED_HASH_FLAGS = 0b01
# The SAM CLI and python3.13 (which `sam build` looks for) sit beside the venv's interpreter.
VENV_BIN = Path(sys.executable).parent


def sam(*args: str) -> subprocess.CompletedProcess[str]:
    executable = VENV_BIN / "sam"
    assert executable.is_file(), "the SAM CLI is installed by `make venv`"
    return subprocess.run(
        [str(executable), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={
            **os.environ,
            "SAM_CLI_TELEMETRY": "0",
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        },
        check=False,
    )


def test_sam_validate_lint_passes() -> None:
    # Given the project's template, When the SAM CLI validates it with cfn-lint
    result = sam("validate", "--lint", "--template", "template.yaml")

    # Then it passes
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is a valid SAM Template" in result.stdout + result.stderr


def test_sam_build_puts_dependencies_in_the_layer_and_only_our_code_in_the_function(
    tmp_path: Path,
) -> None:
    # Given the project's template, When `sam build` builds it
    build_dir = tmp_path / "build"
    result = sam("build", "--template", "template.yaml", "--build-dir", str(build_dir))
    assert result.returncode == 0, result.stdout + result.stderr

    # Then the layer holds the dependencies
    layer = build_dir / "DependenciesLayer" / "python"
    for package in ("aws_lambda_powertools", "requests", "aws_xray_sdk", "boto3"):
        assert (layer / package).is_dir(), package
    # arm64 wheels, as the function's architecture requires
    assert list(layer.glob("**/*aarch64*.so"))
    assert not list(layer.glob("**/*x86_64*.so"))
    # Bytecode for every module, for this Python version, never checked against the source
    # (Lambda's /opt is read-only: without it every cold start compiles the layer)
    sources = [path for path in layer.glob("**/*.py") if "bin" not in path.relative_to(layer).parts]
    assert len(sources) > 100
    for source in sources:
        header = Path(importlib.util.cache_from_source(str(source))).read_bytes()[:8]
        assert header[:4] == importlib.util.MAGIC_NUMBER, source
        assert int.from_bytes(header[4:8], "little") == UNCHECKED_HASH_FLAGS, source

    # ...and each function (the consumer and the breaker controller, both CodeUri functions/)
    # holds only our packages: its own, the other's, and the code both import (shared)
    for function, handler in (
        ("ConsumerFunction", "consumer"),
        ("BreakerControllerFunction", "breaker_controller"),
    ):
        function_dir = build_dir / function
        assert sorted(path.name for path in function_dir.iterdir()) == [
            "breaker_controller",
            "consumer",
            "shared",
        ]
        assert (function_dir / handler / "app.py").is_file()
