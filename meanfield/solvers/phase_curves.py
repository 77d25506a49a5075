"""Phase diagrams from traced boundaries (two-parameter continuation).

The algorithmic and dynamic thresholds of a first-order column are folds of
the branch in ``y``; the information threshold is the crossing of two
branches' free energies. Moving along ``x`` they are *continued* (Newton on
the bordered fold system, and on ``G(s_1) = G(s_2) = 0, Phi(s_1) = Phi(s_2)``,
each seeded by a secant predictor from the previous columns), so a column
costs a few Newton steps instead of a grid of fixed-point solves. A column
where a curve is lost (it leaves the range, or two folds merge at the cusp)
gets a full one-parameter continuation
(:func:`~meanfield.solvers.continuation_threshold.threshold_by_continuation`);
once no coexistence window is left, the remaining columns are probed in one
batched fixed-point call from the random and the informed starts, and only
columns that show coexistence are continued. Continuous transitions (no
window) are the roots of ``rho(J) - 1`` at the uninformative point.

Regions follow :mod:`meanfield.solvers.phase`: easy below the algorithmic
threshold, hard up to the information threshold, impossible above it
(continuous columns: easy below the transition, impossible above).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .._model import Model
from .continuation import (
    ParamPath,
    _bordered,
    _Eval,
    _natural,
    bifurcating_fold,
    refine_fold,
    stable_segments,
)
from .continuation_threshold import (
    _end_x,
    cached_continuation,
    coexistence,
    threshold_by_continuation,
)
from .fixed_point import iterate
from .threshold import COEXIST_TOL

__all__ = ["boundaries"]


def _column_full(m: Model, y: str, lo: float, hi: float, log: bool):
    """Thresholds of one column from a full continuation, with the seeds to track them."""
    vals = {}
    for k in ("algorithmic", "information", "dynamic"):
        r = threshold_by_continuation(m, y, k, lo, hi, log=log)
        vals[k] = r
    if any(r is None for r in vals.values()):
        return None
    res = cached_continuation(m, y, lo, hi, log)
    win = coexistence(res)
    seeds: dict = {}
    margins: set = set()
    if win is not None:
        for w, x in (win["lo_end"], win["hi_end"]):
            if w not in ("upper", "lower"):
                continue
            kind = "dynamic" if w == "upper" else "algorithmic"
            seed, margin = _edge_seed(res, win[w], x)
            if seed is not None:
                seeds[kind] = seed
                if margin:
                    margins.add(kind)
        U = win["upper"]
        for c in res.crossings:
            if any((s.branch, s.start) == (U.branch, U.start) for s in c["segments"]):
                seeds["information"] = (np.concatenate(c["states"]), c["x"])
                break
    status = "first_order" if win is not None else "continuous"
    if win is None and vals["algorithmic"].status != "ok":
        status = "none"
    return {k: r.value for k, r in vals.items()}, status, seeds, res.path, margins


def _edge_seed(res, seg, x: float):
    """The seed to track the end of stable segment ``seg`` nearest to ``x``.

    A fold: its refined state (tracked by the bordered Newton method). A loss
    of stability without a fold (a branch point, e.g. the symmetry-breaking
    pitchfork of a rank-r system): the segment's last stable point, tracked as
    the root of the stability margin followed by :func:`bifurcating_fold`
    (the window's edge can be the fold of a short stable symmetry-broken
    branch next to that branch point). Returns ``(seed, margin)``."""
    br = res.branches[seg.branch]
    ends = []
    for side in ("start", "stop"):
        xe, what = _end_x(res, seg, side)
        ends.append((abs(xe - x), xe, what, seg.stop if side == "stop" else seg.start))
    ends.sort(key=lambda e: e[0])
    (_, xe, what, k), (_, xo, other, _) = ends
    if what == "fold" and other in ("branch_point", "stability") and abs(xo - xe) < 1e-2:
        # a short stable branch between a branch point and its fold: the
        # boundary is tracked from the branch point, on the segment that
        # loses stability there
        for s2 in stable_segments(res.branches):
            if s2 == seg:
                continue
            for side in ("start", "stop"):
                x2, w2 = _end_x(res, s2, side)
                if w2 in ("branch_point", "stability") and abs(x2 - xo) < 1e-6:
                    k2 = s2.stop if side == "stop" else s2.start
                    b2 = res.branches[s2.branch]
                    return (b2.states[k2], float(b2.x[k2])), True
    if what == "fold":
        f = next((f for f in res.folds if abs(f["x"] - xe) < 1e-12), None)
        return (None, False) if f is None else ((f["state"], f["x"]), False)
    if what in ("range", "segment"):
        return None, False
    return (br.states[k], float(br.x[k])), True


def _is_fold(ev: _Eval, s, x) -> bool:
    """A regular fold, not a branch point: ``G_x`` leaves the range of ``G_s``.

    Both solve the bordered fold system (``G_s`` singular); at a branch point
    the left null vector is orthogonal to ``G_x`` as well."""
    _, _, vh = _bordered(ev.A(s, x))
    gx = ev.Gx(s, x)
    return bool(abs(vh @ gx) > 1e-6 * np.linalg.norm(vh) * np.linalg.norm(gx))


def _margin_boundary(ev: _Eval, s, x):
    """A stability-change boundary: the margin's root on the branch through
    ``(s, x)`` (the branch point, returned as the tracked point) and where the
    stable set ends (that point, or the fold of a stable bifurcating branch)."""
    # the tracked guess sits on the branch point, where Newton at fixed ``x``
    # is ill-conditioned, or where the branch no longer exists in the new
    # column (the boundary moves by up to 0.06 in x per column): march out to
    # either side until Newton lands on a stable point of the same branch
    # (close to the guess, not on another branch), then find the margin's root
    s = np.asarray(s, dtype=float)
    near = 0.5 * float(np.max(np.abs(s))) + 1e-3
    for dx in [0.0] + [sg * 1e-3 * 2.0**k for k in range(9) for sg in (1.0, -1.0)]:
        x0 = x + dx
        if not 0.0 < x0 < 1.0:
            continue
        s0, ok = _natural(ev, s, x0)
        if not ok or np.max(np.abs(s0 - s)) > near or ev.margin(s0, x0) >= 0.0:
            continue
        sb, xb, ok, side = _margin_root(ev, s0, x0)
        if ok and side != 0.0 and abs(xb - x) < 0.3:
            break
    else:
        return None
    kind, _, xe = bifurcating_fold(ev, sb, xb, side)
    if kind == "failed":
        return None
    return np.concatenate([sb, [xb]]), float(xe)


def _margin_root(ev: _Eval, s, x, tol: float = 1e-13, steps: int = 30):
    """Where the stability margin of the branch through ``(s, x)`` vanishes.

    Secant iterations on ``x``, each landing on the branch by Newton at fixed
    ``x`` (from the last state); returns ``(state, x, converged, side)``,
    ``side`` the sign of ``x - root`` where the branch is unstable. Used for
    boundaries that are stability changes rather than folds.
    """

    def side(f0, f1, x0, x1):
        return float(np.sign((f1 - f0) * (x1 - x0)))

    s = np.array(s, dtype=float)
    s0, ok = _natural(ev, s, x)
    if not ok:
        return s, x, False, 0.0
    x0, f0 = float(x), ev.margin(s0, x)
    h = 1e-4
    x1 = x0 + (h if x0 + h < 1.0 else -h)
    s1, ok = _natural(ev, s0, x1)
    if not ok:
        return s0, x0, False, 0.0
    f1 = ev.margin(s1, x1)
    # the side from the first, well separated pair (late secant pairs can
    # agree to the last bit, which would leave the side undetermined)
    sd = side(f0, f1, x0, x1)
    for _ in range(steps):
        if f1 == f0:
            break
        x2 = x1 - f1 * (x1 - x0) / (f1 - f0)
        if not np.isfinite(x2):
            return s1, x1, False, 0.0
        # safeguard: the margin of a branch point next to a fold grows like a
        # square root, so the secant overshoots past the end of the branch;
        # halve the step until Newton lands on the branch
        for _ in range(12):
            ok = 0.0 < x2 < 1.0 and abs(x2 - x1) <= 0.1
            if ok:
                guess = s1 + (s1 - s0) * (x2 - x1) / (x1 - x0)
                s2, ok = _natural(ev, guess, x2)
                if not ok:
                    s2, ok = _natural(ev, s1, x2)
                ok = ok and np.max(np.abs(s2 - s1)) <= 0.5 * np.max(np.abs(s1)) + 1e-3
            if ok:
                break
            x2 = x1 + 0.5 * (x2 - x1)
        if not ok:
            return s1, x1, False, 0.0
        x0, f0, s0 = x1, f1, s1
        x1, s1 = x2, s2
        f1 = ev.margin(s1, x1)
        if abs(x1 - x0) <= tol * (1.0 + abs(x1)):
            return s1, x1, True, sd
    return s1, x1, abs(f1) < 1e-10, sd


def _info_refine(ev: _Eval, z, tol=1e-12, steps=30):
    """Newton on ``G(s_1) = G(s_2) = 0, Phi(s_1) = Phi(s_2)`` in ``(s_1, s_2, x)``."""
    d = ev.d
    z = np.array(z, dtype=float)
    M = np.zeros((2 * d + 1, 2 * d + 1))
    h = 1e-6
    for _ in range(steps):
        s1, s2, x = z[:d], z[d : 2 * d], z[2 * d]
        f = np.concatenate([ev.G(s1, x), ev.G(s2, x), [ev.potential(s1, x) - ev.potential(s2, x)]])
        if not np.all(np.isfinite(f)):
            return z, False
        if np.max(np.abs(f)) <= tol:
            # the information threshold is a crossing of two *stable* branches;
            # near the rank-2 cusp a tracked crossing can slide onto an
            # unstable symmetric or broken branch (measured: 6.4e-4 off at
            # mean 0.387, the free energies of the stable points say so)
            stable = ev.margin(s1, x) < 0.0 and ev.margin(s2, x) < 0.0
            return z, bool(np.max(np.abs(s1 - s2)) > 1e-7 and stable)
        M[:] = 0.0
        M[:d, :d] = ev.A(s1, x)
        M[d : 2 * d, d : 2 * d] = ev.A(s2, x)
        M[:d, 2 * d] = ev.Gx(s1, x)
        M[d : 2 * d, 2 * d] = ev.Gx(s2, x)
        # dPhi/ds = 0 at fixed points (stationarity): only the x column remains
        M[2 * d, 2 * d] = (
            ev.potential(s1, x + h)
            - ev.potential(s2, x + h)
            - ev.potential(s1, x - h)
            + ev.potential(s2, x - h)
        ) / (2 * h)
        try:
            dz = np.linalg.solve(M, -f)
        except np.linalg.LinAlgError:
            return z, False
        z = z + dz
    return z, False


def _path_for(path0: ParamPath, m: Model, y: str) -> ParamPath:
    if path0.affine:
        return dataclasses.replace(path0, model=m, t0=m.theta() - float(m[y]) * path0.t1)
    return ParamPath.make(m, y, path0.lo, path0.hi, log=path0.log)


def boundaries(model: Model, x: str, xs, y: str, ys):
    """Algorithmic, information and dynamic thresholds in ``y`` for each ``x``.

    Returns ``(alg, info, dyn, status)`` arrays over ``xs`` (NaN where none)
    and the number of columns that needed a full continuation.
    """
    xs = np.asarray(xs, dtype=float)
    lo, hi = float(ys[0]), float(ys[-1])
    log = lo > 0 and hi / lo > 10.0
    nx = len(xs)
    out = {k: np.full(nx, np.nan) for k in ("algorithmic", "information", "dynamic")}
    status = np.full(nx, "none", dtype=object)
    models = [model.replace(**{x: float(v)}) for v in xs]
    hist: dict = {}  # kind -> list of previous seeds (z vectors)
    full = 0
    probe_from = None
    i = 0
    path0 = None
    margins: set = set()
    while i < nx:
        m = models[i]
        tracked = None
        if hist and path0 is not None:
            # a diverging Newton step is rejected by its non-finite residual
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                tracked = _track(
                    _Eval(_path_for(path0, m, y)), hist, lambda m=m: _bottom(m, y, lo), margins
                )
        if tracked is None:
            col = _column_full(m, y, lo, hi, log)
            full += 1
            if col is None:
                status[i] = "not_converged"
                hist = {}
                i += 1
                continue
            vals, st, seeds, path0, margins = col
            for k, v in vals.items():
                out[k][i] = np.nan if v is None else v
            status[i] = st
            hist = {}
            if st == "first_order" and {"dynamic", "information"} <= set(seeds):
                # without an algorithmic fold the window reaches the bottom of
                # the range; tracked columns then check that it still does
                hist = {k: [np.concatenate([v[0], [v[1]]])] for k, v in seeds.items()}
            elif st != "first_order" and i > 0 and status[i - 1] == "first_order":
                probe_from = i + 1  # past the cusp: probe the rest in one batch
                break
        else:
            tracked, where = tracked
            for k, z in tracked.items():
                if z is None:
                    # no algorithmic fold: the window reaches the bottom of the
                    # range; as in the full column, the threshold is 0 when the
                    # uninformative point is stable all along (no easy region),
                    # otherwise below the range (NaN)
                    out[k][i] = _bottom_threshold(m, y, lo, hi, log)
                    continue
                out[k][i] = float(path0.v_of(where[k]))
                hist[k] = (hist[k] + [z])[-2:]
            status[i] = "first_order"
        i += 1
    if probe_from is not None and probe_from < nx:
        rest = list(range(probe_from, nx))
        co = _probe(models, rest, y, np.asarray(ys, dtype=float))
        for j, c in zip(rest, co, strict=True):
            if c:
                a, b, d_, s, f = boundaries(models[j], x, xs[j : j + 1], y, ys)[:5]
                out["algorithmic"][j], out["information"][j], out["dynamic"][j] = a[0], b[0], d_[0]
                status[j] = s[0]
                full += f
            else:
                r = threshold_by_continuation_cont(models[j], y, lo, hi, log)
                for k in out:
                    out[k][j] = r[0]
                status[j] = r[1]
    return out["algorithmic"], out["information"], out["dynamic"], status, full


def threshold_by_continuation_cont(m: Model, y: str, lo: float, hi: float, log: bool):
    """A column without coexistence: the continuous transition, if any."""
    from .continuation_threshold import _continuous
    from .threshold import ThresholdResult

    r = _continuous(m, y, lo, hi, log, ThresholdResult(y, "algorithmic", None, "ok"))
    if r.status == "ok" and r.value is not None:
        return float(r.value), "continuous"
    return np.nan, "none"


def _bottom_threshold(m: Model, y: str, lo: float, hi: float, log: bool) -> float:
    """The algorithmic threshold of a window that reaches ``lo``: 0 when the
    uninformative point is a stable fixed point over the whole range (the
    criterion of :func:`~meanfield.solvers.continuation_threshold.threshold_by_continuation`),
    NaN (below the range) otherwise."""
    from .threshold import _never_unstable

    grid = np.geomspace(lo, hi, 64) if log else np.linspace(lo, hi, 64)
    spec = m.params[y]
    v, ok = _never_unstable(m, y, grid, spec.lo is not None and spec.lo >= 0)
    return float(v) if ok and v is not None else np.nan


def _bottom(m: Model, y: str, lo: float) -> bool:
    """Do the random and the informed start reach different fixed points at ``y = lo``?"""
    from .fixed_point import solve_batch

    mm = m.replace(**{y: lo})
    s0 = np.stack([mm.initial_state(i) for i in mm.inits])
    S, _, ST, _ = solve_batch(mm.system(), s0, mm.theta(), **mm.solver_options())
    return bool((ST == "ok").all() and np.max(np.abs(S[0] - S[-1])) > COEXIST_TOL)


def _track(ev: _Eval, hist: dict, bottom=None, margins=frozenset()):
    """Continue each boundary point to the new column; None when any is lost.

    Folds are continued by the bordered Newton method, the kinds in
    ``margins`` (stability changes without a fold) as roots of the margin
    (:func:`_margin_boundary`). Returns ``(points, xs)``: the tracked points
    and the boundaries' ``x``."""
    out: dict = {}
    where: dict = {}  # kind -> x of the boundary (the tracked point's x, or a fold's)
    d = ev.d
    if "algorithmic" not in hist:
        if bottom is None or not bottom():
            return None
        out["algorithmic"] = None
    for k in ("algorithmic", "dynamic", "information"):
        if k not in hist:
            continue
        h = hist[k]
        guess = 2 * h[-1] - h[-2] if len(h) > 1 else h[-1]
        if k == "information":
            z, ok = _info_refine(ev, guess)
            if not ok:
                z, ok = _info_refine(ev, h[-1])
        elif k in margins:
            r = _margin_boundary(ev, guess[:d], guess[d]) or _margin_boundary(
                ev, h[-1][:d], h[-1][d]
            )
            if r is None:
                return None
            z, where[k] = r
            ok = True
        else:
            s, xx, ok = refine_fold(ev, guess[:d], guess[d])
            if not (ok and _is_fold(ev, s, xx)):
                s, xx, ok = refine_fold(ev, h[-1][:d], h[-1][d])
                ok = ok and _is_fold(ev, s, xx)
            z = np.concatenate([s, [xx]])
        if not ok or not 0.0 < z[-1] < 1.0:
            return None
        out[k] = z
        where.setdefault(k, float(z[-1]))
    if out["algorithmic"] is None:
        return (out, where) if where["information"] <= where["dynamic"] else None
    a, dy, it = where["algorithmic"], where["dynamic"], where["information"]
    # merged folds (at the cusp) or a jump to another branch: recompute in full
    if np.max(np.abs(out["algorithmic"][:d] - out["dynamic"][:d])) < 1e-6:
        return None
    if not (a <= it <= dy or dy <= it <= a):
        return None
    return out, where


def _probe(models, idx, y, ys):
    """Coexistence anywhere in ``ys`` for each column ``idx`` (one batched solve)."""
    system = models[0].system()
    thetas, s0 = [], []
    for j in idx:
        t, s, _ = models[j].vary(y, ys)
        thetas.append(t)
        s0.append(s)
    theta = np.array(thetas)
    s0 = np.array(s0)
    S, _, ST = iterate(system, s0, theta[:, :, None, :], **models[0].solver_options())
    co = (np.max(np.abs(S[:, :, 0] - S[:, :, 1]), axis=-1) > COEXIST_TOL) & (ST == "ok").all(-1)
    return co.any(axis=1)


def phase_curves(model: Model, x: str, xs, y: str, ys, overlaps: bool = False):
    """The :func:`meanfield.solvers.phase.phase_diagram` dataset from traced boundaries."""
    import xarray as xr

    from .phase import REGIONS

    xs = np.asarray(xs, dtype=float)
    ys = np.asarray(ys, dtype=float)
    alg, info, dyn, status, full = boundaries(model, x, xs, y, ys)
    Y = ys[None, :]
    region = np.zeros((len(xs), len(ys)), dtype=np.int8)
    fo = (status == "first_order")[:, None]
    a = np.where(np.isnan(alg), -np.inf, alg)[:, None]
    it = np.where(np.isnan(info), np.inf, info)[:, None]
    region = np.where(fo & (Y >= a), np.where(Y < it, 1, 2), region)
    co = (status == "continuous")[:, None]
    region = np.where(co & (Y >= a), 2, region).astype(np.int8)
    # columns without a transition: impossible where the uninformative point is
    # a stable fixed point (e.g. zero mean beyond the BBP point), easy otherwise
    none = np.flatnonzero(status == "none")
    if len(none) and hasattr(model, "uninformative_state"):
        from .stability import spectral_radius

        system = model.system()
        for i in none:
            m = model.replace(**{x: float(xs[i])})
            th, _, u = m.vary(y, ys)
            fu = system.evaluate("rhs", u, th)
            at_u = (np.max(np.abs(fu - u), axis=-1) < 1e-10) & (
                spectral_radius(system, u, th) < 1.0
            )
            region[i] = np.where(at_u, 2, 0)
    # columns whose continuation failed: solved on the grid instead (every
    # point from both starts, thresholds bisected), never painted by default
    lost = np.flatnonzero(status == "not_converged")
    if len(lost):
        from .phase import phase_diagram

        g = phase_diagram(model, x, xs[lost], y=y, ys=ys, method="grid")
        region[lost] = g.region.values
        for name, arr in (("algorithmic", alg), ("information", info), ("dynamic", dyn)):
            arr[lost] = g[name].values
        status[lost] = g.status.values
    data = {
        "region": ((x, y), region),
        "algorithmic": ((x,), alg),
        "information": ((x,), info),
        "dynamic": ((x,), dyn),
        "status": ((x,), status.astype(str)),
    }
    coords = {x: xs, y: ys}
    if overlaps:
        from .phase import _batch

        S, _, _, _ = _batch([model.replace(**{x: float(v)}) for v in xs], y, ys)
        data["overlap_random"] = ((x, y, "mode"), S[:, :, 0])
        data["overlap_informed"] = ((x, y, "mode"), S[:, :, 1])
        coords["mode"] = np.arange(1, S.shape[-1] + 1)
    return xr.Dataset(
        data,
        coords=coords,
        attrs={
            "regions": str(REGIONS),
            "model": model.name,
            "base": repr(model),
            "method": "curves",
            "full_continuations": int(full),
            "grid_columns": int(len(lost)),
        },
    )
