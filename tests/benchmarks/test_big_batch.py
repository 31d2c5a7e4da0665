"""make bench-big-batch's reading of an invocation: what was acknowledged, rescheduled, and
whether it stayed inside the timeout."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.big_batch import BigBatch, _failed, _log_messages, table


def result(outcome: str, wall_s: float) -> BigBatch:
    return BigBatch(
        case="half_failing", records=10, failing_records=5, latency_ms=50, timeout_s=60.0,
        wall_s=wall_s, outcome=outcome, acknowledged=5, failed=5, rescheduled=5,
        backoff_not_set=0, peak_rss_mb=60.0, memory_mb=256, event_mb=0.01, event_limit_mb=6.29,
    )  # fmt: skip


def test_failed_records_are_those_the_response_names_or_all_when_the_invocation_failed() -> None:
    # Given a response naming two records, When read, Then two failed
    response = {"batchItemFailures": [{"itemIdentifier": "a"}, {"itemIdentifier": "b"}]}
    assert _failed("response", response, 10) == 2
    # Given a timeout or a raised error, Then every record returns to the queue
    assert _failed("timeout", None, 10) == 10
    assert _failed("error", None, 10) == 10


def test_the_log_is_read_for_its_json_lines_messages(tmp_path: Path) -> None:
    # Given a function log with Lambda's own lines between the function's JSON lines
    log = tmp_path / "function.log"
    log.write_text(
        "START RequestId: r Version: $LATEST\n"
        + json.dumps({"message": "delivery failed; retry scheduled"})
        + "\n{not json\n"
        + json.dumps({"message": "delivered"})
        + "\nEND RequestId: r\n"
    )
    # When read, Then only the JSON lines' messages come back, in order
    assert _log_messages(log) == ["delivery failed; retry scheduled", "delivered"]


def test_inside_the_timeout_means_an_answer_before_it() -> None:
    # Given outcomes and wall times, Then only an answer (response or error) before the
    # timeout is inside it
    assert result("response", 54.0).inside_timeout
    assert result("error", 59.9).inside_timeout
    assert not result("timeout", 60.0).inside_timeout
    assert not result("response", 60.5).inside_timeout
    # ...and the table shows the case's figures
    assert "| 10 at 50 ms, half failing | 54.0 | 60 | response |" in table(
        [result("response", 54.0)]
    )
