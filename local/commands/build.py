"""`sam build` for the commands that run the built function, once their flags were accepted.

`make run`, `make up`, `make invoke` and `make soak` hand their command line to Python first, so
that a bad flag or --help answers at once; then Python asks make for the build
(LOCAL_BUILD_COMMAND, set by the Makefile to `make build`), whose dependency rules run
`sam build` only when functions/, layers/, template.yaml or samconfig.toml changed since the
last one. Without that variable (the module run by hand, the tests) nothing is built: the
build in .aws-sam/build is used as it is.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys

from local.shared.paths import ROOT

BUILD_COMMAND_VARIABLE = "LOCAL_BUILD_COMMAND"


def build_if_stale() -> str | None:
    """Run the build command, if any; None when the build is up to date, else why not.

    Its output goes to standard error: `make invoke`'s standard output is the function's
    response and nothing else."""
    command = os.environ.get(BUILD_COMMAND_VARIABLE, "").strip()
    if not command:
        return None
    sys.stdout.flush()
    done = subprocess.run(shlex.split(command), cwd=ROOT, stdout=sys.stderr, check=False)
    if done.returncode != 0:
        return (
            f"the build failed ({command} exited {done.returncode}; its output is above): "
            "see docs/troubleshooting.md, 'sam build fails'"
        )
    return None
