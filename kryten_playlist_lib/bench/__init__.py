"""`kryten-playlist bench`: every speed and accuracy target of operations.md, measured in one run.

Each measurement is a function returning `Figure`s; figures are medians of
several runs, and ratios are taken within one run. Measurements of parts
that are not built yet are simply not in the table.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class Figure:
    name: str
    value: float
    unit: str
    target: str
    ok: bool


def median_ms(action: Callable[[], object], runs: int) -> float:
    """The median wall time of `runs` calls, in milliseconds, after one warm-up call."""
    action()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def render_table(figures: list[Figure]) -> str:
    rows = [("measurement", "value", "target", "ok")]
    rows += [(f.name, f"{f.value:,.3f} {f.unit}", f.target, "pass" if f.ok else "FAIL") for f in figures]
    widths = [max(len(row[n]) for row in rows) for n in range(4)]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows)


def write_json(figures: list[Figure], path: Path) -> None:
    path.write_text(json.dumps({"figures": [asdict(f) for f in figures]}, indent=2))
