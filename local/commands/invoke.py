"""`make invoke EVENT=events/<file>.json`: one invocation of the built function, without Docker.

The stack is deployed into the embedded emulator, the demo downstream answers (bodies with
{"simulate": ...} as they ask, 200 otherwise), and the event runs once in the same Lambda-like
execution environment `make run` uses.

Template parameters, from lowest to highest precedence: the template's defaults, the
parameter_overrides of samconfig.toml's [ENV.deploy.parameters] (--config-env ENV; make invoke
ENV=prod), then --parameter-overrides (as `sam local invoke --parameter-overrides` takes them).
The function calls the demo downstream unless --parameter-overrides DownstreamUrl=... or the
environment variable DOWNSTREAM_URL names another; ENV's DownstreamUrl (the deployed stack's real
service) is never called from here.

Standard output is the function's response JSON and nothing else (`make invoke | jq .`); the
function's log and every other line go to standard error. Exit status: 0 when the invocation
succeeded, 1 when it failed or the event file is missing or not JSON, 2 for invalid arguments
(flags, ENV, overrides the template refuses).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from local.aws.deploy import DeployError, deploy
from local.aws.emulator import endpoint_override_note, running_emulator
from local.aws.samconfig import (
    SAMCONFIG,
    AppliedOverrides,
    SamconfigError,
    check_names,
    deploy_overrides,
    describe,
    parse_parameter_overrides,
)
from local.aws.template import BUILD_DIR, SOURCE_TEMPLATE, ParameterError, load_template
from local.commands.build import build_if_stale
from local.commands.run_options import STACK_NAME
from local.downstream.demo_downstream import DemoDownstream, FailurePlan
from local.lambda_service.execution_environment import (
    ExecutionEnvironment,
    FunctionSpec,
    Invocation,
    Setup,
)
from local.lambda_service.function_code import install_code
from local.shared import log

EXIT_FAILED = 1
EXIT_INVALID = 2


def invoke_once(
    event_path: Path,
    build_dir: Path,
    work_dir: Path,
    log_out: TextIO,
    parameters: Mapping[str, str] | None = None,
) -> Invocation:
    """Deploy with these parameter values and invoke once; without a DownstreamUrl among them
    the demo downstream answers."""
    event = json.loads(event_path.read_text())
    note = endpoint_override_note()
    if note is not None:
        print(f"note: {note}", file=log_out)
    parameters = dict(parameters or {})
    with _downstream(parameters, log_out) as url, running_emulator() as emulator:
        deployed = deploy(emulator, build_dir, STACK_NAME, {**parameters, "DownstreamUrl": url})
        event = pointed_at(event, deployed.outputs["SourceQueueArn"], log_out)
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


# The template names a stack's source queue after the stack's id (docs/deploy-safety.md): the
# sample events name the tests' placeholder id, which a fresh deployment does not have.
_TEMPLATE_SOURCE_QUEUE = re.compile(r":sqs-backoff-[0-9a-f-]{36}-source(\.fifo)?$")


def pointed_at(event: Any, source_queue_arn: str, log_out: TextIO) -> Any:
    """The event with its SQS records' eventSourceARN set to the deployed source queue's where
    they name a source queue of this template (the function asks SQS for the queue by that
    name when it reschedules a record); any other ARN is left as it is."""
    records = event.get("Records") if isinstance(event, dict) else None
    if not isinstance(records, list):
        return event
    moved = 0
    for record in records:
        arn = record.get("eventSourceARN") if isinstance(record, dict) else None
        if isinstance(arn, str) and arn != source_queue_arn and _TEMPLATE_SOURCE_QUEUE.search(arn):
            record["eventSourceARN"] = source_queue_arn
            moved += 1
    if moved:
        print(
            f"event: {moved} record(s) pointed at this deployment's source queue "
            f"{source_queue_arn}",
            file=log_out,
        )
    return event


@contextmanager
def _downstream(parameters: Mapping[str, str], log_out: TextIO) -> Iterator[str]:
    """The URL the function calls: the parameters' DownstreamUrl, or the demo downstream's
    while it serves."""
    if "DownstreamUrl" in parameters:
        print(f"downstream: {parameters['DownstreamUrl']}", file=log_out)
        yield parameters["DownstreamUrl"]
        return
    downstream = DemoDownstream(FailurePlan())
    with downstream.serving():
        print(f"downstream: {downstream.url} (the demo downstream)", file=log_out)
        yield downstream.url


def parameters_from(
    config_env: str | None,
    overrides: Sequence[str],
    own_downstream_url: str | None,
    samconfig: Path = SAMCONFIG,
) -> tuple[dict[str, str], list[str]]:
    """The parameter values to deploy with (template defaults < ENV < --parameter-overrides)
    and the lines that say where they came from; SamconfigError when they cannot be used."""
    names = load_template(SOURCE_TEMPLATE)["Parameters"]
    try:
        given = parse_parameter_overrides(list(overrides))
    except SamconfigError as error:
        raise SamconfigError(f"--parameter-overrides: {error}") from None
    check_names(given, names, "--parameter-overrides")
    values: dict[str, str] = {}
    lines: list[str] = []
    if config_env is not None:
        env = deploy_overrides(config_env, samconfig)
        check_names(env.values, names, env.source)
        replaced: dict[str, str] = {}
        for name, value in env.values.items():
            if name == "DownstreamUrl":
                replaced[name] = "the deployed stack's service is not called from here"
            elif name in given:
                replaced[name] = "--parameter-overrides given"
            else:
                values[name] = value
        lines.append(AppliedOverrides(config_env, dict(values), replaced).line())
    if given:
        lines.append(f"--parameter-overrides: {describe(given)}")
    values |= given
    if "DownstreamUrl" not in values and own_downstream_url:
        values["DownstreamUrl"] = own_downstream_url
        lines.append(f"DOWNSTREAM_URL: {own_downstream_url}")
    return values, lines


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="make invoke EVENT=... INVOKE_ARGS=...",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "event", type=Path, help="a JSON event file, e.g. events/sqs-single-success.json"
    )
    p.add_argument(
        "--config-env",
        metavar="ENV",
        help="samconfig.toml environment whose [ENV.deploy.parameters] parameter_overrides "
        "apply (make invoke ENV=prod); its DownstreamUrl is not called",
    )
    p.add_argument(
        "--build-dir",
        type=Path,
        default=BUILD_DIR,
        help="sam build's output to invoke (default: .aws-sam/build, where make invoke builds)",
    )
    p.add_argument(
        "--parameter-overrides",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help='template parameters, as sam local invoke takes them: Key=Value Key2="v a l"; '
        "they win over ENV's; DownstreamUrl=http://127.0.0.1:PORT/... makes the function call "
        "that URL instead of the demo downstream",
    )
    return p


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    p = parser()
    args = p.parse_args(argv)
    if not args.event.is_file():
        p.error(f"event file {args.event} not found")
    log.configure(sys.stderr)
    try:
        parameters, lines = parameters_from(
            args.config_env, args.parameter_overrides, os.environ.get("DOWNSTREAM_URL")
        )
    except SamconfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_INVALID
    problem = build_if_stale()
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_FAILED
    for line in lines:
        print(line, file=sys.stderr)
    try:
        with tempfile.TemporaryDirectory(prefix="local-invoke-") as work_dir:
            invocation = invoke_once(
                args.event, args.build_dir, Path(work_dir), sys.stderr, parameters
            )
    except json.JSONDecodeError as error:
        print(f"error: {args.event} is not a JSON event: {error}", file=sys.stderr)
        return EXIT_FAILED
    except ParameterError as error:
        print(f"error: the template refuses these parameters: {error}", file=sys.stderr)
        return EXIT_INVALID
    except DeployError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_FAILED
    print(
        f"invocation {invocation.request_id}: {invocation.outcome} "
        f"in {invocation.duration_seconds * 1000:.0f} ms",
        file=sys.stderr,
    )
    print(json.dumps(invocation.response if invocation.succeeded else invocation.error, indent=2),
          file=out)  # fmt: skip
    return 0 if invocation.succeeded else EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
