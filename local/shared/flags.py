"""Command-line value types shared by the commands' flags and the fault flags."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def number[N: (int, float)](
    kind: Callable[[str], N], low: N, high: N | None = None
) -> Callable[[str], N]:
    """An argparse type: a number of `kind` from `low` to `high` (no upper bound when None)."""

    def parse(text: str) -> N:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not {'a whole number' if kind is int else 'a number'}"
            ) from None
        if value < low or (high is not None and value > high):
            bounds = f"from {low} to {high}" if high is not None else f"at least {low}"
            raise argparse.ArgumentTypeError(f"{value} is out of range: expected {bounds}")
        return value

    return parse
