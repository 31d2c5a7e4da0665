"""make soak's judgement of a run's result, wherever the run took place."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

from local.checks.reconciliation import Reconciliation
from local.commands import soak
from local.commands.run_options import RunResult
from local.downstream.demo_downstream import Call
from local.lambda_service.event_source_mapping import Receive

PARAMETERS = {
    "BackoffBaseSeconds": "1",
    "BackoffJitterSeconds": "3",
    "BackoffMaxSeconds": "900",
    "MaxReceiveCount": "4",
    "BackoffStrategy": "additive-jitter",
}


def _result(handed_out: dict[str, float]) -> RunResult:
    """One message, received twice without a visibility change (a crash): SQS handed it out at
    100.0 s and, 60 s later, at 160.0 s; the first answer reached the poller 0.3 s after its
    hand-out (a loaded machine), the second 0.1 s after."""
    ids = ("a",)
    return RunResult(
        reconciliation=Reconciliation(ids, frozenset(ids), frozenset(), (), (), 0, 1, frozenset()),
        sent={"a": "{}"},
        calls=[Call("a", "{}", 1, 200, received_at=160.4, reason="ok")],
        dead_letters=[],
        batches=[],
        deployed=cast(Any, SimpleNamespace(parameters=PARAMETERS)),
        environments_started=1,
        elapsed_seconds=200.0,
        deadline_reached=False,
        receives=[Receive("a", "r1", 1, 100.3), Receive("a", "r2", 2, 160.1)],
        queue_visibility_timeout_seconds=60.0,
        handed_out=handed_out,
    )


def gap_line(lines: list[str]) -> str:
    [line] = [line for line in lines if "receive gaps" in line]
    return line


def test_the_queues_timeout_counts_from_the_hand_out_the_result_carries(tmp_path: Path) -> None:
    # Given the run's result, judged here in a process where no emulator ran (as the end-to-end
    # soak judges the run of its spawned process): only the result knows the hand-outs
    options = replace(soak.SOAK, work_dir=tmp_path)

    # When its checks judge it with the hand-outs it carries, and without them
    with_hand_outs = soak.check(_result({"r1": 100.0, "r2": 160.0}), options)
    without = soak.check(_result({}), options)

    # Then the second receive came when the timeout from the first hand-out ended: it passes;
    # counted from the first answer's arrival instead, it would look 0.2 s early
    assert gap_line(with_hand_outs).startswith("PASS"), with_hand_outs
    assert gap_line(without).startswith("FAIL"), without
    assert "-0.2s from the end of the queue's visibility timeout" in gap_line(without)


def duplicate_line(lines: list[str]) -> str:
    [line] = [line for line in lines if "every duplicate explained" in line]
    return line


def test_a_timeout_in_the_runs_own_function_logs_explains_its_duplicate(tmp_path: Path) -> None:
    # Given a run whose function gave up on the downstream's 2xx at receive 1 (a loaded machine)
    # and delivered the message again at receive 2, its logs in the run's own folder
    logs = tmp_path / "run" / "logs"
    logs.mkdir(parents=True)
    record = {"message": "delivery failed", "timestamp": "2026-12-08 00:59:43,060+0000",
              "message_id": "a", "receive_count": 1, "outcome": "timeout"}  # fmt: skip
    (logs / "environment-01.log").write_text(json.dumps(record) + "\n")
    result = replace(
        _result({"r1": 100.0, "r2": 160.0}),
        calls=[
            Call("a", "{}", 1, 200, received_at=100.4, reason="ok"),
            Call("a", "{}", 1, 200, received_at=160.2, reason="ok"),
        ],
        batches=[],
    )
    # And options whose work folder is not the run's (the end-to-end soak judges with its
    # module's options, the run went to a folder of its own)
    options = replace(soak.SOAK, work_dir=tmp_path / "elsewhere")

    # When the checks judge the result that names its logs, and one that names none
    named = soak.check(replace(result, log_dir=logs), options)
    unnamed = soak.check(replace(result, log_dir=None), options)

    # Then the function's timeout explains the duplicate only where its logs were read
    assert duplicate_line(named).startswith("PASS"), named
    assert "1 by a downstream call that outlived its timeout" in duplicate_line(named)
    assert duplicate_line(unnamed).startswith("FAIL"), unnamed
