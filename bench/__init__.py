"""Benchmarks as ratios against baselines run in the same process.

``python -m bench [--quick] [--json] [--only se,amp]`` (``make bench``). Each
module exposes ``run(quick: bool) -> list[Row]``; the runner prints one table.
These are measurements, never timed tests: nothing here asserts a speed.
"""

from ._timing import Row

__all__ = ["Row"]
