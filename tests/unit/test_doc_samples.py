"""The output samples in README.md and docs/ have the format the program prints today: the
summary line's fields, the progress line's, the reconciliation's rows and make up's lines, each
taken from the code that prints them. A sample left behind by a change of format fails here;
`make docs-samples` makes them again. Samples show no path of the machine they were made on."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from local.checks.function_calls import FunctionCalls
from local.checks.reconciliation import REASON_WORDS, DeadLetter, Reconciliation
from local.commands import up
from local.commands.docs_samples import PAGES, SAMPLE_NAMES, fill, sample_names
from local.commands.run_options import RunResult
from local.commands.run_report import print_reconciliation
from local.downstream.faults import FaultLog
from local.shared.paths import ROOT
from local.shared.progress import Snapshot

FENCE = re.compile(r"^```(?P<lang>[\w-]*)$")
# Blocks that are input, not output.
INPUT_LANGUAGES = {"bash", "yaml", "toml", "python", "json"}
MACHINE_PATHS = re.compile(r"(?<![\w.])/(?:work|home|root|tmp|Users|var/folders)/")
NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
MESSAGE_ID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")


@dataclass(frozen=True)
class Block:
    page: str
    line: int
    lines: tuple[str, ...]


def output_blocks(text: str, page: str) -> list[Block]:
    """Every fenced block of `text` that is not a command to type (bash) or a file's text."""
    blocks: list[Block] = []
    lines = text.split("\n")
    start: int | None = None
    language = ""
    for number, line in enumerate(lines):
        match = FENCE.match(line)
        if match is None:
            continue
        if start is None:
            start, language = number, match.group("lang")
            continue
        if language not in INPUT_LANGUAGES:
            blocks.append(Block(page, start + 1, tuple(lines[start + 1 : number])))
        start = None
    return blocks


def all_blocks() -> list[Block]:
    return [
        block
        for page in PAGES
        for block in output_blocks(page.read_text(), str(page.relative_to(ROOT)))
    ]


# What the program prints, from the code that prints it.


def program_summary_fields() -> list[str]:
    rec = Reconciliation((), frozenset(), frozenset(), (), (), 0, 0, frozenset())
    return re.findall(r"(\w+)=", rec.summary(1.0, 1.0))


def program_progress_keys() -> list[str]:
    snapshot = Snapshot(1.0, 1, 1, 0, 0, 0, 0, {200: 1}, mapping="on x10")
    return progress_keys(snapshot.render())


def progress_keys(line: str) -> list[str]:
    """The progress line's field names, the downstream's statuses left out (they vary)."""
    without_statuses = re.sub(r"\b\d{3}=\d+", "", line)
    parts = re.findall(r"(\w+)=|\| (queue|downstream|mapping:)", without_statuses)
    return [name or section for name, section in parts]


# An empty reconciliation's fields after `sent`.
NOTHING = (frozenset[str](), frozenset[str](), (), (), 0, 0, frozenset[str]())


def _result(observed: bool, every_row: bool) -> RunResult:
    """A run's result whose rows are all printed (every_row) or only those always printed."""
    ids = ("11111111-1111-4111-8111-111111111111",)
    rec = Reconciliation(ids, frozenset(ids), frozenset(ids), ids, ids, 1, 1, frozenset(ids))
    faults = FaultLog()
    if every_row:
        faults.record("downstream-5xx")
    many: list[Any] = [SimpleNamespace(after="open")] if every_row else []
    return RunResult(
        reconciliation=rec if every_row else Reconciliation((), *NOTHING),
        sent={},
        calls=[],
        dead_letters=[DeadLetter(ids[0])] if every_row else [],
        batches=[cast(Any, SimpleNamespace(outcome=SimpleNamespace(failed=True)))],
        deployed=cast(Any, None),
        environments_started=1,
        elapsed_seconds=1.0,
        deadline_reached=every_row,
        moving_seconds=1.0,
        fault_log=faults,
        recorded_outcomes=1 if every_row else None,
        groups=[("m", "g")] if every_row else [],
        interrupted=every_row,
        removed_from_dlq=1 if every_row else 0,
        downstream_observed=observed,
        transitions=many,
        scheduled_invocations=many,
        probes=[(0.0, 503)] if every_row else [],
        reported_calls=None if observed else FunctionCalls(1, {"2xx": 1}, 1, 0),
        expired=ids if every_row else (),
        other_invocations={"BreakerControllerFunction": 1} if every_row else {},
    )


def row_label(line: str) -> str:
    # (a row may name a function of the template: BreakerControllerFunction)
    match = re.match(r"\s+([a-zA-Z][a-zA-Z -]*?)(?:\s{2,}|:|\s\(|$)", line)
    assert match is not None, line
    return match.group(1)


def row_shape(line: str) -> str:
    """A reconciliation row with its numbers, ids and varying lists taken out (the dead
    letters' reasons: a list of the program's own wordings)."""
    reasons = "|".join(re.escape(words) for words in REASON_WORDS.values())
    line = re.sub(rf"\d+ (?:{reasons})(?:, \d+ (?:{reasons}))*$", "REASONS", line)
    line = MESSAGE_ID.sub("", line)
    line = re.sub(r"\.\.\. and \d+ more", "", line)
    line = re.sub(r"(calls:|faults)\s.*$", r"\1", line)
    line = re.sub(r"(delivered AND dead-lettered:).*$", r"\1", line)
    return " ".join(NUMBER.sub("N", line).split())


def program_rows() -> tuple[dict[str, set[str]], set[str]]:
    """Each row label's possible shapes, and the labels every reconciliation prints."""
    shapes: dict[str, set[str]] = {}
    always: set[str] | None = None
    for observed in (True, False):
        for every_row in (True, False):
            out = io.StringIO()
            print_reconciliation(_result(observed, every_row), out)
            rows = [line for line in out.getvalue().splitlines() if line.startswith("  ")]
            for row in rows:
                shapes.setdefault(row_label(row), set()).add(row_shape(row))
            if not every_row:
                labels = {row_label(row) for row in rows}
                always = labels if always is None else always & labels
    assert always is not None
    return shapes, always


def reconciliations(block: Block) -> list[list[str]]:
    """The rows of each reconciliation a block shows (from `reconciliation` to `summary:`)."""
    found: list[list[str]] = []
    rows: list[str] | None = None
    for line in block.lines:
        if line == "reconciliation":
            rows = []
        elif rows is not None and line.startswith("summary:"):
            found.append(rows)
            rows = None
        elif rows is not None and line.startswith("  "):
            rows.append(line)
    return found


def program_up_labels() -> list[str]:
    emulator = SimpleNamespace(endpoint_url="http://127.0.0.1:4599", region="us-east-1")
    ready = SimpleNamespace(emulator=emulator, downstream_url="http://127.0.0.1:1/messages")
    urls = {name: f"http://127.0.0.1:4599/123456789012/{name}" for name in up.OUTPUT_QUEUES}
    lines = up.ready_lines(cast(Any, ready), urls, ROOT / ".aws-sam" / "local-up" / "logs")
    return [line_label(line) for line in lines if line]


def line_label(line: str) -> str:
    """A line's first word, or the command a paste line runs."""
    return (
        " ".join(line.split()[:3])
        if line.startswith(("aws ", "make "))
        else line.split(maxsplit=1)[0]
    )


# The checks.

BLOCKS = all_blocks()


def blocks_with(predicate: Any) -> list[Block]:
    return [block for block in BLOCKS if any(predicate(line) for line in block.lines)]


def block_id(block: Block) -> str:
    return f"{block.page}:{block.line}"


def test_the_samples_are_found() -> None:
    # Given the README and the docs, Then their samples include a summary, a progress line,
    # a reconciliation and make up's lines (a check of nothing would pass anything)
    assert blocks_with(lambda line: line.startswith("summary: "))
    assert blocks_with(lambda line: line.startswith("[") and "sent=" in line)
    assert [b for b in BLOCKS if reconciliations(b)]
    assert blocks_with(lambda line: line.startswith("ready "))


@pytest.mark.parametrize(
    "block", blocks_with(lambda line: line.startswith("summary: ")), ids=block_id
)
def test_every_summary_line_has_the_programs_fields(block: Block) -> None:
    # Given the summary line's fields as the program prints them
    fields = program_summary_fields()
    # Then every sample's summary line has those fields, in that order (a line cut with
    # "..." shows the first ones)
    for line in block.lines:
        if line.startswith("summary: "):
            shown = re.findall(r"(\w+)=", line)
            expected = fields[: len(shown)] if line.endswith("...") else fields
            assert shown == expected, f"{line}\nthe program prints: {' '.join(fields)}"


@pytest.mark.parametrize(
    "block", blocks_with(lambda line: re.match(r"^\[\s*\d", line) is not None), ids=block_id
)
def test_every_progress_line_has_the_programs_fields(block: Block) -> None:
    # Given the progress line's fields as the program prints them (the mapping followed)
    keys = program_progress_keys()
    # Then every sample's progress line has them
    for line in block.lines:
        if re.match(r"^\[\s*\d", line):
            assert progress_keys(line) == keys, f"{line}\nthe program prints: {keys}"


@pytest.mark.parametrize("block", [b for b in BLOCKS if reconciliations(b)], ids=block_id)
def test_every_reconciliation_has_the_programs_rows(block: Block) -> None:
    # Given the rows the program can print, and those it always prints
    shapes, always = program_rows()
    for rows in reconciliations(block):
        labels = [row_label(row) for row in rows]
        # Then the sample has every row always printed (unless cut with "...")
        if not any(row.strip() == "..." for row in rows):
            assert always <= set(labels), f"missing rows: {sorted(always - set(labels))}"
        # And each of its rows is one the program prints, worded as the program words it
        for row in rows:
            if row.strip() == "...":
                continue
            label = row_label(row)
            assert label in shapes, f"{row!r}: the program prints no such row"
            assert row_shape(row) in shapes[label], (
                f"{row!r}\nthe program prints it as one of: {sorted(shapes[label])}"
            )


@pytest.mark.parametrize("block", blocks_with(lambda line: line.startswith("ready ")), ids=block_id)
def test_make_ups_lines_are_the_programs(block: Block) -> None:
    # Given the lines make up prints once ready
    labels = program_up_labels()
    # Then the sample shows the same lines in the same order
    start = next(i for i, line in enumerate(block.lines) if line.startswith("ready "))
    shown = [line_label(line) for line in block.lines[start:] if line]
    assert shown[: len(labels)] == labels


@pytest.mark.parametrize("block", BLOCKS, ids=block_id)
def test_no_sample_shows_a_machines_path(block: Block) -> None:
    # Then no output sample names a folder of the machine it was made on
    assert [line for line in block.lines if MACHINE_PATHS.search(line)] == []


def test_every_sample_block_names_a_recipe() -> None:
    # Given the recipes of make docs-samples, Then every marked sample is made by one
    made = {name for names in SAMPLE_NAMES.values() for name in names}
    marked = {name for page in PAGES for name in sample_names(page.read_text())}
    assert marked <= made, sorted(marked - made)


def test_fill_replaces_only_the_named_samples() -> None:
    # Given a page with two samples
    page = (
        "text\n<!-- sample: a -->\n```\nold a\n```\n<!-- /sample -->\n"
        "<!-- sample: b -->\n```\nold b\n```\n<!-- /sample -->\n"
    )
    # When sample a is made again
    filled = fill(page, {"a": "new a\nline 2\n"})
    # Then a has its new text, b and the text around are as they were
    assert filled == page.replace("old a", "new a\nline 2")


def test_a_stale_sample_is_caught(tmp_path: Path) -> None:
    # Given a sample with a reconciliation row the program no longer prints and an old summary
    stale = Block(
        "x.md",
        1,
        (
            "reconciliation",
            "  sent             50",
            "  cpu             4.3 s in the local system's own process",
            "summary: sent=50 delivered=48 elapsed_s=30.1",
        ),
    )
    shapes, _ = program_rows()
    # Then its rows and summary fail the checks above
    assert row_label(stale.lines[2]) not in shapes
    with pytest.raises(AssertionError):
        test_every_summary_line_has_the_programs_fields(stale)
    with pytest.raises(AssertionError):
        test_every_reconciliation_has_the_programs_rows(stale)
