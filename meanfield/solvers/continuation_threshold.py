"""The algorithmic, dynamic and information thresholds from continued branches.

Definitions as in :mod:`meanfield.solvers.threshold` (Lesieur et al. 2017;
Kadmon & Ganguli 2018), read off the branches that
:func:`~meanfield.solvers.continuation.continue_branches` traces:

* the **coexistence window** is the parameter interval on which two distinct
  stable fixed points exist (an *upper*, informative, and a *lower* one);
  among several windows the one with the largest overlap gap is used;
* the **algorithmic** threshold is the window's edge where the lower stable
  segment ends (a fold -- the spinodal -- or the loss of stability at a branch
  point), beyond which the random start reaches the informative point;
* the **dynamic** threshold is the edge where the upper stable segment ends
  (its fold): beyond it no informative fixed point exists;
* the **information** threshold is the root of the free-energy difference of
  the two segments inside the window (Brent); when the difference keeps one
  sign, the edge where the optimal branch changes.

Segment ends are exact: folds by Newton on the bordered extended system,
stability changes by Brent's method on the stability margin. Without a window
the transition, if any, is continuous: the root of ``rho(J) - 1`` at the
uninformative fixed point (Brent), where the three thresholds coincide.
"""

from __future__ import annotations

import numpy as np

from .._model import Model
from .continuation import Continuation, Segment, _seg_state, continue_branches, stable_segments
from .threshold import ThresholdResult, _never_unstable, _uninformative

__all__ = ["threshold_by_continuation", "coexistence"]

_CACHE: dict = {}


def _end_x(res: Continuation, seg: Segment, side: str) -> tuple[float, str]:
    """Exact ``x`` of a stable segment's end and what ends it."""
    br = res.branches[seg.branch]
    i = seg.stop if side == "stop" else seg.start - 1
    for f in res.folds:
        if f["branch"] == seg.branch and f["index"] in (i, i - 1, i + 1) and f["status"] == "ok":
            return f["x"], "fold"
    for b in res.bifurcations:
        if b["branch"] == seg.branch and b["index"] == i:
            return b["x"], b["kind"]
    j = seg.stop if side == "stop" else seg.start
    x = float(br.x[j])
    if x <= 1e-12 or x >= 1 - 1e-12:
        return x, "range"
    return x, br.end if side == "stop" and j == len(br.x) - 1 else "segment"


def coexistence(res: Continuation) -> dict | None:
    """The coexistence window: upper and lower segments and the window's edges."""
    brs = res.branches
    segs = stable_segments(brs)
    best = None
    for a in range(len(segs)):
        for b in range(a + 1, len(segs)):
            A, B = segs[a], segs[b]
            ea = sorted(_end_x(res, A, s)[0] for s in ("start", "stop"))
            eb = sorted(_end_x(res, B, s)[0] for s in ("start", "stop"))
            lo, hi = max(ea[0], eb[0]), min(ea[1], eb[1])
            if not hi > lo + 1e-9:
                continue
            mid = 0.5 * (lo + hi)
            # the two segments' states at a common point inside the overlap
            sa = _interp(brs, A, mid)
            sb = _interp(brs, B, mid)
            gap = float(np.sum(sa) - np.sum(sb))
            if abs(gap) < 1e-7:
                continue
            if best is None or abs(gap) > abs(best["gap"]):
                up, low = (A, B) if gap > 0 else (B, A)
                best = {"upper": up, "lower": low, "lo": lo, "hi": hi, "gap": gap}
    return best


def _interp(brs, seg: Segment, x: float) -> np.ndarray:
    br = brs[seg.branch]
    xs = br.x[seg.start : seg.stop + 1]
    order = np.argsort(xs)
    st = br.states[seg.start : seg.stop + 1][order]
    return np.array([np.interp(x, xs[order], st[:, i]) for i in range(st.shape[1])])


def _edges(res: Continuation, seg: Segment):
    """``{(x, what)}`` of both ends, keyed 'lo'/'hi' by x."""
    e = [_end_x(res, seg, s) for s in ("start", "stop")]
    e.sort(key=lambda t: t[0])
    return {"lo": e[0], "hi": e[1]}


def threshold_by_continuation(
    model: Model, param: str, kind: str, lo: float, hi: float, *, log: bool
) -> ThresholdResult | None:
    """A threshold from continued branches (``None``: continuation failed; the
    caller falls back to the scan)."""
    key = (repr(model.replace(**{param: float(lo)})), param, float(lo), float(hi), bool(log))
    if key not in _CACHE:
        try:
            res = continue_branches(model, param, lo, hi, log=log)
        except (np.linalg.LinAlgError, ValueError, ArithmeticError):
            res = None
        _CACHE[key] = res
        if len(_CACHE) > 64:
            _CACHE.pop(next(iter(_CACHE)))
    res = _CACHE[key]
    if res is None or not res.branches:
        return None
    if any(br.end in ("step_failed", "max_points") for br in res.branches):
        return None
    path = res.path
    out = ThresholdResult(param, kind, None, "ok", (float(lo), float(hi)))
    out.details["method"] = "continuation"
    win = coexistence(res)
    if win is None:
        return _continuous(model, param, lo, hi, log, out)
    up, low = _edges(res, win["upper"]), _edges(res, win["lower"])
    # the upper segment ends inside the window's far side (dynamic), the lower
    # on the easy side (algorithmic); which side is which follows from where
    # each segment stops
    if up["hi"][0] <= win["hi"] + 1e-12 and up["hi"][1] != "range" and up["hi"][0] < low["hi"][0]:
        dyn, alg = up["hi"], low["lo"]
    elif up["lo"][0] >= win["lo"] - 1e-12 and up["lo"][1] != "range" and up["lo"][0] > low["lo"][0]:
        dyn, alg = up["lo"], low["hi"]
    else:
        # the upper segment runs over the whole window: its end is outside the range
        if low["hi"][0] < up["hi"][0]:
            dyn, alg = ("", "range"), low["hi"]
        else:
            dyn, alg = ("", "range"), low["lo"]
    out.details.update(window=(float(path.v_of(win["lo"])), float(path.v_of(win["hi"]))))
    if kind == "dynamic":
        if dyn[1] == "range":
            out.status = "out_of_range"
        else:
            out.value = float(path.v_of(dyn[0]))
        return out
    if kind == "algorithmic":
        if alg[1] == "range":
            grid = np.geomspace(lo, hi, 64) if log else np.linspace(lo, hi, 64)
            spec = model.params[param]
            positive = spec.lo is not None and spec.lo >= 0
            v, ok = _never_unstable(model, param, grid, positive)
            out.value, out.status = v, "ok" if ok else "out_of_range"
        else:
            out.value = float(path.v_of(alg[0]))
        return out
    # information
    if np.isnan(res.branches[win["upper"].branch].free_energy).all():
        return ThresholdResult(param, kind, None, "no_potential")
    if dyn[1] == "range":
        out.status = "out_of_range"
        return out
    for c in res.crossings:
        segs = c["segments"]
        if {(s.branch, s.start) for s in segs} == {
            (win["upper"].branch, win["upper"].start),
            (win["lower"].branch, win["lower"].start),
        }:
            out.value = float(c["value"])
            return out
    # one sign over the window: the optimal branch changes at an edge
    from .continuation import _Eval

    ev = _Eval(path)
    mid = 0.5 * (win["lo"] + win["hi"])
    su, _ = _seg_state(ev, res.branches, win["upper"], mid)
    sl, _ = _seg_state(ev, res.branches, win["lower"], mid)
    if su is None or sl is None:
        return None
    informative_wins = ev.potential(su, mid) > ev.potential(sl, mid)
    edge = dyn if informative_wins else alg
    if edge[1] == "range":
        out.status = "out_of_range"
    else:
        out.value = float(path.v_of(edge[0]))
    return out


def _continuous(model, param, lo, hi, log, out: ThresholdResult):
    """No coexistence: ``rho(J) - 1 = 0`` at the uninformative point (Brent)."""
    from .bifurcation import locate_crossing
    from .stability import spectral_radius

    if not hasattr(model, "uninformative_state"):
        out.status = "no_transition"
        return out
    grid = np.geomspace(lo, hi, 64) if log else np.linspace(lo, hi, 64)
    system, u, theta = _uninformative(model, param, grid)
    fu = system.evaluate("rhs", u, theta)
    if np.max(np.abs(fu - u)) > 1e-10:
        out.status = "no_transition"
        return out

    def test(x):
        s, uu, th = _uninformative(model, param, np.array([x]))
        return float(spectral_radius(s, uu, th)[0] - 1.0)

    r = locate_crossing(
        test, lo, hi, param=param, kind=out.kind, points=64, log=log, which="last", rtol=1e-13
    )
    out.value, out.status = r.value, r.status
    return out
