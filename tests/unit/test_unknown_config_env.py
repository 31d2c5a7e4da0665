"""make send, make dlq-peek and make redrive refuse an ENV samconfig.toml does not have, as make
run does, before asking anything of AWS (no "no AWS region", no "no stack_name")."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from local.commands import send
from tools import dlq_peek, redrive

MAINS: dict[str, Callable[[Sequence[str] | None], int]] = {
    "make send": send.main,
    "make dlq-peek": dlq_peek.main,
    "make redrive": redrive.main,
}


@pytest.mark.parametrize("command", MAINS)
def test_an_unknown_env_is_refused_naming_the_ones_there_are(
    command: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given no AWS region at all (the old message was about the region)
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    # When the command is run with an ENV samconfig.toml does not have
    with pytest.raises(SystemExit) as exit_:
        MAINS[command](["--config-env", "staging"])
    # Then it exits 2 (invalid arguments, as make run) and says which environments there are
    assert exit_.value.code == 2
    error = capsys.readouterr().err
    assert "samconfig.toml has no environment 'staging': its environments are default, prod" in (
        error
    )


def test_known_and_local_envs_pass(tmp_path: Path) -> None:
    # Given a samconfig.toml with two environments
    samconfig = tmp_path / "samconfig.toml"
    samconfig.write_text('version = 0.1\n[default.global.parameters]\nstack_name = "a"\n[qa]\n')
    # Then they and local (the running make up) are known; another is not
    assert send.unknown_config_env("default", samconfig) is None
    assert send.unknown_config_env("qa", samconfig) is None
    assert send.unknown_config_env("local", samconfig) is None
    assert send.unknown_config_env("prod", samconfig) == (
        "samconfig.toml has no environment 'prod': its environments are default, qa "
        "(and local: the running make up)"
    )
