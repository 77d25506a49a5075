"""Phase diagrams on a grid: easy / hard / impossible regions and the three thresholds.

Kadmon & Ganguli 2018 (arXiv:1810.10065), §1 and §5: three regimes separated
by two transitions along the noise axis. For a model that declares ``random``
and ``informed`` initialisations and a potential (free entropy), at each grid
point:

* **hard** -- the two starts reach different fixed points and the informative
  one has the larger free entropy (recovery possible, AMP fails);
* **impossible** -- no informative fixed point is the free-entropy maximiser;
* **easy** -- AMP from the random start reaches the Bayes-optimal fixed point
  while the informative branch is distinct from the data-free estimate.

All grid points are solved in one batch; thresholds per column are then
refined by bisection batched over columns, so a 256 x 256 diagram costs a
few batch solves, not 65 536 scalar ones.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .._model import Model
from .fixed_point import iterate
from .threshold import COEXIST_TOL

__all__ = ["phase_diagram", "REGIONS"]

REGIONS = {0: "easy", 1: "hard", 2: "impossible"}


def _batch(models_x: list[Model], param: str, ys: np.ndarray):
    """Random/informed fixed points and potentials for every (x, y)."""
    system = models_x[0].system()
    thetas, s0, us = [], [], []
    for m in models_x:
        if m.system() is not system:
            raise ValueError("phase_diagram needs the same model structure along x")
        t, s, u = m.vary(param, ys)
        thetas.append(t)
        s0.append(s)
        us.append(u)
    theta = np.array(thetas)  # (nx, ny, k)
    s0 = np.array(s0)  # (nx, ny, 2, d)
    S, _, ST = iterate(system, s0, theta[:, :, None, :], **models_x[0].solver_options())
    phi = (
        system.evaluate("potential", S, theta[:, :, None, :])
        if system.potential is not None
        else None
    )
    return S, ST, phi, np.array(us)


def phase_diagram(
    model: Model,
    x: str,
    xs: Sequence[float],
    *,
    y: str = "delta",
    ys: Sequence[float],
    transform: Callable[[float], dict[str, Any]] | None = None,
    bisect_steps: int = 30,
    method: str | None = None,
    overlaps: bool = False,
):
    """Regions and thresholds of ``model`` on the ``x`` x ``y`` grid.

    Parameters
    ----------
    model : Model
        Base model; other parameters stay as given.
    x : str
        Name of the first axis (a parameter, or any label with ``transform``).
    xs : sequence of float
    y : str
        The parameter along which thresholds are located (default ``delta``).
    ys : sequence of float
        Increasing grid of ``y`` values.
    transform : callable, optional
        Maps an ``x`` value to parameter updates (e.g. ``lambda a: {"shape": (a, a, 1/a**2)}``).
    bisect_steps : int
        Bisection steps for each threshold (log-spaced for positive ``y``;
        ``method="grid"``).
    method : {'curves', 'grid'}, optional
        ``curves`` (used by ``meanfield phase``/:func:`meanfield.api.phase`;
        needs ``x`` to be a parameter and no ``transform``): the thresholds are
        traced along ``x`` by two-parameter
        continuation (:mod:`meanfield.solvers.phase_curves`) and the regions
        filled from them; ``grid``: every grid point solved from both starts,
        thresholds bisected per column (the former method; the default here).
    overlaps : bool
        Also return ``overlap_random``/``overlap_informed`` on the grid (always
        with ``method="grid"``).

    Returns
    -------
    xarray.Dataset
        ``region`` (x, y) coded by :data:`REGIONS`; ``overlap_random``,
        ``overlap_informed`` (x, y, mode); ``algorithmic``, ``information``,
        ``dynamic`` (x) thresholds in ``y`` (NaN where there is none, with a
        ``status`` per column: ``first_order``, ``continuous``, ``none``,
        ``not_converged``).
    """
    import xarray as xr

    xs = np.asarray(xs, dtype=float)
    ys = np.asarray(ys, dtype=float)
    if method is None:
        # the figures keep the grid until traced boundaries are as fast for
        # quadrature priors (fig04's sparse panel); ``meanfield phase`` traces
        method = "grid"
    if method == "curves" and (transform is not None or x not in model.params):
        method = "grid"
    if method not in ("curves", "grid"):
        raise ValueError(f"method must be 'curves' or 'grid'; got {method!r}")
    if method == "curves":
        from .phase_curves import phase_curves

        return phase_curves(model, x, xs, y, ys, overlaps=overlaps)
    upd = transform or (lambda v: {x: float(v)})
    models_x = [model.replace(**upd(v)) for v in xs]
    S, ST, phi, u = _batch(models_x, y, ys)
    sr, si = S[:, :, 0], S[:, :, 1]
    conv = (ST == "ok").all(axis=2)
    coexist = (np.max(np.abs(sr - si), axis=-1) > COEXIST_TOL) & conv
    at_u = np.max(np.abs(sr - u), axis=-1) < 1e-6
    nx, ny = coexist.shape
    region = np.full((nx, ny), 0, dtype=np.int8)
    alg = np.full(nx, np.nan)
    info = np.full(nx, np.nan)
    dyn = np.full(nx, np.nan)
    status = np.full(nx, "none", dtype=object)
    log = ys[0] > 0

    def mid(a, b):
        return np.sqrt(a * b) if log else 0.5 * (a + b)

    def solve_at(ix, yv):
        rows = [models_x[i].vary(y, [v]) for i, v in zip(ix, yv, strict=True)]
        theta = np.concatenate([r[0] for r in rows])
        s0 = np.concatenate([r[1] for r in rows])
        ub = np.concatenate([r[2] for r in rows])
        system = models_x[0].system()
        opts = dict(models_x[0].solver_options())
        # near a spinodal the iteration slows critically; a trajectory still
        # lingering after this many steps is within ~1e-8 of the edge
        opts["max_iter"] = min(opts.get("max_iter", 20_000), 20_000)
        Sb, _, _ = iterate(system, s0, theta[:, None, :], **opts)
        ph = system.evaluate("potential", Sb, theta[:, None, :])
        return Sb, ph, ub

    def bisect(ix, a, b, pred):
        """pred(ix, y) True at a, False at b; batched over columns."""
        a, b = a.copy(), b.copy()
        for _ in range(bisect_steps):
            m_ = mid(a, b)
            ok = pred(ix, m_)
            a = np.where(ok, m_, a)
            b = np.where(ok, b, m_)
        return mid(a, b)

    def coexists(ix, yv):
        Sb, _, _ = solve_at(ix, yv)
        return np.max(np.abs(Sb[:, 0] - Sb[:, 1]), axis=-1) > COEXIST_TOL

    def informative_wins(ix, yv, center):
        Sb, ph, _ = solve_at(ix, yv)
        co = np.max(np.abs(Sb[:, 0] - Sb[:, 1]), axis=-1) > COEXIST_TOL
        # outside coexistence: below the window the (unique) fixed point is the
        # informative one, above it the uninformative one
        return np.where(co, ph[:, 1] > ph[:, 0], yv < center)

    def off_u(ix, yv):
        Sb, _, ub = solve_at(ix, yv)
        return np.max(np.abs(Sb[:, 0] - ub), axis=-1) > 1e-6

    first = []
    for i in range(nx):
        if not conv[i].all():
            status[i] = "not_converged"
        if coexist[i].any():
            idx = np.flatnonzero(coexist[i])
            lo, hi = idx[0], idx[-1]
            first.append((i, lo, hi))
            # regions along y
            region[i, hi + 1 :] = 2
            wins = phi[i, :, 1] > phi[i, :, 0]
            region[i, lo : hi + 1] = np.where(wins[lo : hi + 1], 1, 2)
            region[i, :lo] = 0
            if status[i] != "not_converged":
                status[i] = "first_order"
        else:
            region[i] = np.where(at_u[i], 2, 0)
            if at_u[i].any() and (~at_u[i]).any():
                status[i] = "continuous" if status[i] != "not_converged" else status[i]
    # batched refinement of first-order columns
    if first:
        ix = np.array([f[0] for f in first])
        lo = np.array([f[1] for f in first])
        hi = np.array([f[2] for f in first])
        has_below = lo > 0
        has_above = hi < ny - 1
        a = ys[np.maximum(lo - 1, 0)]
        b = ys[lo]
        # lower edge: pred = "not coexisting" (easy side) at a, coexisting at b
        low = bisect(ix, a, b, lambda i_, v: ~coexists(i_, v))
        alg[ix] = np.where(has_below, low, 0.0 if log else np.nan)
        a2 = ys[hi]
        b2 = ys[np.minimum(hi + 1, ny - 1)]
        up = bisect(ix, a2, b2, coexists)
        dyn[ix] = np.where(has_above, up, np.nan)
        a3 = ys[np.maximum(lo - 1, 0)]
        b3 = ys[np.minimum(hi + 1, ny - 1)]
        center = mid(np.where(has_below, low, ys[lo]), np.where(has_above, up, ys[hi]))
        it = bisect(ix, a3, b3, lambda i_, v: informative_wins(i_, v, center))
        info[ix] = np.where(has_above, it, np.nan)
    cont = np.flatnonzero(status == "continuous")
    if len(cont):
        j = np.array([np.flatnonzero(~at_u[i])[-1] for i in cont])
        ok = j + 1 < ny
        a = ys[j]
        b = ys[np.minimum(j + 1, ny - 1)]
        t = bisect(cont, a, b, off_u)
        t = np.where(ok, t, np.nan)
        alg[cont] = info[cont] = dyn[cont] = t
    modes = np.arange(1, S.shape[-1] + 1)
    ds = xr.Dataset(
        {
            "region": ((x, y), region),
            "overlap_random": ((x, y, "mode"), sr),
            "overlap_informed": ((x, y, "mode"), si),
            "algorithmic": ((x,), alg),
            "information": ((x,), info),
            "dynamic": ((x,), dyn),
            "status": ((x,), status.astype(str)),
        },
        coords={x: xs, y: ys, "mode": modes},
        attrs={"regions": str(REGIONS), "model": model.name, "base": repr(model)},
    )
    return ds
