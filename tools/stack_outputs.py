"""Queue URLs and names from a deployed stack's outputs, as `make send` finds its queue.

The stack is --stack-name, else the stack_name of --config-env's samconfig.toml section. A flag
naming the resource itself (--dlq-url, ...) wins over the outputs, so the tools also work
against any SQS-compatible endpoint without a stack. --config-env local (`make dlq-peek
ENV=local`) names the running `make up`: its endpoint, credentials and queues
(local.commands.up_state).
"""

from __future__ import annotations

import argparse
from typing import Any

import boto3

from local.commands.send import stack_name_from_samconfig
from local.commands.up_state import LOCAL_ENV, require_running


def add_stack_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stack-name", help="stack whose outputs name the queues")
    parser.add_argument("--config-env", default="default", help="samconfig.toml section")
    parser.add_argument("--region", help="AWS region (default: the SDK's configuration)")


def session_for(args: argparse.Namespace) -> boto3.session.Session:
    """A session honouring AWS_REGION/AWS_DEFAULT_REGION, profiles and AWS_ENDPOINT_URL; with
    --config-env local, one that talks to the running `make up`."""
    if args.config_env == LOCAL_ENV:
        return require_running().session()
    session = boto3.session.Session(region_name=args.region)
    if not session.region_name:
        raise ValueError("no AWS region: pass --region or set AWS_REGION")
    return session


class StackOutputs:
    """Reads the outputs once, and only when a flag leaves a value to them."""

    def __init__(self, session: boto3.session.Session, args: argparse.Namespace) -> None:
        self._session = session
        self._args = args
        self._outputs: dict[str, str] | None = None

    def value(self, flag_value: str | None, output_key: str) -> str:
        if flag_value:
            return flag_value
        outputs = self._read()
        if output_key not in outputs:
            raise ValueError(f"stack {self._stack_name()} has no {output_key} output")
        return outputs[output_key]

    def _stack_name(self) -> str:
        if self._args.config_env == LOCAL_ENV and not self._args.stack_name:
            return require_running().stack_name
        return str(self._args.stack_name or stack_name_from_samconfig(self._args.config_env))

    def _read(self) -> dict[str, str]:
        if self._outputs is None:
            cloudformation: Any = self._session.client("cloudformation")
            [stack] = cloudformation.describe_stacks(StackName=self._stack_name())["Stacks"]
            self._outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
            if self._args.config_env == LOCAL_ENV:
                # The queue URLs the running emulator answers on its endpoint, not the
                # outputs' AWS-shaped ones.
                self._outputs.update(require_running().queues)
        return self._outputs
