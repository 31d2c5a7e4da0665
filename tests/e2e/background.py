"""Long local runs in a process of their own, started early and judged late.

The soak and the outage run spend minutes mostly waiting (on visibility timeouts, on the
breaker's one-minute probe schedule). In the test process they would run one after the other and
block every other test meanwhile; moto's backends live in one process, so two runs cannot share
it. Each runs instead in a spawned process that starts with the first end-to-end test and
writes its result to a file; the tests that judge it run last (see tests/conftest.py), while
the rest of the suite runs beside it.
"""

from __future__ import annotations

import io
import multiprocessing
import pickle
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from local.commands.run_options import RunOptions, RunResult
from local.commands.system import run_local_system

# Test modules whose runs go to the background: tests/e2e/conftest.py moves their tests to the
# end of the session.
BACKGROUND_MODULES = ("test_soak.py", "test_breaker_run.py", "test_breaker_off_while_open.py")
# Far beyond either run's own deadline: a run that has not ended by then has hung.
WAIT_SECONDS = 900


_LOCK = type(threading.Lock())
_RLOCK = type(threading.RLock())


class _Pickler(pickle.Pickler):
    """Pickles a run's result: the locks its logs kept while the run went on come back new."""

    def reducer_override(self, obj: object) -> Any:
        if isinstance(obj, _LOCK):
            return threading.Lock, ()
        if isinstance(obj, _RLOCK):
            return threading.RLock, ()
        return NotImplemented


def _run(options: RunOptions, result_path: Path) -> None:
    out = io.StringIO()
    try:
        outcome: object = (run_local_system(options, out), out.getvalue())
    except BaseException:
        # Reported to the test that waits for this run, with what the run printed.
        outcome = RuntimeError(f"the run failed:\n{traceback.format_exc()}\n{out.getvalue()}")
    with result_path.open("wb") as file:
        _Pickler(file).dump(outcome)


@dataclass
class BackgroundRun:
    process: BaseProcess
    result_path: Path

    @classmethod
    def start(cls, options: RunOptions, result_path: Path) -> BackgroundRun:
        # spawn, not fork: the test process has threads (servers, pools) a fork would copy
        # half-way through their work.
        process = multiprocessing.get_context("spawn").Process(
            target=_run, args=(options, result_path), name=f"run {result_path.parent.name}"
        )
        process.start()
        return cls(process, result_path)

    def result(self) -> tuple[RunResult, str]:
        self.process.join(WAIT_SECONDS)
        if self.process.is_alive():
            self.process.kill()
            raise TimeoutError(f"{self.process.name} did not end within {WAIT_SECONDS} s")
        if not self.result_path.exists():
            raise RuntimeError(
                f"{self.process.name} ended ({self.process.exitcode}) without a result"
            )
        outcome = pickle.loads(self.result_path.read_bytes())
        if isinstance(outcome, BaseException):
            raise outcome
        assert isinstance(outcome, tuple)
        return outcome


# name -> the run's options, given the build and a work directory. Test modules register their
# run when imported (at collection), so that the first end-to-end test can start every one.
Options = Callable[[Path, Path], RunOptions]
REGISTERED: dict[str, Options] = {}


def register(name: str, options: Options) -> None:
    REGISTERED[name] = options
