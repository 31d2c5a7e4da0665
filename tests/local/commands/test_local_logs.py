"""`make logs` on log files written as the execution environments write them."""

from __future__ import annotations

import io
import json
import threading
from pathlib import Path

import pytest

from local.commands import logs

REQUEST = "e1a6ad70-e803-470e-a846-6a1115bc5135"


def record(message_id: str, level: str, message: str, at: str, **extra: object) -> str:
    return json.dumps(
        {
            "level": level,
            "location": "_deliver:117",
            "message": message,
            "timestamp": f"2026-12-06 03:31:{at}+0000",
            "service": "sqs-backoff-consumer",
            "cold_start": False,
            "function_request_id": REQUEST,
            "message_id": message_id,
            **extra,
        },
        separators=(",", ":"),
    )


METRICS = '{"_aws":{"Timestamp":1796527908724,"CloudWatchMetrics":[]},"Delivered":[1.0]}'


def write_environment_logs(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "environment-01.log").write_text(
        "\n".join(
            [
                f"START RequestId: {REQUEST} Version: $LATEST",
                record("m-1", "INFO", "delivered", "48,724", status_code=200),
                METRICS,
                record("m-2", "WARNING", "downstream failed; retry later", "49,100", status=503),
                f"END RequestId: {REQUEST}",
            ]
        )
        + "\n"
    )
    (folder / "environment-02.log").write_text(
        record("m-3", "ERROR", "sent to the dead-letter queue", "48,900", reason="invalid-json")
        + "\n"
    )


def shown(folder: Path, filters: logs.Filters, as_json: bool = False) -> list[str]:
    out = io.StringIO()
    logs.show(logs.LogFolder(folder).new_lines(), filters, as_json, out)
    return out.getvalue().splitlines()


def test_each_record_reads_as_one_line_in_time_order_across_environments(tmp_path: Path) -> None:
    # Given two environments' logs
    write_environment_logs(tmp_path)
    # When they are shown without filters
    lines = shown(tmp_path, logs.Filters())
    # Then each record is time, level, message id, message and its own fields, merged by time;
    # the runtime's lines stay in place and the metric documents are left out
    assert lines == [
        f"START RequestId: {REQUEST} Version: $LATEST",
        "2026-12-06 03:31:48,724 INFO    m-1 delivered status_code=200",
        "2026-12-06 03:31:48,900 ERROR   m-3 sent to the dead-letter queue reason=invalid-json",
        "2026-12-06 03:31:49,100 WARNING m-2 downstream failed; retry later status=503",
        f"END RequestId: {REQUEST}",
    ]


def test_message_id_and_level_filters_keep_only_matching_records(tmp_path: Path) -> None:
    write_environment_logs(tmp_path)
    # When filtered by one message id, Then only its record shows
    assert shown(tmp_path, logs.Filters(message_id="m-2")) == [
        "2026-12-06 03:31:49,100 WARNING m-2 downstream failed; retry later status=503"
    ]
    # When filtered by level, Then that level and the ones above show
    levels = [line.split()[2] for line in shown(tmp_path, logs.Filters(level="WARNING"))]
    assert levels == ["ERROR", "WARNING"]


def test_json_passes_the_records_raw_lines_through(tmp_path: Path) -> None:
    write_environment_logs(tmp_path)
    lines = shown(tmp_path, logs.Filters(message_id="m-1"), as_json=True)
    assert lines == [record("m-1", "INFO", "delivered", "48,724", status_code=200)]


def test_a_message_id_finds_the_batch_line_that_names_it_among_others(tmp_path: Path) -> None:
    # Given a batch's one delivered line, naming its messages, and another message's line
    batch = json.loads(record("m-1", "INFO", "delivered", "50,000", message_ids=["m-4", "m-5"]))
    del batch["message_id"]
    other = record("m-6", "INFO", "delivered", "50,001")
    (tmp_path / "environment-01.log").write_text(f"{json.dumps(batch)}\n{other}\n")

    # When filtered by one of the messages it names, Then that line shows, and only it
    lines = shown(tmp_path, logs.Filters(message_id="m-5"))
    assert len(lines) == 1
    assert ' delivered message_ids=["m-4","m-5"]' in lines[0]
    # And a message it does not name finds nothing of it
    assert shown(tmp_path, logs.Filters(message_id="m-7")) == []


def test_a_growing_file_is_read_once_per_line_and_never_half_a_line(tmp_path: Path) -> None:
    # Given a log whose last line is still being written
    log = tmp_path / "environment-01.log"
    complete = record("m-1", "INFO", "delivered", "48,724")
    later = record("m-2", "INFO", "delivered", "49,000")
    log.write_text(complete + "\n" + later[:20])
    folder = logs.LogFolder(tmp_path)
    # When it is read, then finished and read again
    first = [line.text for line in folder.new_lines()]
    with log.open("a") as handle:
        handle.write(later[20:] + "\n")
    second = [line.text for line in folder.new_lines()]
    # Then each complete line comes once
    assert (first, second) == ([complete], [later])


def test_follow_prints_what_is_written_until_the_system_ends(tmp_path: Path) -> None:
    # Given a folder followed while "make up" runs, which then ends
    write_environment_logs(tmp_path)
    checks = iter([True, False])
    out = io.StringIO()
    # When followed with a message id filter
    logs.follow(
        logs.LogFolder(tmp_path),
        logs.Filters(message_id="m-3"),
        False,
        out,
        running=lambda: next(checks),
        stop=threading.Event(),
        poll_seconds=0,
    )
    # Then its records were printed once, and the follow ended with the system
    assert out.getvalue().splitlines() == [
        "2026-12-06 03:31:48,900 ERROR   m-3 sent to the dead-letter queue reason=invalid-json"
    ]


def test_no_log_yet_says_how_to_get_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given no make up running and an empty log folder
    monkeypatch.setenv("UP_STATE_FILE", str(tmp_path / "up.json"))
    # When make logs is asked for it
    status = logs.main(["--dir", str(tmp_path), "--no-follow"])
    # Then it says what to start, and fails
    assert status == 1
    assert "make up" in capsys.readouterr().err


def test_an_unknown_level_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        logs.main(["--level", "LOUD"])
    assert "not a level" in capsys.readouterr().err
