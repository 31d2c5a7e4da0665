"""The import contracts in pyproject.toml (what `make lint` checks with lint-imports) hold for the
code as it is, and each one refuses the arrow it exists to forbid: a copy of the code with one
such import added fails, naming the contract and the import."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from local.shared.paths import ROOT

LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
PACKAGES = ("local", "functions", "tools", "benchmarks")


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    """lint-imports over `tree` with its pyproject.toml, functions/ on the path as in make lint."""
    # A wide console: a contract's name and its KEPT or BROKEN stay on one line.
    env = {**os.environ, "PYTHONPATH": str(tree / "functions"), "COLUMNS": "200"}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(tree / "pyproject.toml")],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture
def copy_of_the_code(tmp_path: Path) -> Path:
    """The project's packages and pyproject.toml, copied where a test may break them."""
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def add_import(module: Path, line: str) -> None:
    """Append an import to a module, as a careless change would."""
    module.write_text(module.read_text() + f"\n{line}  # noqa\n")


def test_the_code_keeps_every_contract() -> None:
    # Given the code as it is, When lint-imports checks it
    done = lint_imports(ROOT)
    # Then every contract is kept
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract", "arrow"),
    [
        (
            "local/shared/paths.py",
            "from local.commands import run",
            "local/: commands > checks",
            "local.shared.paths -> local.commands.run",
        ),
        (
            "local/aws/emulator.py",
            "from local.lambda_service import execution_environment",
            "local/: commands > checks",
            "local.aws.emulator -> local.lambda_service.execution_environment",
        ),
        (
            "local/lambda_service/scheduler.py",
            "from local.downstream import faults",
            "local/: commands > checks",
            "local.lambda_service.scheduler -> local.downstream.faults",
        ),
        (
            "local/downstream/faults.py",
            "from local.aws import template",
            "local/downstream knows nothing of the AWS side",
            "local.downstream.faults -> local.aws.template",
        ),
        (
            "local/checks/estimate.py",
            "import benchmarks.report",
            "below the commands import neither tools/ nor benchmarks/",
            "local.checks.estimate -> benchmarks.report",
        ),
        (
            "functions/consumer/sqs_actions.py",
            "import consumer.app",
            "functions/consumer/: each module imports only those below it",
            "consumer.sqs_actions -> consumer.app",
        ),
        (
            "functions/consumer/sqs_actions.py",
            "import local.shared.paths",
            "The deployed functions import nothing",
            "consumer.sqs_actions -> local.shared.paths",
        ),
        (
            "functions/shared/deadline.py",
            "import local.shared.paths",
            "The deployed functions import nothing",
            "shared.deadline -> local.shared.paths",
        ),
        (
            "functions/shared/errors.py",
            "import shared.downstream",
            "functions/shared/: each module imports only those below it",
            "shared.errors -> shared.downstream",
        ),
        (
            "functions/shared/backoff.py",
            "import consumer.sqs_batch",
            "functions/shared/ imports neither function",
            "shared.backoff -> consumer.sqs_batch",
        ),
        (
            "functions/shared/breaker_policy/rules.py",
            "import breaker_controller.controller",
            "functions/shared/ imports neither function",
            "shared.breaker_policy.rules -> breaker_controller.controller",
        ),
        (
            "functions/consumer/sqs_actions.py",
            "import breaker_controller.config",
            "The consumer and the breaker controller import nothing of each other",
            "consumer.sqs_actions -> breaker_controller.config",
        ),
        (
            "functions/breaker_controller/errors.py",
            "import consumer.sqs_actions",
            "The consumer and the breaker controller import nothing of each other",
            "breaker_controller.errors -> consumer.sqs_actions",
        ),
    ],
)
def test_an_import_against_a_contract_fails_the_check(
    copy_of_the_code: Path, module: str, line: str, contract: str, arrow: str
) -> None:
    # Given a copy of the code with one import that a contract forbids
    add_import(copy_of_the_code / module, line)
    # When lint-imports checks it
    done = lint_imports(copy_of_the_code)
    # Then the check fails, naming the broken contract and the import
    assert done.returncode != 0
    broken = [text for text in done.stdout.splitlines() if text.endswith("BROKEN")]
    assert any(contract in text for text in broken), done.stdout
    assert arrow in done.stdout
