"""Phase-transition thresholds of a declared map by bracketing and bisection.

Definitions (Lesieur et al. 2017 naming; Kadmon & Ganguli 2018 phases), for a
model that declares an uninformative (``random``) and an ``informed``
initialisation:

* **algorithmic** -- the edge of the easy phase: beyond it, state evolution
  from the random start no longer reaches the informative fixed point.
* **dynamic** -- the edge beyond which no informative fixed point exists
  (the informed start falls to the uninformative branch).
* **information** -- inside the coexistence region, where the two branches'
  free entropies (the declared potential) cross.

When no coexistence region exists the transition, if any, is continuous: the
uninformative fixed point loses linear stability (the sympy Jacobian's
spectral radius crosses one) and the three thresholds coincide. When there is
neither, the status is ``no_transition``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._model import Model
from .._params import ParamError
from .fixed_point import iterate
from .stability import spectral_radius

__all__ = ["KINDS", "ThresholdResult", "find_threshold", "branches"]

KINDS = ("algorithmic", "dynamic", "information")
COEXIST_TOL = 1e-6


@dataclass
class ThresholdResult:
    """A threshold, its status, and the bracket it was bisected in."""

    param: str
    kind: str
    value: float | None
    status: str
    bracket: tuple[float, float] | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        v = self.value
        return {
            "param": self.param,
            "kind": self.kind,
            "value": None if v is None or not np.isfinite(v) else float(v),
            "status": self.status,
        }


BISECT_MAX_ITER = 20_000
"""Iteration cap inside bisections: near a spinodal the iteration slows
critically (~ 1/sqrt(distance)); a start still lingering after this many
steps is within ~1e-8 (relative) of the edge."""

_SCANS: dict = {}


def branches(model: Model, param: str, values: np.ndarray, max_iter: int | None = None):
    """Fixed points from the random and informed starts at each value of ``param``.

    Returns
    -------
    s_random, s_informed : arrays (n, dim)
    status : array (n,) of 'ok' or the first failure
    phi_random, phi_informed : arrays (n,) of the potential (NaN if none)
    """
    ms = [model.replace(**{param: float(v)}) for v in values]
    system = model.system()
    for m in ms:
        if m.system() is not system:
            raise ParamError(
                param, "a parameter that leaves the model's structure unchanged", param
            )
    theta = np.stack([m.theta() for m in ms])
    s0 = np.stack([np.stack([m.initial_state("random"), m.initial_state("informed")]) for m in ms])
    opts = dict(model.solver_options())
    if max_iter is not None:
        opts["max_iter"] = min(opts.get("max_iter", max_iter), max_iter)
    S, _, ST = iterate(system, s0, theta[:, None, :], **opts)
    status = np.where(
        (ST == "ok").all(axis=1), "ok", np.where(ST[:, 0] != "ok", ST[:, 0], ST[:, 1])
    )
    if system.potential is not None:
        phi = system.evaluate("potential", S, theta[:, None, :])
    else:
        phi = np.full(S.shape[:2], np.nan)
    return S[:, 0], S[:, 1], status, phi[:, 0], phi[:, 1]


def _bisect(pred, a: float, b: float, rtol: float, log: bool) -> float:
    """Boundary between ``pred(a) == True`` and ``pred(b) == False``."""
    for _ in range(200):
        if abs(b - a) <= rtol * max(abs(a), abs(b)):
            break
        mid = np.sqrt(a * b) if log else 0.5 * (a + b)
        if pred(mid):
            a = mid
        else:
            b = mid
    return 0.5 * (a + b)


def find_threshold(
    model: Model,
    *,
    param: str = "delta",
    kind: str = "algorithmic",
    lo: float | None = None,
    hi: float | None = None,
    points: int = 64,
    rtol: float = 1e-8,
    method: str = "continuation",
) -> ThresholdResult:
    """Locate a threshold of ``model`` in ``param``.

    Parameters
    ----------
    model : Model
        A model declaring ``random`` and ``informed`` initialisations.
    param : str
        A numeric, non-structural parameter (e.g. ``delta``, ``mean``).
    kind : {'algorithmic', 'dynamic', 'information'}
    lo, hi : float, optional
        Scan range (default: three decades below to two above the model's
        natural scale of ``param``).
    points : int
        Scan points before bisection.
    rtol : float
        Relative bracket width at which bisection stops (``method="scan"``).
    method : {'continuation', 'scan'}
        ``continuation`` (default): the branches are traced by pseudo-arclength
        continuation (:mod:`meanfield.solvers.continuation`); the algorithmic
        and dynamic thresholds are the ends of the coexisting stable segments
        (folds by Newton on the bordered system, branch points by Brent on the
        stability margin), the information threshold the root of the
        free-energy difference between the two continued branches, and a
        continuous transition the root of the spectral radius minus one at
        the uninformative point. ``scan``: iteration on a grid and bisection
        (the former method; also the fallback when continuation fails).

    Returns
    -------
    ThresholdResult
        ``status`` is ``ok``, ``no_transition``, ``out_of_range`` or
        ``not_converged``.
    """
    if kind not in KINDS:
        raise ParamError("kind", "one of " + ", ".join(KINDS), kind)
    spec = model.params.get(param)
    if spec is None or spec.kind != "float":
        floats = ", ".join(k for k, p in model.params.items() if p.kind == "float")
        raise ParamError("param", f"a float parameter of {model.name} ({floats})", param)
    scale = model.scan_scale(param) if hasattr(model, "scan_scale") else 1.0
    positive = spec.lo is not None and spec.lo >= 0
    if lo is None:
        lo = 1e-3 * scale if positive else (spec.lo if spec.lo is not None else -scale)
    if hi is None:
        hi = 1e1 * scale if positive else (spec.hi if spec.hi is not None else scale)
    lo, hi = float(lo), float(hi)
    spec.validate(lo)
    spec.validate(hi)
    if not lo < hi:
        raise ParamError("lo", f"a value below hi={hi}", lo)
    log = positive and lo > 0
    if method not in ("continuation", "scan"):
        raise ParamError("method", "continuation or scan", method)
    if method == "continuation":
        from .continuation_threshold import threshold_by_continuation

        res = threshold_by_continuation(model, param, kind, lo, hi, log=log)
        if res is not None:
            return res
    grid = np.geomspace(lo, hi, points) if log else np.linspace(lo, hi, points)
    key = (repr(model.replace(**{param: float(grid[0])})), param, lo, hi, points)
    if key not in _SCANS:
        scan = branches(model, param, grid)
        _SCANS[key] = _refine(model, param, grid, *scan, log)
        if len(_SCANS) > 64:
            _SCANS.pop(next(iter(_SCANS)))
    grid, sr, si, st, pr, pi = _SCANS[key]
    result = ThresholdResult(param, kind, None, "ok")
    if not (st == "ok").all():
        bad = grid[st != "ok"]
        result.details["unconverged"] = bad.tolist()
    coexist = (np.max(np.abs(sr - si), axis=1) > COEXIST_TOL) & (st == "ok")

    def coexist_at(x: float) -> bool:
        a, b, s, _, _ = branches(model, param, np.array([x]), max_iter=BISECT_MAX_ITER)
        return bool(np.max(np.abs(a - b)) > COEXIST_TOL)

    if coexist.any():
        idx = np.flatnonzero(coexist)
        # the coexistence interval adjacent to the easy phase: the run of
        # consecutive coexisting points containing the one with the largest
        # informative overlap gain
        gain = np.sum(si - sr, axis=1)
        k0 = idx[np.argmax(gain[idx])]
        left = k0
        while left - 1 >= 0 and coexist[left - 1]:
            left -= 1
        right = k0
        while right + 1 < len(grid) and coexist[right + 1]:
            right += 1

        # the easy side is where the informative branch continues outside the
        # window (both starts reach it); on the other side the informed start
        # falls to the uninformative branch
        def continues(outside, inside):
            o = np.sum(sr[outside])
            return abs(o - np.sum(si[inside])) < abs(o - np.sum(sr[inside]))

        left_out = left - 1 if left > 0 else None
        right_out = right + 1 if right + 1 < len(grid) else None
        if left_out is not None:
            easy_left = continues(left_out, left)
        elif right_out is not None:
            easy_left = not continues(right_out, right)
        else:
            easy_left = True
        if easy_left:
            alg_edge, alg_out = left, left_out
            dyn_edge, dyn_out = right, right_out
        else:
            alg_edge, alg_out = right, right_out
            dyn_edge, dyn_out = left, left_out

        def edge(inside, outside):
            if outside is None:
                return None
            return _bisect(coexist_at, grid[inside], grid[outside], rtol, log)

        if kind == "dynamic":
            v = edge(dyn_edge, dyn_out)
            result.value = v
            result.status = "ok" if v is not None else "out_of_range"
        elif kind == "algorithmic":
            v = edge(alg_edge, alg_out)
            if v is None:
                # coexistence down to the end of the scan: no easy phase if the
                # uninformative point is a fixed point that never loses stability
                v, ok = _never_unstable(model, param, grid, positive)
                result.status = "ok" if ok else "out_of_range"
            result.value = v
        else:
            if np.isnan(pi - pr).any():
                return ThresholdResult(param, kind, None, "no_potential")
            lo_c, hi_c = grid[min(left, right)], grid[max(left, right)]

            def optimal_informative(x: float) -> bool:
                """True where the informative branch is the Bayes-optimal one."""
                a, b, s, p_r, p_i = branches(model, param, np.array([x]), max_iter=BISECT_MAX_ITER)
                if np.max(np.abs(a - b)) > COEXIST_TOL:
                    return bool(p_i[0] > p_r[0])
                on_easy_side = x < lo_c if easy_left else x > hi_c
                return bool(on_easy_side)

            a_idx = alg_out if alg_out is not None else alg_edge
            if dyn_out is None or not optimal_informative(grid[a_idx]):
                result.status = "out_of_range"
            else:
                result.value = _bisect(optimal_informative, grid[a_idx], grid[dyn_out], rtol, log)
        result.bracket = (float(grid[0]), float(grid[-1]))
        return result

    # no coexistence: continuous transition of the uninformative fixed point?
    v, status = _linear_instability(model, param, grid, log, rtol)
    result.value, result.status = v, status
    return result


def _refine(model, param, grid, sr, si, st, pr, pi, log, levels: int = 4, sub: int = 12):
    """Zoom into the steepest step of the random branch until coexistence shows.

    A narrow coexistence window (near a tricritical point) can fall between
    two scan points; the random-start overlap then jumps across that cell.
    """
    for _ in range(levels):
        if ((np.max(np.abs(sr - si), axis=1) > COEXIST_TOL) & (st == "ok")).any():
            break
        jump = np.abs(np.diff(np.sum(sr, axis=1)))
        if jump.size == 0 or jump.max() < 1e-3:
            break
        j = int(np.argmax(jump))
        fine = (np.geomspace if log else np.linspace)(grid[j], grid[j + 1], sub + 2)[1:-1]
        out = branches(model, param, fine)
        grid = np.concatenate([grid[: j + 1], fine, grid[j + 1 :]])
        arrs = []
        for old, new in zip((sr, si, st, pr, pi), out, strict=True):
            arrs.append(np.concatenate([old[: j + 1], new, old[j + 1 :]]))
        sr, si, st, pr, pi = arrs
    return grid, sr, si, st, pr, pi


def _uninformative(model: Model, param: str, values: np.ndarray):
    ms = [model.replace(**{param: float(x)}) for x in values]
    u = np.stack([m.uninformative_state() for m in ms])
    theta = np.stack([m.theta() for m in ms])
    return model.system(), u, theta


def _linear_instability(model, param, grid, log, rtol):
    if not hasattr(model, "uninformative_state"):
        return None, "no_transition"
    system, u, theta = _uninformative(model, param, grid)
    fu = system.evaluate("rhs", u, theta)
    if np.max(np.abs(fu - u)) > 1e-10:
        return None, "no_transition"
    margin = spectral_radius(system, u, theta) - 1.0
    sign = np.sign(margin)
    ch = np.flatnonzero(np.diff(sign) != 0)
    if len(ch) == 0:
        return None, "no_transition"
    j = ch[-1]
    first_unstable = margin[j] > 0

    def unstable(x):
        s, uu, th = _uninformative(model, param, np.array([x]))
        return bool((spectral_radius(s, uu, th)[0] - 1.0 > 0) == first_unstable)

    return _bisect(unstable, grid[j], grid[j + 1], rtol, log), "ok"


def _never_unstable(model, param, grid, positive):
    if not hasattr(model, "uninformative_state"):
        return None, False
    system, u, theta = _uninformative(model, param, grid)
    fu = system.evaluate("rhs", u, theta)
    if np.max(np.abs(fu - u)) > 1e-10:
        return None, False
    margin = spectral_radius(system, u, theta) - 1.0
    if (margin < 0).all() and positive:
        return 0.0, True
    return None, False
