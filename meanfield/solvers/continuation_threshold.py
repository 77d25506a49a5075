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
from .threshold import ThresholdResult, _never_unstable

__all__ = ["threshold_by_continuation", "coexistence", "cached_continuation"]

_CACHE: dict = {}


def _end_x(res: Continuation, seg: Segment, side: str) -> tuple[float, str]:
    """Exact ``x`` of a stable segment's end and what ends it."""
    x, what, _ = _end(res, seg, side)
    return x, what


def _end(res: Continuation, seg: Segment, side: str) -> tuple[float, str, np.ndarray]:
    """:func:`_end_x` with the state there (the event's refined state, or the
    segment's last stored point)."""
    br = res.branches[seg.branch]
    i = seg.stop if side == "stop" else seg.start - 1
    events = [
        (f["index"], f["x"], f["state"], "fold")
        for f in res.folds
        if f["branch"] == seg.branch and f["index"] in (i, i - 1, i + 1) and f["status"] == "ok"
    ]
    events += [
        (b["index"], b["x"], b["state"], b["kind"])
        for b in res.bifurcations
        if b["branch"] == seg.branch and b["index"] == i
    ]
    if events:
        # several events within a step (e.g. a pitchfork just before the fold
        # of the symmetric branch of a rank-r system): the segment ends at the
        # one met first: in the step next to it, then the nearest to its last
        # stable point
        k = seg.stop if side == "stop" else seg.start
        ref = np.concatenate([br.states[k], [br.x[k]]])

        def order(e):
            return abs(e[0] - i), float(np.linalg.norm(np.concatenate([e[2], [e[1]]]) - ref))

        _, x, s, what = min(events, key=order)
        s = np.asarray(s, dtype=float)
        cache = res.__dict__.setdefault("_fold_ends", {})
        key = (seg.branch, seg.start, seg.stop, side)
        if what == "fold":
            if key not in cache:
                cache[key] = _stable_end_before_fold(res, br.states[k], float(br.x[k]), s, x)
            if cache[key] is not None:
                return cache[key]
        elif what == "branch_point":
            # a stable branch that bifurcates there towards the unstable side
            # carries the stable set on to its fold (rank 2, mean 0.07, linear
            # delta: the traced branches miss that short branch, 1.4e-7 long)
            if key not in cache:
                kk = k - 1 if side == "stop" else k + 1
                chord = br.states[k] - br.states[min(max(kk, 0), len(br.x) - 1)]
                cache[key] = _past_branch_point(res, s, x, float(np.sign(x - br.x[k])), chord)
            if cache[key] is not None:
                return cache[key]
        return x, what, s
    j = seg.stop if side == "stop" else seg.start
    x = float(br.x[j])
    if side == "stop" and j == len(br.x) - 1 and br.end == "domain":
        # the branch left the physical domain where it meets another branch
        # (a branch point): snap to that branch point, refined on the other branch
        for b in res.bifurcations:
            if abs(b["x"] - x) < 1e-3 and np.max(np.abs(b["state"] - br.states[j])) < 1e-4:
                return b["x"], "branch_point", np.asarray(b["state"], dtype=float)
    if x <= 1e-12 or x >= 1 - 1e-12:
        return x, "range", br.states[j]
    return x, br.end if side == "stop" and j == len(br.x) - 1 else "segment", br.states[j]


def coexistence(res: Continuation) -> dict | None:
    """The coexistence window: where two distinct stable fixed points exist.

    The upper and lower segments are the pair with the largest overlap gap;
    the window is the connected set (stable segments joined end to end, e.g.
    at a branch point, count as one) with at least two stable fixed points
    that contains their common interval. ``lo_end``/``hi_end`` say which
    segment ends there: ``("upper", x)``, ``("lower", x)`` or ``("range", x)``.
    """
    brs = res.branches
    segs = stable_segments(brs)
    ends = [sorted(_end_x(res, s, side)[0] for side in ("start", "stop")) for s in segs]
    best = None
    for a in range(len(segs)):
        for b in range(a + 1, len(segs)):
            lo, hi = max(ends[a][0], ends[b][0]), min(ends[a][1], ends[b][1])
            if not hi > lo + 1e-9:
                continue
            mid = 0.5 * (lo + hi)
            gap = float(np.sum(_interp(brs, segs[a], mid)) - np.sum(_interp(brs, segs[b], mid)))
            if abs(gap) < 1e-7:
                continue
            if best is None or abs(gap) > abs(best["gap"]):
                up, low = (a, b) if gap > 0 else (b, a)
                best = {"u": up, "l": low, "mid": mid, "gap": gap}
    if best is None:
        return None
    # elementary intervals between endpoints, with their number of stable points
    xs = sorted({x for e in ends for x in e})
    cells = []
    for x0, x1 in zip(xs[:-1], xs[1:], strict=True):
        m = 0.5 * (x0 + x1)
        n = sum(1 for e in ends if e[0] <= m <= e[1])
        cells.append([x0, x1, n >= 2 or x1 - x0 < 1e-5])
    k = next(i for i, c in enumerate(cells) if c[0] <= best["mid"] <= c[1])
    i0 = k
    while i0 > 0 and cells[i0 - 1][2]:
        i0 -= 1
    i1 = k
    while i1 + 1 < len(cells) and cells[i1 + 1][2]:
        i1 += 1
    lo, hi = cells[i0][0], cells[i1][1]
    U = segs[best["u"]]

    def label(x):
        if x <= 1e-12 or x >= 1 - 1e-12:
            return ("range", x)
        eu = ends[best["u"]]
        if min(abs(eu[0] - x), abs(eu[1] - x)) < 1e-9:
            return ("upper", x)
        return ("lower", x)

    return {
        "upper": U,
        "lower": segs[best["l"]],
        "lo": lo,
        "hi": hi,
        "gap": best["gap"],
        "lo_end": label(lo),
        "hi_end": label(hi),
    }


def _interp(brs, seg: Segment, x: float) -> np.ndarray:
    br = brs[seg.branch]
    xs = br.x[seg.start : seg.stop + 1]
    order = np.argsort(xs)
    st = br.states[seg.start : seg.stop + 1][order]
    return np.array([np.interp(x, xs[order], st[:, i]) for i in range(st.shape[1])])


def cached_continuation(
    model: Model, param: str, lo: float, hi: float, log: bool
) -> Continuation | None:
    """:func:`continue_branches` over ``[lo, hi]``, shared by the three thresholds
    (and the phase-curve seeds) of one column; ``None`` when it raised."""
    key = (repr(model.replace(**{param: float(lo)})), param, float(lo), float(hi), bool(log))
    if key not in _CACHE:
        try:
            res = continue_branches(model, param, lo, hi, log=log)
        except (np.linalg.LinAlgError, ValueError, ArithmeticError):
            res = None
        _CACHE[key] = res
        if len(_CACHE) > 64:
            _CACHE.pop(next(iter(_CACHE)))
    return _CACHE[key]


def threshold_by_continuation(
    model: Model, param: str, kind: str, lo: float, hi: float, *, log: bool
) -> ThresholdResult | None:
    """A threshold from continued branches (``None``: continuation failed; the
    caller falls back to the scan)."""
    res = cached_continuation(model, param, lo, hi, log)
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
    labels = [win["lo_end"], win["hi_end"]]
    dyn = next(((x, "fold") for w, x in labels if w == "upper"), (None, "range"))
    alg = next(((x, "edge") for w, x in labels if w == "lower"), (None, "range"))
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
    U = win["upper"]
    inside = [
        c
        for c in res.crossings
        if any((s.branch, s.start) == (U.branch, U.start) for s in c["segments"])
        and win["lo"] - 1e-12 <= c["x"] <= win["hi"] + 1e-12
    ]
    if inside:
        out.value = float(inside[0]["value"])
        return out
    from .continuation import _Eval

    ev = _Eval(path)
    # a crossing the stored points miss: a stable segment reaches past its last
    # stored point to its refined end (rank 2: the symmetric lower branch ends
    # at its branch point 0.018 in delta beyond its last point, at mean 0.362)
    xr = _crossing_to_the_ends(ev, res, U, win["lo"], win["hi"])
    if xr is not None:
        out.value = float(path.v_of(xr))
        return out
    # one sign over the window: the optimal branch changes at an edge
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


def _state_to_the_end(ev, res: Continuation, seg: Segment, x: float):
    """The fixed point of ``seg`` at ``x``, also between its last stored point
    and its refined end (Newton from the interpolation towards the end state);
    ``None`` outside or when Newton fails."""
    from .continuation import _natural

    s, ok = _seg_state(ev, res.branches, seg, x)
    if ok:
        return s
    for side in ("start", "stop"):
        xe, _, se = _end(res, seg, side)
        br = res.branches[seg.branch]
        k = seg.stop if side == "stop" else seg.start
        xk, sk = float(br.x[k]), br.states[k]
        if min(xk, xe) - 1e-12 <= x <= max(xk, xe) + 1e-12 and xe != xk:
            w = (x - xk) / (xe - xk)
            s, ok = _natural(ev, sk + w * (se - sk), x)
            if ok and ev.margin(s, x) < 1e-9:
                return s
    return None


def _pair_crossings(ev, res: Continuation, A: Segment, B: Segment, lo: float, hi: float):
    """Where the free energies of stable segments ``A`` and ``B`` cross within
    ``[lo, hi]``, both taken to their refined ends (sign changes, Brent)."""
    from .continuation import sign_change_roots

    ea = sorted(_end(res, A, sd)[0] for sd in ("start", "stop"))
    eb = sorted(_end(res, B, sd)[0] for sd in ("start", "stop"))
    a, b = max(lo, ea[0], eb[0]), min(hi, ea[1], eb[1])
    if not b > a:
        return []

    def dphi(x):
        sa = _state_to_the_end(ev, res, A, x)
        sb = _state_to_the_end(ev, res, B, x)
        if sa is None or sb is None or np.max(np.abs(sa - sb)) < 1e-7:
            return np.nan
        return ev.potential(sa, x) - ev.potential(sb, x)

    return sign_change_roots(dphi, a, b, 17)


def _crossing_to_the_ends(ev, res: Continuation, U: Segment, lo: float, hi: float):
    """Where the free energy of ``U`` crosses that of another stable segment
    within ``[lo, hi]``, the segments taken to their refined ends (Brent);
    ``None`` when no sign change is found."""
    for B in stable_segments(res.branches):
        if B == U:
            continue
        roots = _pair_crossings(ev, res, U, B, lo, hi)
        if roots:
            return roots[0]
    return None


def refined_crossings(res: Continuation) -> list[float]:
    """The information crossings of ``res`` (path coordinate) with every stable
    segment taken to its refined end: those between stored points
    (``res.crossings``) plus those the stored points miss (rank 2, next to the
    cusp, where the symmetric lower branch ends 0.018 in delta past its last
    stored point)."""
    from .continuation import _Eval

    xs = [float(c["x"]) for c in res.crossings]
    if res.path.system.potential is None:
        return sorted(xs)
    ev = _Eval(res.path)
    segs = stable_segments(res.branches)
    for i in range(len(segs)):
        for j in range(i + 1, len(segs)):
            for xr in _pair_crossings(ev, res, segs[i], segs[j], 0.0, 1.0):
                if all(abs(xr - x) > 1e-9 for x in xs):
                    xs.append(float(xr))
    return sorted(xs)


def _past_branch_point(res: Continuation, sb, xb: float, unstable_side: float, chord):
    """``(x, "fold", state)`` of the stable branch bifurcating at ``(sb, xb)``
    when there is one (:func:`~.continuation.bifurcating_fold`), else ``None``.

    ``chord`` is the segment's last step in the state: a segment that arrives
    along the null vector of ``G_s`` is itself the bifurcating branch (the
    broken branch at its pitchfork: rank 2, mean 0.368), and following the
    null vector would retrace it."""
    from .continuation import _Eval, bifurcating_fold

    if unstable_side == 0:
        return None
    ev = _Eval(res.path)
    v = np.linalg.svd(ev.A(sb, xb))[2][-1]
    nc = float(np.linalg.norm(chord))
    if nc > 0 and abs(v @ chord) > 0.5 * nc:
        return None
    kind, s2, x2 = bifurcating_fold(ev, sb, xb, unstable_side)
    if kind != "fold":
        return None
    for f in res.folds:
        # a traced fold: the bifurcating branch is a stable segment of its own
        # (counted twice, it widened the window past the dynamic threshold:
        # rank 2, mean 0.375)
        if (
            f["status"] == "ok"
            and abs(f["x"] - x2) <= 1e-7 * (1.0 + abs(x2))
            and np.max(np.abs(np.asarray(f["state"]) - s2)) <= 1e-5
        ):
            return None
    return float(x2), "fold", s2


def _stable_end_before_fold(res: Continuation, sk, xk: float, sf, xf: float):
    """Where the stable set ends when a segment's last stable point is followed
    by a fold at which another eigenvalue is already unstable: a branch point
    between the two (missed within one step), or the fold of the stable branch
    that bifurcates there (:func:`~.continuation.bifurcating_fold`).

    Measured case: rank 2, order 3, Rademacher, mean 0.343, upper branch: the
    symmetric branch loses stability 0.346652..0.346659 before its fold, and
    a broken branch stays stable up to 0.346661 (the fold read was 6.5e-6 low).
    Returns ``(x, what, state)`` or ``None`` (a regular fold)."""
    from .continuation import _Eval, _natural, bifurcating_fold, bracketed_root

    ev = _Eval(res.path)
    A = ev.A(sf, xf)
    lam = np.linalg.eigvals(A + np.eye(ev.d) if ev.map else A)
    target = 1.0 if ev.map else 0.0
    lam = np.delete(lam, np.argmin(np.abs(lam - target)))  # the fold's own eigenvalue
    if lam.size == 0:
        return None
    other = (np.max(np.abs(lam)) - 1.0) if ev.map else np.max(lam.real)
    if other <= 1e-7:
        return None

    # march along the branch from the last stable point towards the fold, each
    # Newton from the previous state, to the first loss of stability
    known = [(xk, np.asarray(sk, dtype=float))]

    def solve(x):
        s0 = min(known, key=lambda e: abs(e[0] - x))[1]
        s, ok = _natural(ev, s0, x)
        if ok and np.max(np.abs(s - s0)) < 0.05 * (1.0 + np.max(np.abs(s0))):
            known.append((x, s))
            return s
        return None

    def f(x):
        s = solve(x)
        return np.nan if s is None else ev.margin(s, x)

    grid = xk + (xf - xk) * (1.0 - np.geomspace(1.0, 1e-6, 25))
    a, fa = xk, f(xk)
    for x in grid[1:]:
        fx = f(x)
        if not np.isfinite(fx):
            return None
        if fa < 0 < fx:
            break
        a, fa = x, fx
    else:
        # stable up to the fold: the march is on another, stable branch (the
        # broken one next to the symmetric fold); follow it past the fold to
        # where it ends (step halving), then polish that fold
        return _march_to_end(ev, known[-1][1], known[-1][0], float(np.sign(xf - xk)))
    xb = bracketed_root(f, a, x, fa, fx)
    if xb is None:
        return None
    sb = solve(xb)
    if sb is None:  # Newton lost next to the branch point: its nearest solved neighbour
        xn, sn = min(known, key=lambda e: abs(e[0] - xb))
        if abs(xn - xb) > 1e-9 * (1.0 + abs(xb)):
            return None
        xb, sb = xn, sn
    kind, s2, x2 = bifurcating_fold(ev, sb, xb, float(np.sign(xf - xb)))
    if kind == "fold":
        return float(x2), "fold", s2
    if kind == "branch_point":
        return float(xb), "branch_point", sb
    return None


def _march_to_end(ev, s, x: float, direction: float):
    """Natural-parameter steps from the stable point ``(s, x)`` in ``direction``
    until the stable branch ends (steps halved to 1e-13), the end polished by
    :func:`~.continuation.refine_fold`; ``(x, "fold", state)`` or ``None``."""
    from .continuation import _natural, refine_fold

    h = 1e-6
    steps = 0
    while h > 1e-13 and steps < 400:
        steps += 1
        x2 = x + direction * h
        s2, ok = _natural(ev, s, x2)
        if ok and np.max(np.abs(s2 - s)) < 1e-2 and ev.margin(s2, x2) < 0:
            s, x = s2, x2
            h *= 2.0
        else:
            h *= 0.25
    if h > 1e-13 or not 0.0 < x < 1.0:
        return None
    sf, xf, ok = refine_fold(ev, s, x)
    if ok and abs(xf - x) < 1e-8:
        return float(xf), "fold", sf
    return None


def _continuous(model, param, lo, hi, log, out: ThresholdResult):
    """No coexistence: ``rho(J) - 1 = 0`` at the uninformative point (Brent)."""
    from .bifurcation import locate_crossing
    from .stability import spectral_radius

    if not hasattr(model, "uninformative_state"):
        out.status = "no_transition"
        return out
    grid = np.geomspace(lo, hi, 64) if log else np.linspace(lo, hi, 64)
    system = model.system()
    theta, _, u = model.vary(param, grid)
    fu = system.evaluate("rhs", u, theta)
    if np.max(np.abs(fu - u)) > 1e-10:
        out.status = "no_transition"
        return out

    def test(x):
        th, _, uu = model.vary(param, np.array([x]))
        return float(spectral_radius(system, uu, th)[0] - 1.0)

    r = locate_crossing(
        test, lo, hi, param=param, kind=out.kind, points=64, log=log, which="last", rtol=1e-13
    )
    out.value, out.status = r.value, r.status
    return out
