"""The downstream calls the function reports in its logs: what the reconciliation counts when
the downstream is your own and the local system sees none of its calls."""

from __future__ import annotations

import json
from pathlib import Path

from local.checks.function_calls import function_calls


def emf(**metrics: list[float]) -> str:
    names = [{"Name": name, "Unit": "Count"} for name in metrics]
    directive = {"Namespace": "N", "Dimensions": [["service"]], "Metrics": names}
    return json.dumps({"_aws": {"Timestamp": 1, "CloudWatchMetrics": [directive]}, **metrics})


def test_calls_probes_and_outcomes_come_from_every_environments_log(tmp_path: Path) -> None:
    # Given two environments' logs: a batch of three calls (two 2xx, one 503), a batch of one
    # call that timed out, a probe that found the downstream down and one that found it up,
    # and lines that are not metrics (runtime lines, a log record, a broken line)
    (tmp_path / "environment-01.log").write_text(
        "\n".join(
            [
                "START RequestId: r1 Version: $LATEST",
                emf(
                    DownstreamLatency=[10.0, 12.0, 30.0],
                    Delivered=[1.0, 1.0],
                    DownstreamFailed5xx=[1.0],
                ),
                json.dumps({"level": "INFO", "message": "delivered", "status_code": 200}),
                json.dumps({"level": "INFO", "message": "breaker probe", "up": False}),
                "{not json",
            ]
        )
    )
    (tmp_path / "environment-02.log").write_text(
        "\n".join(
            [
                emf(DownstreamLatency=[10000.0], DownstreamFailedTimeout=[1.0], ColdStart=[1.0]),
                json.dumps({"level": "INFO", "message": "breaker probe", "up": True}),
            ]
        )
    )
    # When they are read
    reported = function_calls(tmp_path)
    # Then every call is counted once, by outcome, and the probes apart
    assert reported.calls == 4
    assert reported.by_outcome == {"2xx": 2, "5xx": 1, "timeout": 1}
    assert reported.outcomes() == "2xx=2 5xx=1 timeout=1"
    assert (reported.probes, reported.probes_down) == (2, 1)


def test_no_logs_no_calls(tmp_path: Path) -> None:
    # Given an empty log folder, Then no call is reported (not an error)
    assert function_calls(tmp_path).calls == 0
