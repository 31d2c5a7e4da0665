"""The harness behind `make bench` works: it runs every section and reports every figure.

Not a timed test: tiny repetitions, a 1 ms downstream, and a stand-in for `sam build`'s output
(the function's sources and a layer of the installed packages), so nothing here is judged
against a goal, only checked for shape and for what the harness itself counts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

from benchmarks.spread import Spread, alternating
from local.aws.template import code_locations, load_template
from local.lambda_service.function_code import link_distribution_closure
from local.shared.paths import ROOT

CONTENDERS = {"project", "powertools_sequential", "ideal_pool"}
LAYER_REQUIREMENTS = ("aws-lambda-powertools", "aws-xray-sdk", "requests", "boto3")


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[str], dict[str, Any]]:
    # Given a build folder shaped as sam build leaves it
    build_dir = tmp_path_factory.mktemp("build")
    # (both functions, the consumer and the breaker controller, are built from functions/)
    for function in ("ConsumerFunction", "BreakerControllerFunction"):
        (build_dir / function).symlink_to(ROOT / "functions")
    for requirement in LAYER_REQUIREMENTS:
        link_distribution_closure(requirement, build_dir / "DependenciesLayer" / "python")
    # and its template, whose code folders are named after their resources as sam build names them
    template = load_template(ROOT / "template.yaml")
    for logical_id, (key, _) in code_locations(template).items():
        template["Resources"][logical_id]["Properties"][key] = logical_id
    (build_dir / "template.yaml").write_text(json.dumps(template))
    # When the benchmark runs with one round of everything
    result = subprocess.run(
        [
            sys.executable, "-m", "benchmarks.bench", "--repeats", "1", "--latency-ms", "1",
            "--cpu-batches", "1", "--build-dir", str(build_dir), "--json",
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": f"{ROOT / 'functions'}{os.pathsep}{ROOT}"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    return lines, json.loads(lines[-1])


def test_the_json_line_holds_every_figure(bench_run: tuple[list[str], dict[str, Any]]) -> None:
    # Given one round of every benchmark (the fixture ran it), When its JSON line is read
    _, figures = bench_run
    # Then every warm measure has a spread for each contender
    for measure in (
        "batch_10_s",
        "batch_100_s",
        "failed_batch_10_s",
        "failed_batch_10_sqs_requests",
        "cpu_ms_per_record",
        "cpu_per_record_ratio",
    ):
        assert set(figures[measure]) == CONTENDERS, measure
        for spread in figures[measure].values():
            assert spread["min"] <= spread["median"] <= spread["max"]
            assert spread["min"] >= 0
    # and the CPU per record over Powertools sequential's of the same round
    assert figures["cpu_per_record_ratio"]["powertools_sequential"]["median"] == 1.0
    assert figures["cpu_per_record_ratio"]["project"]["median"] == pytest.approx(
        figures["cpu_ms_per_record"]["project"]["median"]
        / figures["cpu_ms_per_record"]["powertools_sequential"]["median"]
    )
    # and each cold start its CPU and wall time, the project's also its ratios to the naive one
    assert set(figures["cold_start"]) == {
        "naive",
        "project_breaker_off",
        "project_breaker_on",
        "project_breaker_on_tracing_on",
        "project_breaker_on_without_bytecode",
    }
    assert set(figures["cold_start"]["naive"]) == {
        "cpu_ms", "wall_ms", "mapping_requests", "batch_cpu_ms"
    }  # fmt: skip
    for kind in set(figures["cold_start"]) - {"naive"}:
        assert set(figures["cold_start"][kind]) == {
            "cpu_ms", "wall_ms", "cpu_ratio", "wall_ratio", "mapping_requests", "batch_cpu_ms",
            "batch_cpu_ratio",
        }  # fmt: skip
        cold = figures["cold_start"][kind]
        # the first batch's share is part of the whole (the init's counted in 10 ms ticks)
        assert 0 <= cold["batch_cpu_ms"]["median"] <= cold["cpu_ms"]["median"]
        assert figures["cold_start"][kind]["cpu_ms"]["median"] > 0
    assert figures["size_bytes"]["function_bytes"] > 0
    assert "botocore" in figures["size_bytes"]["runtime_sdk_distributions"]
    assert set(figures["goals"]) >= {"batch_10_s", "batch_100_s", "cold_start_ratio"}
    # and the cost table, at the template's MemorySize, from the warm batches' medians
    cost = figures["cost"]
    assert cost["memory_mb"] == 256
    assert cost["controller_memory_mb"] == 256
    # ...with the controller's warm ticks measured in the built stack (10 a round)
    tick = figures["controller_tick"]
    assert tick["ticks"] == 10
    assert 0 < tick["wall_ms"]["min"] <= tick["wall_ms"]["median"]
    assert cost["controller_seconds_per_tick"] > tick["wall_ms"]["median"] / 1000
    assert len(cost["settings"]) == 7
    # ...the defaults' batch measured at the mapping's BatchSize auto and its window
    defaults = figures["default_batch"]
    assert (defaults["batch_size"], defaults["batching_window_s"]) == (100, 1)
    assert defaults["delivery_concurrency"] == 50
    assert defaults["project_s"]["median"] > 0
    assert cost["settings"][0]["label"] == (
        "project, defaults: BatchSize 100 (window 1 s), DeliveryConcurrency 50"
    )
    [project_10] = [
        line
        for line in cost["settings"]
        if line["label"] == "project, BatchSize 10, DeliveryConcurrency 10"
    ]
    assert project_10["billed_seconds_per_batch"] >= figures["batch_10_s"]["project"]["median"]


def test_no_cold_start_makes_a_lambda_control_plane_request(
    bench_run: tuple[list[str], dict[str, Any]],
) -> None:
    # Given one round of every cold start, When the Lambda API requests each process made are read
    _, figures = bench_run
    requests = {
        kind: cold["mapping_requests"]["median"] for kind, cold in figures["cold_start"].items()
    }
    # Then none made a request, the circuit breaker on or off: the consumer never calls
    # Lambda's control plane (its controller owns the mapping: docs/circuit-breaker.md)
    assert requests == {
        "naive": 0,
        "project_breaker_off": 0,
        "project_breaker_on": 0,
        "project_breaker_on_tracing_on": 0,
        "project_breaker_on_without_bytecode": 0,
    }


def test_sqs_requests_are_counted_for_every_client(
    bench_run: tuple[list[str], dict[str, Any]],
) -> None:
    # Given one round of every benchmark, When the failed batch's SQS requests are read
    _, figures = bench_run
    requests = {
        name: spread["median"] for name, spread in figures["failed_batch_10_sqs_requests"].items()
    }
    # Then a visibility change per record costs 10 requests, one batched change costs 1
    assert requests == {"project": 1, "powertools_sequential": 10, "ideal_pool": 1}


def test_the_table_comes_before_the_json_line(bench_run: tuple[list[str], dict[str, Any]]) -> None:
    # Given one round of every benchmark, When its output is read
    lines, _ = bench_run
    table = "\n".join(lines[:-1])
    # Then the table's rows come before the closing JSON line
    for row in (
        "| batch of 10 at 1 ms, s |",
        "| batch of 100 at 1 ms, s |",
        "| SQS requests for a failed batch of 10 |",
        "| CPU per record at 0 ms / Powertools sequential's, same round |",
        "| project, breaker off |",
        "| project, breaker on |",
        "| project, breaker on, tracing on |",
        "| layer without it |",
        "The breaker controller: 1,728 ticks a day",
        "| project, defaults: BatchSize 100 (window 1 s), DeliveryConcurrency 50 | 256 |",
        "| project, BatchSize 10, DeliveryConcurrency 10 | 256 |",
        "| Powertools, sequential, BatchSize 100 | 256 |",
    ):
        assert row in table


def test_rounds_alternate_which_contender_goes_first() -> None:
    # Given two contenders that record the order they ran in
    order: list[str] = []

    def contender(name: str) -> Callable[[], int]:
        def run() -> int:
            order.append(name)
            return len(order)

        return run

    contenders = {name: contender(name) for name in "ab"}
    # When they run for three rounds
    results = alternating(contenders, 3)
    # Then each round starts one further along, and each keeps its own results
    assert order == ["a", "b", "b", "a", "a", "b"]
    assert results == {"a": [1, 4, 5], "b": [2, 3, 6]}
    assert Spread.of([3.0, 1.0, 2.0]) == Spread(median=2.0, min=1.0, max=3.0)
