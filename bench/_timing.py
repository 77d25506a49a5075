"""Timing helpers: best-of-repeats, interleaved so that a candidate and its
baseline see the same machine load, and the row/table format."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Row", "race", "best_of", "fmt_time", "table"]


@dataclass
class Row:
    """One benchmark: ``time_s`` of the candidate against ``baseline_s``.

    ``ratio = time_s / baseline_s``: below 1 the candidate is faster.
    """

    name: str
    time_s: float
    baseline: str
    baseline_s: float
    notes: str = ""

    @property
    def ratio(self) -> float:
        return self.time_s / self.baseline_s

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "time_s": self.time_s,
            "baseline": self.baseline,
            "baseline_s": self.baseline_s,
            "ratio": self.ratio,
            "notes": self.notes,
        }


def race(
    fns: dict[str, Callable[[], object]],
    *,
    warmup: int = 2,
    repeats: int = 5,
    budget_s: float = 2.0,
    max_repeats: int = 200,
) -> dict[str, float]:
    """Best (minimum) wall time of each function, run round-robin.

    Every function is first called ``warmup`` times (compilation, page
    faults, caches), then the functions are timed in turn, at least
    ``repeats`` rounds and more while the total stays under ``budget_s``
    (up to ``max_repeats``). Interleaving gives candidate and baseline the
    same chance of a quiet moment on a shared machine.
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    best = {k: float("inf") for k in fns}
    start = time.perf_counter()
    rounds = 0
    while rounds < repeats or (time.perf_counter() - start < budget_s and rounds < max_repeats):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            best[k] = min(best[k], time.perf_counter() - t0)
        rounds += 1
    return best


def best_of(fn: Callable[[], object], **kw) -> float:
    """:func:`race` of one function."""
    return race({"f": fn}, **kw)["f"]


def fmt_time(t: float) -> str:
    if not math.isfinite(t):
        return "n/a"
    if t < 1e-3:
        return f"{t * 1e6:.1f} us"
    if t < 1.0:
        return f"{t * 1e3:.2f} ms"
    return f"{t:.2f} s"


def table(rows: list[Row]) -> str:
    """A plain-text table, notes as numbered footnotes below it."""
    head = ("#", "benchmark", "time", "baseline", "baseline time", "time/baseline")
    body = [
        (str(i + 1), r.name, fmt_time(r.time_s), r.baseline, fmt_time(r.baseline_s),
         f"{r.ratio:.3g}")
        for i, r in enumerate(rows)
    ]
    widths = [max(len(x[j]) for x in [head, *body]) for j in range(len(head))]
    right = {0, 2, 4, 5}

    def line(cells):
        cols = enumerate(zip(cells, widths, strict=True))
        return "  ".join(c.rjust(w) if j in right else c.ljust(w) for j, (c, w) in cols).rstrip()

    out = [line(head), "  ".join("-" * w for w in widths)]
    out += [line(b) for b in body]
    notes = [(i + 1, r.notes) for i, r in enumerate(rows) if r.notes]
    if notes:
        out.append("")
        out += [f"[{i}] {n}" for i, n in notes]
    return "\n".join(out)
