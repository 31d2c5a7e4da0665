"""The fault flags are the fault plan's fractions, one flag each, and the local system's page
lists them: a fault added to FaultPlan without its flag, or its flag without its row, fails here."""

from __future__ import annotations

import argparse
from dataclasses import fields
from typing import Any

from local.downstream.fault_flags import FAULT_FLAGS, add_fault_flags, fault_plan_of
from local.downstream.faults import FRACTION_PREFIXES, FaultPlan
from local.shared.paths import ROOT


def test_every_fraction_of_the_plan_has_exactly_one_flag() -> None:
    # Given the plan's fractions and the flags
    fractions = [f.name for f in fields(FaultPlan) if f.name.startswith(FRACTION_PREFIXES)]
    flagged = [field for _, field, _ in FAULT_FLAGS]
    # Then each fraction has one flag, and no flag names anything else
    assert sorted(flagged) == sorted(fractions)


def test_the_flags_give_the_plan_they_name() -> None:
    # Given a parser with the fault flags
    parser = argparse.ArgumentParser()
    add_fault_flags(parser, seed="default-seed")
    # When every flag is given its own fraction
    argv: list[str] = []
    expected: dict[str, Any] = {}
    for n, (flag, field, _) in enumerate(FAULT_FLAGS, start=1):
        argv += [flag, str(n / 100)]
        expected[field] = n / 100
    plan = fault_plan_of(parser.parse_args(argv))
    # Then the plan has each fraction in its own field, and the default seed
    assert plan == FaultPlan(**expected, seed="default-seed")


def test_the_local_system_page_lists_every_flag() -> None:
    # Given the local system's page
    page = (ROOT / "docs" / "local-system.md").read_text()
    # Then each fault flag has its row in the table of faults
    missing = [flag for flag, _, _ in FAULT_FLAGS if f"| `{flag} F` |" not in page]
    assert missing == []
