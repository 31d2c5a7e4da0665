"""sam build only when its inputs changed, and never before the flags were accepted: make's
rule for the build stamp lists every input, and the commands that run the built function ask
for the build (LOCAL_BUILD_COMMAND) only after parsing their flags."""

from __future__ import annotations

import shlex
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from local.commands import build, invoke, run, soak, up
from local.shared.paths import ROOT

MAINS: dict[str, Callable[[Sequence[str] | None], int]] = {
    "make run": run.main,
    "make up": up.main,
    "make invoke": invoke.main,
    "make soak": soak.main,
}


def stamp_prerequisites() -> set[str]:
    """The build stamp's prerequisites, as make itself reads the Makefile (-p: its database)."""
    database = subprocess.run(
        ["make", "-pn", "build"], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout
    [rule] = [line for line in database.splitlines() if line.startswith(".aws-sam/.built:")]
    return set(rule.split(":", 1)[1].split())


def test_the_build_depends_on_every_input_and_nothing_else() -> None:
    # Given the files sam build reads: the template, samconfig's build parameters, the
    # function's code and the layer's recipe
    inputs = {"template.yaml", "samconfig.toml"} | {
        str(path.relative_to(ROOT))
        for folder in ("functions", "layers")
        for path in (ROOT / folder).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }
    # When make reads the rule of the build stamp
    prerequisites = stamp_prerequisites()
    # Then every input is a prerequisite (and the venv, whose SAM CLI builds), and no other
    # file of the repository is: editing the docs or the tests builds nothing
    assert "layers/requirements.txt" in inputs
    assert inputs <= prerequisites
    others = {p for p in prerequisites - inputs if not p.startswith(".venv/")}
    assert others == set()


@pytest.mark.parametrize("command", MAINS)
@pytest.mark.parametrize("flags", [["--help"], ["--no-such-flag"]], ids=["help", "bad flag"])
def test_help_and_bad_flags_answer_before_any_build(
    command: str, flags: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a build command that leaves a mark when it runs
    mark = tmp_path / "built"
    marker = f"{shlex.quote(sys.executable)} -c \"open({str(mark)!r}, 'w')\""
    monkeypatch.setenv(build.BUILD_COMMAND_VARIABLE, marker)
    argv = [*flags] if command != "make invoke" else ["events/sqs-single-success.json", *flags]
    # When the command is given --help or a flag it does not know
    with pytest.raises(SystemExit):
        MAINS[command](argv)
    # Then it answered without building
    assert not mark.exists()


def test_the_build_command_runs_and_its_failure_is_said(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a build command that succeeds, Then it runs
    mark = tmp_path / "built"
    monkeypatch.setenv(
        build.BUILD_COMMAND_VARIABLE,
        f"{shlex.quote(sys.executable)} -c \"open({str(mark)!r}, 'w')\"",
    )
    assert build.build_if_stale() is None
    assert mark.exists()
    # Given one that fails, Then the failure says so and where to look
    monkeypatch.setenv(build.BUILD_COMMAND_VARIABLE, f"{shlex.quote(sys.executable)} -c 'exit(3)'")
    problem = build.build_if_stale()
    assert problem is not None
    assert "exited 3" in problem
    assert "troubleshooting" in problem
    # Given none (the module run by hand, the tests), Then nothing is built
    monkeypatch.delenv(build.BUILD_COMMAND_VARIABLE)
    assert build.build_if_stale() is None
