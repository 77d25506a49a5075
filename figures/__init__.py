"""The paper figures: modules with ``compute(quick) -> xarray.Dataset`` and ``plot(ds) -> Figure``.

Figures only call into :mod:`meanfield` and :mod:`sims`; no model code lives
here. :func:`run` computes and draws one figure and writes, under ``out``,

* ``NAME.png`` -- the figure (matplotlib, Agg backend),
* ``NAME.nc``  -- the data (``Dataset.to_netcdf``, scipy engine),
* ``NAME.json`` -- provenance: figure parameters, meanfield version, git sha,
  runtime.

Command line: ``python -m meanfield.figures NAME [--quick]``, ``python -m meanfield.figures demo``.
"""

from __future__ import annotations

import importlib
import os
import time
from pathlib import Path
from types import ModuleType

# numba's OpenMP threading layer spin-waits between parallel regions; on a
# machine with more busy processes than cores (a laptop running tests, a shared
# CI box) that makes the AMP simulations tens of times slower. Passive waiting
# costs little when the cores are free. It only takes effect if set before
# numba first loads libgomp, i.e. before any parallel kernel has run; an
# explicit setting in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "passive")

__all__ = ["FIGURES", "DEMO", "run", "build", "build_summary"]


def _discover() -> dict[str, ModuleType]:
    """Every ``figNN_<slug>`` module of this package, by name, in order."""
    import pkgutil
    import re

    names = sorted(
        m.name for m in pkgutil.iter_modules(__path__) if re.fullmatch(r"fig\d\d_\w+", m.name)
    )
    return {name: importlib.import_module(f"{__name__}.{name}") for name in names}


#: figure name -> module (each with ``compute``, ``plot``, ``params`` and ``summary``)
FIGURES: dict[str, ModuleType] = _discover()

#: the figures ``python -m meanfield.figures demo`` runs: the tensor set, then
#: every other figure module that sets ``IN_DEMO = True`` (in name order)
_TENSOR_DEMO: tuple[str, ...] = (
    "fig01_overlap_vs_delta",
    "fig02_phase_p3_mean",
    "fig03_se_vs_amp_p3",
    "fig04_phase_diagrams",
    "fig05_amp_vs_als",
    "fig06_rank2",
)
DEMO: tuple[str, ...] = _TENSOR_DEMO + tuple(
    n for n, m in FIGURES.items() if n not in _TENSOR_DEMO and getattr(m, "IN_DEMO", False)
)

DEFAULT_OUT = Path("figures/out")


def _module(name: str) -> ModuleType:
    if name not in FIGURES:
        raise KeyError(f"unknown figure {name!r}; choose from {', '.join(FIGURES)}")
    return FIGURES[name]


def build(name: str, quick: bool = False, out: str | Path = DEFAULT_OUT):
    """Compute, draw and save figure ``name``.

    Returns
    -------
    ds : xarray.Dataset
        The figure's data.
    paths : dict
        ``{"png": ..., "nc": ..., "json": ...}``, the files written.
    seconds : float
        Wall time of compute and plot.
    """
    from ._io import save

    mod = _module(name)
    t0 = time.perf_counter()
    ds = mod.compute(quick)
    fig = mod.plot(ds)
    seconds = time.perf_counter() - t0
    paths = save(name, ds, fig, mod.params(quick), quick=quick, out=Path(out), seconds=seconds)
    return ds, paths, seconds


def run(name: str, quick: bool = False, out: str | Path = DEFAULT_OUT) -> dict[str, str]:
    """Compute, draw and save figure ``name``; the paths written, by kind.

    Raises
    ------
    KeyError
        ``name`` is not a figure (the message lists the figures).
    """
    _, paths, _ = build(name, quick=quick, out=out)
    return paths


def build_summary(name: str, quick: bool = True, out: str | Path = DEFAULT_OUT):
    """:func:`build`, returning the figure's plain-text summary (or ``None``) instead of its
    dataset: what a demo worker process sends back (``(summary, paths, seconds)``)."""
    ds, paths, seconds = build(name, quick=quick, out=out)
    summary = getattr(_module(name), "summary", None)
    return (summary(ds) if summary is not None else None), paths, seconds
