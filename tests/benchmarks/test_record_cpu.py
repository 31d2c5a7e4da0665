"""`make bench-record-cpu` works: every contender's CPU per record, and the profile when asked.

Not a timed test: one tiny round in a process of its own (the harness sets the function's
environment), checked for shape only.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from local.shared.paths import ROOT


def test_it_reports_each_contender_and_profiles_the_project() -> None:
    # Given one round, records delivered one after another, with two batches profiled
    arguments = ["--delivery-concurrency", "1", "--repeats", "1", "--cpu-batches", "1"]

    # When the harness runs
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.record_cpu", *arguments, "--profile", "2"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": f"{ROOT / 'functions'}{os.pathsep}{ROOT}"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    # Then each contender has a positive figure, and the profile went through the handler
    assert completed.returncode == 0, completed.stderr
    figures = json.loads(completed.stdout.splitlines()[-1])
    assert set(figures) == {"project", "powertools_sequential", "ideal_pool"}
    assert all(figure["median"] > 0 for figure in figures.values())
    assert "DeliveryConcurrency 1" in completed.stdout
    assert "Over Powertools sequential's, round by round:" in completed.stdout
    assert "lambda_handler" in completed.stdout
