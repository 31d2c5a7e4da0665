"""`make deploy ENV=prod OVERRIDES="DownstreamUrl=https://..."`: `sam deploy --config-env ENV`
with the environment's parameter_overrides from samconfig.toml and OVERRIDES laid on top.

`sam deploy --config-env prod --parameter-overrides K=V` alone does not do that: the SAM CLI
takes samconfig's parameter_overrides as the flag's default, so a flag given replaces the whole
list. The parameters it then leaves out get UsePreviousValue on an existing stack
(samcli.commands.deploy.deploy_context.DeployContext.merge_parameters) and the template's
defaults on a new one: either way, the environment's own values are not applied. This command
passes the merged list, so the flag always carries every value of the environment.

Before deploying it reads the stack, if there is one, and refuses an update that would replace
the source queue (a QueueType change, or the first update of a stack made by a template that
named its queues after the stack's name): CloudFormation keeps the old queue
(UpdateReplacePolicy: Retain) but nothing consumes it afterwards. --allow-queue-replacement
(ALLOW_QUEUE_REPLACEMENT=1) goes ahead; docs/deploy-safety.md says how to drain the old queue.

Exit status: sam deploy's; 2 when the overrides or ENV cannot be used, or the update is refused.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from local.aws.queue_replacement import queue_replacement, refusal
from local.aws.samconfig import (
    SAMCONFIG,
    SamconfigError,
    check_names,
    deploy_overrides,
    describe,
    parse_parameter_overrides,
)
from local.aws.template import SOURCE_TEMPLATE, load_template
from local.commands.send import stack_name_from_samconfig

EXIT_REFUSED = 2


class DeployRefused(RuntimeError):
    """The deploy would lose settings or strand messages; the message says what to do."""


@dataclass(frozen=True)
class DeployedStack:
    """What the guard needs of a stack that exists."""

    stack_id: str
    parameters: dict[str, str]
    source_queue_name: str


def merged_overrides(
    env: str, overrides: str, samconfig: Path = SAMCONFIG, template_path: Path = SOURCE_TEMPLATE
) -> dict[str, str]:
    """ENV's parameter_overrides with `overrides` (the SAM CLI's Key=Value form) on top, each
    name checked against the template."""
    from_env = deploy_overrides(env, samconfig)
    given = parse_parameter_overrides(overrides or None)
    parameters = load_template(template_path)["Parameters"]
    check_names(given, parameters, "OVERRIDES")
    return {**from_env.values, **given}


def read_stack(cloudformation: Any, stack_name: str) -> DeployedStack | None:
    """The stack as deployed; None when there is none yet."""
    try:
        [stack] = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as error:
        # CloudFormation answers a missing stack with the generic ValidationError code; only
        # its message tells ("Stack with id X does not exist"), which the SAM CLI reads too
        # (samcli.lib.deploy.deployer.Deployer.has_stack).
        if "does not exist" in str(error.response.get("Error", {}).get("Message", "")):
            return None
        raise
    if stack["StackStatus"] == "REVIEW_IN_PROGRESS":
        # A change set was created and never executed: nothing is deployed.
        return None
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    return DeployedStack(
        stack_id=stack["StackId"],
        parameters={p["ParameterKey"]: p.get("ParameterValue", "") for p in stack["Parameters"]},
        source_queue_name=outputs.get("SourceQueueUrl", "").rstrip("/").rsplit("/", 1)[-1],
    )


def replacement_of(stack: DeployedStack, values: Mapping[str, str]) -> str | None:
    """Why deploying `values` would replace the stack's source queue, or None."""
    return queue_replacement(stack.stack_id, stack.parameters, stack.source_queue_name, values)


def guard(stack: DeployedStack | None, values: Mapping[str, str], *, allow: bool) -> str | None:
    """Refuse what would lose settings or strand messages (DeployRefused); a note when the
    replacement was allowed."""
    if stack is None:
        if "DownstreamUrl" not in values:
            raise DeployRefused(
                "a new stack needs DownstreamUrl: add DownstreamUrl=https://... to the "
                "environment's parameter_overrides in samconfig.toml, or pass "
                'OVERRIDES="DownstreamUrl=https://..."'
            )
        return None
    reason = replacement_of(stack, values)
    if reason is None:
        return None
    if not allow:
        raise DeployRefused("refused: " + refusal(reason, "ALLOW_QUEUE_REPLACEMENT=1"))
    return f"allowed: {reason}; the old queues are retained: drain them (docs/deploy-safety.md)"


def sam_deploy_argv(
    sam: str, env: str, values: Mapping[str, str], extra: Sequence[str]
) -> list[str]:
    """sam deploy with every value of the environment and the user's on its flag."""
    pairs = [describe({name: value}) for name, value in values.items()]
    return [
        sam,
        "deploy",
        "--config-env",
        env,
        *(["--parameter-overrides", *pairs] if pairs else []),
        *extra,
    ]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="make deploy", description=__doc__.split("\n\n")[0])
    p.add_argument("--config-env", default="default", help="samconfig.toml environment (ENV)")
    p.add_argument(
        "--overrides",
        default=os.environ.get("OVERRIDES", ""),
        help="Key=Value pairs laid over ENV's parameter_overrides (OVERRIDES)",
    )
    p.add_argument(
        "--allow-queue-replacement",
        action="store_true",
        default=os.environ.get("ALLOW_QUEUE_REPLACEMENT", "").lower() in {"1", "true", "yes"},
        help="deploy even when the update replaces the queues (ALLOW_QUEUE_REPLACEMENT=1)",
    )
    p.add_argument("--region", help="AWS region (default: the SDK's configuration)")
    p.add_argument("--sam", default="sam", help=argparse.SUPPRESS)
    p.add_argument("--samconfig", type=Path, default=SAMCONFIG, help=argparse.SUPPRESS)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args, extra = parser().parse_known_args(argv)
    try:
        values = merged_overrides(args.config_env, args.overrides, args.samconfig)
        stack_name = stack_name_from_samconfig(args.config_env, args.samconfig)
        cloudformation = boto3.session.Session(region_name=args.region).client("cloudformation")
        note = guard(
            read_stack(cloudformation, stack_name), values, allow=args.allow_queue_replacement
        )
    except (SamconfigError, ValueError, DeployRefused) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_REFUSED
    except (BotoCoreError, ClientError) as error:
        # No credentials, no region, no access: nothing was deployed.
        print(f"error: could not read the stack before deploying: {error}", file=sys.stderr)
        return EXIT_REFUSED
    if note:
        print(note, file=sys.stderr)
    command = sam_deploy_argv(args.sam, args.config_env, values, extra)
    shown = {name: "****" if name == "DownstreamUrl" else value for name, value in values.items()}
    print(f"parameters {describe(shown)}", file=sys.stderr)
    return subprocess.run(command, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
