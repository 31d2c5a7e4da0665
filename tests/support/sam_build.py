"""One `sam build` of the template into a folder of the test session's own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from local.shared.paths import ROOT


def sam_build(build_dir: Path) -> Path:
    """Build the function and its layer into `build_dir` with the virtual environment's SAM CLI
    (which also looks for python3.13 on PATH); return `build_dir`."""
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
