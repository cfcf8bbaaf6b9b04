"""Interleaved repetitions and their median and spread, shared by the benchmarks.

Other work on a shared machine slows whatever runs at that moment; running the contenders in
turn (A B A B ...) spreads that noise over both, and the median with its range says how much
of a difference is real.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Samples:
    """Repeated measurements of one thing (seconds, calls, MiB)."""

    values: list[float] = field(default_factory=list)

    def add(self, value: float) -> None:
        self.values.append(value)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    def spread(self, unit: str = "s", digits: int = 2) -> str:
        """`1.23 s (1.10–1.40)`: median, then the smallest and largest of the runs."""
        if not self.values:
            return "n/a"
        low, high = min(self.values), max(self.values)
        unit = f" {unit}" if unit else ""
        return f"{self.median:,.{digits}f}{unit} ({low:,.{digits}f}–{high:,.{digits}f})"


def interleaved(
    repeat: int, contenders: dict[str, Callable[[], Any]]
) -> tuple[dict[str, Samples], dict[str, Any]]:
    """Run every contender once per round, `repeat` rounds, starting each round with the next
    contender; returns the wall times and each contender's last result."""
    times = {name: Samples() for name in contenders}
    results: dict[str, Any] = {}
    names = list(contenders)
    for round_number in range(repeat):
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            started = time.perf_counter()
            results[name] = contenders[name]()
            times[name].add(time.perf_counter() - started)
    return times, results
