"""Percentiles of latency samples and the median/min/max of repeated runs."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank ``q``-th percentile (0 < q <= 100): a value that was measured."""
    if not values:
        raise ValueError("no values")
    if not 0 < q <= 100:
        raise ValueError("q must be in (0, 100]")
    ordered = sorted(values)
    # Rounded first: 99.9 / 100 * 1000 is 999.0000000000001 in floating point.
    rank = math.ceil(round(q * len(ordered) / 100, 9))
    return ordered[max(0, rank - 1)]


@dataclass(frozen=True)
class Spread:
    """The median of several runs, with the smallest and largest."""

    median: float
    low: float
    high: float
    runs: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        return cls(statistics.median(values), min(values), max(values), len(values))

    def format(self, digits: int = 0, unit: str = "") -> str:
        def number(value: float) -> str:
            return f"{value:,.{digits}f}{unit}"

        if self.runs == 1:
            return number(self.median)
        return f"{number(self.median)} ({number(self.low)} – {number(self.high)})"
