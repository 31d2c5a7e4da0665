"""The end-to-end tests' runs of the local system, on the session's one sam build (`built`)."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path
from typing import Any

import pytest

from local.commands.run_options import RunOptions, RunResult
from local.commands.system import run_local_system
from tests.e2e.background import BACKGROUND_MODULES, REGISTERED, BackgroundRun


def short_run(built: Path, work_dir: Path, **options: Any) -> tuple[RunResult, str]:
    """A short local run (no outage, no latency, retries within seconds) with these options;
    its result and what it printed."""
    chosen = dataclasses.replace(
        RunOptions(),
        outage_seconds=0,
        latency_ms=0,
        backoff_base_seconds=0,
        backoff_jitter_seconds=2,
        build_dir=built,
        work_dir=work_dir,
        **options,
    )
    out = io.StringIO()
    return run_local_system(chosen, out), out.getvalue()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests that judge a background run go last: the rest of the suite runs meanwhile."""
    items.sort(key=lambda item: item.path.name in BACKGROUND_MODULES)


@pytest.fixture(scope="session", autouse=True)
def background_runs(
    built: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, BackgroundRun]:
    """Starts every registered long run with the first end-to-end test (see background.py)."""
    runs = {}
    for name, options in REGISTERED.items():
        work = tmp_path_factory.mktemp(name)
        runs[name] = BackgroundRun.start(options(built, work / "run"), work / "result.pickle")
    return runs
