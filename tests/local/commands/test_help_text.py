"""--help says each default once, as it applies to the command: no "(default: None)", no flag
whose help states one default and argparse's note another."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable

import pytest

from local.commands import run, soak, up

PARSERS: dict[str, Callable[[], argparse.ArgumentParser]] = {
    "make run": run.parser,
    "make up": up.parser,
    "make soak": soak.parser,
}


def option_helps(p: argparse.ArgumentParser) -> dict[str, str]:
    """Each option's help as --help prints it, on one line."""
    text = p.format_help()
    helps: dict[str, str] = {}
    current = None
    for line in text.splitlines():
        match = re.match(r"^  (-{1,2}[\w-]+)", line)
        if match:
            current = match.group(1)
            helps[current] = line
        elif current and line.startswith("      "):
            helps[current] += " " + line.strip()
        else:
            current = None
    return helps


@pytest.mark.parametrize("command", PARSERS)
def test_every_default_is_said_once_and_never_as_none(command: str) -> None:
    # Given the command's --help
    helps = option_helps(PARSERS[command]())
    assert "--messages" in helps
    # Then no option's default is None, and none says "default" twice
    for flag, text in helps.items():
        assert "(default: None)" not in text, f"{command} {flag}: {text}"
        assert len(re.findall(r"\bdefault\b", text)) <= 1, f"{command} {flag}: {text}"


def test_make_ups_defaults_are_its_own() -> None:
    # Given make up, which sends nothing and fails nothing unless asked
    helps = option_helps(up.parser())
    # Then its help says so, not make run's demo defaults
    assert "(default: 0)" in helps["--failure-rate"]
    assert "(default: 0," in helps["--outage"]
    assert "(default: 0.4" in option_helps(run.parser())["--failure-rate"]
