"""`make logs`: the function's structured logs of the local system, one readable line a record.

The execution environments write one log file each (as CloudWatch keeps one stream per
environment): Powertools' JSON records, EMF metric documents, and the runtime's START/END/
REPORT lines. This reads the running `make up`'s files (named in its state file, and followed
while it runs), else the last local run's (`make run`, or a `make up` that has ended), and
prints `time level message-id message key=value ...` for each record; --json passes the records'
raw lines through instead. --message-id and --level keep the records of one message, or at or
above a level. The runtime's plain lines show only without filters and never with --json;
the EMF metric documents are left out (they are metrics, not log records).
"""

from __future__ import annotations

import argparse
import heapq
import json
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from local.commands import up_state
from local.shared.paths import ROOT

# make run's and make up's work folders (run_options.WORK_DIR, up.UP_WORK_DIR); not imported from
# there, which would need the function's code on the path.
LOG_DIRS = (ROOT / ".aws-sam" / "local-run" / "logs", ROOT / ".aws-sam" / "local-up" / "logs")
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# Keys every Powertools record carries, left off the readable line (--json keeps them).
COMMON_KEYS = frozenset(
    {
        "level", "location", "message", "timestamp", "service", "cold_start", "message_id",
        "function_name", "function_memory_size", "function_arn", "function_request_id",
        "sampling_rate", "xray_trace_id",
    }
)  # fmt: skip
POLL_SECONDS = 0.25


@dataclass(frozen=True)
class Filters:
    message_id: str | None = None
    level: str | None = None

    @property
    def any(self) -> bool:
        return self.message_id is not None or self.level is not None


@dataclass(frozen=True)
class Line:
    """One line of an environment's log, with the last timestamp seen in its file: records
    from several files are merged by it, and a plain line stays beside the record before it."""

    text: str
    timestamp: str
    record: dict[str, Any] | None

    @property
    def is_log_record(self) -> bool:
        return self.record is not None and "level" in self.record


def parse(text: str, previous_timestamp: str = "") -> Line:
    record: dict[str, Any] | None = None
    if text.startswith("{"):
        try:
            loaded = json.loads(text)
        except ValueError:
            loaded = None
        record = loaded if isinstance(loaded, dict) else None
    timestamp = str(record.get("timestamp", "")) if record else ""
    return Line(text, timestamp or previous_timestamp, record)


def selected(line: Line, filters: Filters, as_json: bool) -> bool:
    if not line.is_log_record:
        return not filters.any and not as_json and line.record is None
    record = line.record or {}
    if filters.message_id is not None and filters.message_id not in _message_ids(record):
        return False
    if filters.level is not None:
        level = str(record.get("level", "")).upper()
        if level not in LEVELS or LEVELS.index(level) < LEVELS.index(filters.level):
            return False
    return True


def _message_ids(record: dict[str, Any]) -> list[Any]:
    """The messages a record is about: its own, or those a batch's `delivered` line names."""
    named = record.get("message_ids")
    return [record.get("message_id"), *(named if isinstance(named, list) else [])]


def render(line: Line, as_json: bool) -> str:
    if as_json or line.record is None:
        return line.text
    record = line.record
    extra = " ".join(
        f"{key}={_value(value)}" for key, value in record.items() if key not in COMMON_KEYS
    )
    return " ".join(
        part
        for part in (
            str(record.get("timestamp", "")).removesuffix("+0000"),
            f"{record.get('level', '-'):<7}",
            str(record.get("message_id") or "-"),
            str(record.get("message", "")),
            extra,
        )
        if part
    )


def _value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


@dataclass
class _File:
    path: Path
    offset: int = 0
    partial: str = ""
    last_timestamp: str = ""

    def new_lines(self) -> list[Line]:
        """The complete lines written since the last call."""
        try:
            with self.path.open("r", encoding="utf-8", errors="replace") as handle:
                handle.seek(self.offset)
                chunk = handle.read()
                self.offset = handle.tell()
        except FileNotFoundError:
            return []
        text = self.partial + chunk
        *complete, self.partial = text.split("\n")
        lines: list[Line] = []
        for raw in complete:
            if not raw.strip():
                continue
            line = parse(raw, self.last_timestamp)
            self.last_timestamp = line.timestamp
            lines.append(line)
        return lines


@dataclass
class LogFolder:
    """Every environment's log in one folder, read as it grows; files appear as environments
    start."""

    folder: Path
    _files: dict[Path, _File] = field(default_factory=dict)

    def new_lines(self) -> list[Line]:
        for path in sorted(self.folder.glob("*.log")) if self.folder.is_dir() else []:
            self._files.setdefault(path, _File(path))
        per_file = [f.new_lines() for f in self._files.values()]
        return list(heapq.merge(*per_file, key=lambda line: line.timestamp))


def show(lines: Iterable[Line], filters: Filters, as_json: bool, out: TextIO) -> int:
    shown = 0
    for line in lines:
        if selected(line, filters, as_json):
            print(render(line, as_json), file=out)
            shown += 1
    out.flush()
    return shown


def follow(
    folder: LogFolder,
    filters: Filters,
    as_json: bool,
    out: TextIO,
    *,
    running: Callable[[], bool],
    stop: threading.Event,
    poll_seconds: float = POLL_SECONDS,
) -> None:
    """Print new records as they are written, until `stop` is set or `running()` turns false
    (the `make up` followed has ended: what it wrote last is still read)."""
    while not stop.is_set():
        alive = running()
        show(folder.new_lines(), filters, as_json, out)
        if not alive:
            return
        stop.wait(poll_seconds)


def _level(text: str) -> str:
    level = text.upper()
    if level not in LEVELS:
        raise argparse.ArgumentTypeError(f"{text!r} is not a level: expected one of {LEVELS}")
    return level


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='make logs LOGS_ARGS="..."', description=__doc__)
    parser.add_argument("--message-id", help="only the records of this SQS message id")
    parser.add_argument("--level", type=_level, help="only records at this level or above")
    parser.add_argument(
        "--follow",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="keep printing new records (default: while a make up runs)",
    )
    parser.add_argument("--json", action="store_true", help="the records' raw JSON lines")
    parser.add_argument("--dir", type=Path, help="the log folder (default: found as above)")
    return parser


def _latest(folders: Sequence[Path]) -> Path | None:
    existing = [f for f in folders if f.is_dir()]
    return max(existing, key=lambda f: f.stat().st_mtime) if existing else None


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    args = _parser().parse_args(argv)
    filters = Filters(args.message_id, args.level)
    try:
        up = up_state.running()
    except up_state.NotRunningError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    folder_path = args.dir or (Path(up.log_dir) if up else _latest(LOG_DIRS))
    following = args.follow if args.follow is not None else up is not None
    if folder_path is None or (not following and not any(folder_path.glob("*.log"))):
        print(
            "no function log yet: start the local system with make up (followed while it runs) "
            "or make run, then make logs",
            file=sys.stderr,
        )
        return 1
    folder = LogFolder(folder_path)
    if not following:
        show(folder.new_lines(), filters, args.json, out)
        return 0
    print(f"following {folder_path} (Ctrl-C to stop)", file=sys.stderr, flush=True)
    pid = up.pid if up else None
    try:
        follow(
            folder,
            filters,
            args.json,
            out,
            running=lambda: pid is None or up_state.running() is not None,
            stop=threading.Event(),
        )
    except KeyboardInterrupt:
        return 0
    if pid is not None:
        print("make up has ended", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
