"""Median, min and max of repeated measurements, taken in alternating rounds."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Spread:
    median: float
    min: float
    max: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        return cls(statistics.median(values), min(values), max(values))

    def scaled(self, factor: float) -> Spread:
        return Spread(self.median * factor, self.min * factor, self.max * factor)

    def text(self, digits: int = 2) -> str:
        return f"{self.median:.{digits}f} ({self.min:.{digits}f} to {self.max:.{digits}f})"

    def as_dict(self) -> dict[str, float]:
        return {"median": self.median, "min": self.min, "max": self.max}


def alternating[T](contenders: Mapping[str, Callable[[], T]], repeats: int) -> dict[str, list[T]]:
    """Each round runs every contender once, starting one further along each round, so that a
    burst of load elsewhere on the machine hits all of them alike."""
    names = list(contenders)
    results: dict[str, list[T]] = {name: [] for name in names}
    for round_number in range(repeats):
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            results[name].append(contenders[name]())
    return results
