"""samconfig.toml's environments as the SAM CLI reads them, for the local system.

`sam deploy --config-env ENV` takes its options from [ENV.global.parameters] overlaid by
[ENV.deploy.parameters] (samcli.lib.config.samconfig.SamConfig.get_all: a key of the command's
table replaces the same key of the global one), and parses `parameter_overrides` with the SAM
CLI's own click type, CfnParameterOverridesType. The SAM CLI's configuration file guide
(https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/serverless-sam-cli-config.html)
documents the environment.command.parameters tables, `global` applying to every command, and
command-line options taking precedence over the file. Both forms of parameter_overrides work:

    parameter_overrides = "LogLevel=INFO Name=\\"a value with spaces\\""
    parameter_overrides = ["LogLevel=INFO", "Name=\\"a value with spaces\\""]

The parsing is the SAM CLI's (installed in .venv, pinned in requirements-dev.txt), not a copy:
tests/local/aws/test_samconfig.py pins its behaviour on these forms, so that an upgrade that changes
it shows there. One thing is stricter here: text the SAM CLI would silently drop ("A=1 junk" gives
A=1 and nothing for "junk"; a value with an unquoted space) is an error.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from samcli.cli.types import CfnParameterOverridesType

from local.shared.paths import ROOT

SAMCONFIG = ROOT / "samconfig.toml"


class SamconfigError(ValueError):
    """samconfig.toml, or a parameter_overrides value, that cannot be used as asked."""


@dataclass(frozen=True)
class EnvOverrides:
    """An environment's deploy parameter_overrides, as `sam deploy --config-env` would pass."""

    env: str
    # Parameter name -> value, in the order written.
    values: dict[str, str]
    # Where they come from, for messages: "samconfig.toml [prod.deploy.parameters]".
    source: str


@dataclass(frozen=True)
class AppliedOverrides:
    """What an environment's overrides became in the local deployment, for the line printed
    before it: "ENV prod: LogLevel=INFO MaximumConcurrency=20 ..."."""

    env: str
    # Name -> value, deployed as given.
    applied: dict[str, str]
    # Name -> why it was not deployed as given ("--max-receive-count 6 given").
    replaced: dict[str, str]

    def line(self) -> str:
        text = f"ENV {self.env}: {describe(self.applied) or 'no parameter overrides'}"
        if self.replaced:
            text += "; not applied: " + ", ".join(
                f"{name} ({why})" for name, why in self.replaced.items()
            )
        return text


def config_envs(samconfig: Path = SAMCONFIG) -> list[str]:
    """The environments (top-level tables) of a samconfig.toml, in file order."""
    return _envs(_read(samconfig))


def _envs(document: Mapping[str, Any]) -> list[str]:
    return [name for name, value in document.items() if isinstance(value, dict)]


def deploy_overrides(env: str, samconfig: Path = SAMCONFIG) -> EnvOverrides:
    """ENV's parameter_overrides for `sam deploy`; an unknown ENV is an error naming the ones
    there are (the SAM CLI would carry on with no configuration at all)."""
    document = _read(samconfig)
    envs = _envs(document)
    if env not in envs:
        raise SamconfigError(
            f"{samconfig.name} has no environment {env!r}: its environments are "
            f"{', '.join(envs) or '(none)'}"
        )
    tables = document[env]
    options = {
        **tables.get("global", {}).get("parameters", {}),
        **tables.get("deploy", {}).get("parameters", {}),
    }
    source = f"{samconfig.name} [{env}.deploy.parameters]"
    try:
        values = parse_parameter_overrides(options.get("parameter_overrides"))
    except SamconfigError as error:
        raise SamconfigError(f"{source} parameter_overrides: {error}") from None
    return EnvOverrides(env, values, source)


def parse_parameter_overrides(value: Any) -> dict[str, str]:
    """`Key=Value Key2="v a l"` strings, lists of them (each may hold several pairs), or the
    SAM CLI's other forms (ParameterKey=K,ParameterValue=V; file://params.yaml), as the SAM CLI
    parses --parameter-overrides and samconfig's parameter_overrides."""
    if value is None:
        return {}
    items = value if isinstance(value, list | tuple) else [value]
    for item in items:
        if isinstance(item, str):
            _refuse_leftovers(item)
    try:
        parsed: dict[str, str] = CfnParameterOverridesType().convert(value, param=None, ctx=None)
    except click.BadParameter as error:
        raise SamconfigError(error.message) from None
    return parsed


def _refuse_leftovers(item: str) -> None:
    """Whatever the SAM CLI's patterns do not match, which it would ignore without a word."""
    if item.strip() == "" or item.startswith("file://"):
        return
    normalized = " " + item.strip()
    for pattern in CfnParameterOverridesType.ordered_pattern_match:
        if re.search(pattern, normalized):
            leftover = re.sub(pattern, "", normalized).strip()
            if leftover:
                raise SamconfigError(
                    f"{item!r}: cannot read {leftover!r} (write Key=Value pairs separated by "
                    f'spaces; quote a value with spaces: Key="a b")'
                )
            return
    # No pattern matches at all: the SAM CLI's own error says what the forms are.


def check_names(values: Mapping[str, str], parameters: Collection[str], source: str) -> None:
    """Refuse overrides naming a parameter the template does not have (CloudFormation refuses
    the stack; a typo would otherwise leave the default in place without a word)."""
    problems = []
    for name in values:
        if name not in parameters:
            [*close] = difflib.get_close_matches(name, parameters, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            problems.append(f"{name} is not a parameter of the template{hint}")
    if problems:
        raise SamconfigError(f"{source}: {'; '.join(problems)}")


def describe(values: Mapping[str, str]) -> str:
    """`Key=Value Key2="v a l"`: how the values print, quoted where they would not read back."""

    def quoted(value: str) -> str:
        if value and not re.search(r"[\s\"']", value):
            return value
        return '"' + value.replace('"', '\\"') + '"'

    return " ".join(f"{name}={quoted(value)}" for name, value in values.items())


def _read(samconfig: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(samconfig.read_text())
    except OSError as error:
        raise SamconfigError(f"cannot read {samconfig}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise SamconfigError(f"{samconfig} is not valid TOML: {error}") from None
