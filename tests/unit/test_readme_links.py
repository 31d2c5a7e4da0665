"""The READMEs' internal links land: every `(#anchor)` names a heading of its file, every relative
link names a file that exists, and the README's contents list its sections. Sections move; a link
that silently points nowhere is how a newcomer gets lost."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from local.shared.paths import ROOT

READMES = [ROOT / "README.md", ROOT / "benchmarks" / "README.md"]
# [text](target): the target up to the closing parenthesis, no spaces (a title is not used here).
LINK = re.compile(r"\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6} (.*)$")


def anchor(title: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation other than `-` and `_` dropped,
    spaces to `-`."""
    return re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")


def heading_anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives a file's headings, `-1`, `-2`... after a repeated one. Fenced
    code is not a heading."""
    anchors: set[str] = set()
    seen: dict[str, int] = {}
    in_code = False
    for line in markdown.split("\n"):
        if line.startswith("```"):
            in_code = not in_code
            continue
        match = HEADING.match(line)
        if match is None or in_code:
            continue
        slug = anchor(match.group(1))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def broken_links(readme: Path) -> list[str]:
    broken = []
    for target in LINK.findall(readme.read_text()):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        file_part, _, fragment = target.partition("#")
        destination = (readme.parent / file_part).resolve() if file_part else readme
        if not destination.exists():
            broken.append(f"{target}: no such file")
        elif fragment and fragment not in heading_anchors(destination.read_text()):
            broken.append(f"{target}: no such heading")
    return broken


def test_anchors_follow_githubs_rule() -> None:
    # Given headings with code, punctuation and a repeat, Then their anchors are GitHub's
    lines = ["# A `make run`: once", "```", "# not a heading", "```", "## Runbook: alarms, peek"]
    markdown = "\n".join([*lines, "## A", "## A"])
    assert heading_anchors(markdown) == {"a-make-run-once", "runbook-alarms-peek", "a", "a-1"}


def test_a_link_to_a_missing_heading_or_file_is_found(tmp_path: Path) -> None:
    # Given a README with one good link and two broken ones, Then only the broken ones are named
    readme = tmp_path / "README.md"
    readme.write_text("## Quickstart\n[ok](#quickstart) [gone](#deploy) [file](docs/x.md)\n")
    assert broken_links(readme) == ["#deploy: no such heading", "docs/x.md: no such file"]


@pytest.mark.parametrize("readme", READMES, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_internal_link_of_the_readme_lands(readme: Path) -> None:
    assert broken_links(readme) == []


def contents_and_headings(markdown: str) -> tuple[list[str], list[str]]:
    """The README's contents list, and the entries its `##` and `###` headings call for."""
    lines = markdown.split("\n")
    start = lines.index("Contents:") + 2
    end = lines.index("", start)
    expected = []
    in_code = False
    for line in lines[end:]:
        if line.startswith("```"):
            in_code = not in_code
        match = re.match(r"^(##|###) (.*)$", line)
        if match is not None and not in_code:
            indent = "  " * (len(match.group(1)) - 2)
            expected.append(f"{indent}- [{match.group(2)}](#{anchor(match.group(2))})")
    return lines[start:end], expected


def test_the_contents_list_every_section_in_order() -> None:
    # Given the README, Then its contents are its ## and ### headings, in order (the message
    # shows the list to paste after a section is added, moved or renamed)
    contents, expected = contents_and_headings((ROOT / "README.md").read_text())
    assert contents == expected, "\n".join(["Contents should be:", "", *expected])


README_MAX_LINES = 300


def test_the_readme_stays_a_front_door() -> None:
    # Given the README, whose detail lives in the docs site (docs/)
    lines = (ROOT / "README.md").read_text().splitlines()
    # Then it stays short enough to read in the first five minutes
    assert len(lines) <= README_MAX_LINES, (
        f"README.md has {len(lines)} lines (at most {README_MAX_LINES}): move detail to docs/"
    )
