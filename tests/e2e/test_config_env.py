"""samconfig environments locally: `make run ENV=prod` deploys prod's overrides; `make invoke`
takes ENV and --parameter-overrides and its standard output is the response JSON only."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from local.commands.run import options_from
from local.commands.system import run_local_system
from local.shared.paths import ROOT

pytestmark = pytest.mark.slow

EVENT = "events/sqs-single-success.json"
PROD_LINE = "ENV prod: LogLevel=INFO LogRetentionInDays=90 MaximumConcurrency=20 TracingMode=Active"


def _environ() -> dict[str, str]:
    """This environment without a parent make's variables (under `make test`, a make started
    here would otherwise print "Entering directory" lines on its standard output)."""
    bin_dir = Path(sys.executable).parent
    environ = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    return {**environ, "PATH": f"{bin_dir}{os.pathsep}{environ['PATH']}"}


def test_a_run_with_env_prod_deploys_prods_overrides(built: Path, tmp_path: Path) -> None:
    # Given the run's options with ENV=prod, as `make run ENV=prod RUN_ARGS=...` reads them
    flags = "--config-env prod --messages 3 --failure-rate 0 --outage 0 --latency-ms 0"
    options = dataclasses.replace(
        options_from(flags.split()), build_dir=built, work_dir=tmp_path / "run"
    )
    out = io.StringIO()
    # When the local system runs
    result = run_local_system(options, out)
    # Then the first line says which overrides were applied
    printed = out.getvalue().splitlines()
    assert printed[0] == PROD_LINE
    # And the emulator holds them: the mapping's concurrency (template default 10) and the
    # stack's parameters, which the poller uses
    [mapping] = result.deployed.event_source_mappings
    assert mapping["ScalingConfig"]["MaximumConcurrency"] == 20
    assert result.deployed.parameters["LogRetentionInDays"] == "90"
    assert any("MaximumConcurrency=20" in line for line in printed if line.startswith("poller"))
    # And the run itself went through
    assert len(result.reconciliation.delivered) == 3
    assert result.lost == 0


def test_invoke_calls_the_overridden_downstream_and_prints_only_the_response(
    built: Path, httpserver: HTTPServer
) -> None:
    # Given a downstream of the user's own, and overrides that point the function at it and
    # quieten its log below INFO
    httpserver.expect_request("/orders", method="POST").respond_with_data("ok", status=200)
    url = httpserver.url_for("/orders")
    # When the event is invoked with ENV=prod and those overrides
    completed = subprocess.run(
        [sys.executable, "-m", "local.commands.invoke", EVENT, "--config-env", "prod",
         "--build-dir", str(built), "--parameter-overrides", "LogLevel=WARNING",
         f"DownstreamUrl={url}"],
        cwd=ROOT,
        env={**_environ(), "PYTHONPATH": "functions"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )  # fmt: skip
    # Then it succeeds, and standard output is the response JSON and nothing else
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout) == {"batchItemFailures": []}
    # And the function called the user's downstream, once, for the event's one record
    assert len(httpserver.log) == 1
    # And the overrides reached it: at WARNING its INFO "delivered" line is not logged
    assert '"message":"delivered"' not in completed.stderr
    # And standard error says where every value came from
    assert (
        "ENV prod: LogRetentionInDays=90 MaximumConcurrency=20 TracingMode=Active; "
        "not applied: LogLevel (--parameter-overrides given)"
    ) in completed.stderr
    assert f"--parameter-overrides: LogLevel=WARNING DownstreamUrl={url}" in completed.stderr


def test_make_invoke_output_pipes_into_a_json_parser() -> None:
    # Given the Makefile, When `make invoke ENV=prod` runs (the build when stale, then the
    # invocation)
    completed = subprocess.run(
        ["make", "invoke", f"EVENT={EVENT}", "ENV=prod"],
        cwd=ROOT,
        env=_environ(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    # Then it succeeds and standard output parses as JSON as a whole: make's echo, the build's
    # output (sam build's, or make's word that it is up to date) and the function's log all
    # went to standard error
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout) == {"batchItemFailures": []}
    assert (
        "Build Succeeded" in completed.stderr
        or "Nothing to be done for 'build'" in completed.stderr
    )
    assert PROD_LINE in completed.stderr
    assert '"message":"delivered"' in completed.stderr
