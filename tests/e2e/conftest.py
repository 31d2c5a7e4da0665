"""One sam build for every end-to-end test."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from local.template import ROOT


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    build_dir = tmp_path_factory.mktemp("sam") / "build"
    # The virtual environment's SAM CLI, which also looks for python3.13 on PATH.
    bin_dir = Path(sys.executable).parent
    subprocess.run(
        [str(bin_dir / "sam"), "build", "--build-dir", str(build_dir)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        env={
            **os.environ,
            "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "SAM_CLI_TELEMETRY": "0",
        },
    )
    return build_dir
