"""`make invoke EVENT=events/<file>.json`: one invocation of the built function, without Docker.

The stack is deployed into the embedded emulator, the demo downstream answers (bodies with
{"simulate": ...} as they ask, 200 otherwise), and the event runs once in the same Lambda-like
execution environment `make run` uses. The function's log goes to standard error, the response to
standard output; the exit status is 1 when the invocation failed.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from local import log
from local.demo_downstream import DemoDownstream, FailurePlan
from local.deploy import DeployError, deploy
from local.emulator import endpoint_override_note, running_emulator
from local.execution_environment import ExecutionEnvironment, FunctionSpec, Invocation, Setup
from local.function_code import install_code
from local.system import STACK_NAME
from local.template import BUILD_DIR


def invoke_once(event_path: Path, build_dir: Path, work_dir: Path, log_out: TextIO) -> Invocation:
    event = json.loads(event_path.read_text())
    note = endpoint_override_note()
    if note is not None:
        print(f"note: {note}", file=log_out)
    downstream = DemoDownstream(FailurePlan())
    with running_emulator() as emulator, downstream.serving():
        deployed = deploy(emulator, build_dir, STACK_NAME, {"DownstreamUrl": downstream.url})
        code = install_code(emulator, deployed, work_dir / "code")
        setup = Setup(
            FunctionSpec.from_configuration(deployed.function),
            code,
            emulator.endpoint_url,
            emulator.region,
        )
        environment = ExecutionEnvironment(setup, work_dir / "environment.log")
        try:
            invocation = environment.invoke(event)
        finally:
            environment.shutdown()
    log_out.write((work_dir / "environment.log").read_text())
    return invocation


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    parser = argparse.ArgumentParser(prog="make invoke EVENT=...", description=__doc__)
    parser.add_argument(
        "event", type=Path, help="a JSON event file, e.g. events/sqs-single-success.json"
    )
    args = parser.parse_args(argv)
    if not args.event.is_file():
        parser.error(f"event file {args.event} not found")
    log.configure(sys.stderr)
    try:
        with tempfile.TemporaryDirectory(prefix="local-invoke-") as work_dir:
            invocation = invoke_once(args.event, BUILD_DIR, Path(work_dir), sys.stderr)
    except json.JSONDecodeError as error:
        print(f"error: {args.event} is not a JSON event: {error}", file=sys.stderr)
        return 1
    except DeployError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(
        f"invocation {invocation.request_id}: {invocation.outcome} "
        f"in {invocation.duration_seconds * 1000:.0f} ms",
        file=sys.stderr,
    )
    print(json.dumps(invocation.response if invocation.succeeded else invocation.error, indent=2),
          file=out)  # fmt: skip
    return 0 if invocation.succeeded else 1


if __name__ == "__main__":
    sys.exit(main())
