"""Bifurcation points located as roots of a scalar test function.

An eigenvalue crossing (a Hopf point, the onset of chaos, the loss of positive
definiteness, the BBP point) is where a smooth *test function* of one
parameter changes sign: the real part of the leading root of a characteristic
equation, ``g * lambda_max - 1``, the smallest eigenvalue of a matrix. This
module brackets the sign change on a scan and refines it with Brent's method
to the requested tolerance, so a model declares its test function and gets a
:class:`~meanfield.solvers.threshold.ThresholdResult` with the tensor's JSON
keys (``param``, ``kind``, ``value``, ``status``).

Continuation of such a point in a second parameter (a boundary in a plane) is
:func:`trace_crossing`: the root at each value of the second parameter, each
bracket seeded from the previous root.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .threshold import ThresholdResult

__all__ = ["locate_crossing", "trace_crossing"]


def _scan(lo: float, hi: float, points: int, log: bool) -> np.ndarray:
    return np.geomspace(lo, hi, points) if log else np.linspace(lo, hi, points)


def locate_crossing(
    test: Callable[[float], float],
    lo: float,
    hi: float,
    *,
    param: str,
    kind: str,
    points: int = 33,
    log: bool | None = None,
    xtol: float = 1e-12,
    rtol: float = 1e-10,
    which: str = "first",
) -> ThresholdResult:
    """The parameter value in ``[lo, hi]`` where ``test`` changes sign.

    Parameters
    ----------
    test : callable
        ``test(value) -> float``; negative on one side of the bifurcation,
        positive on the other. A non-finite value marks a point where the
        test cannot be evaluated (it is skipped in the scan).
    lo, hi : float
        Scan range.
    param, kind : str
        Recorded in the result.
    points : int
        Scan points used to bracket the first sign change.
    log : bool, optional
        Geometric scan (default: when ``0 < lo``).
    xtol, rtol : float
        Brent tolerances (absolute and relative in the parameter).
    which : {'first', 'last'}
        The sign change nearest ``lo`` or nearest ``hi``.

    Returns
    -------
    ThresholdResult
        ``status`` ``ok`` with the root, or ``no_transition`` (one sign over
        the whole range; ``details['sign']`` says which), or
        ``not_converged`` (the test function failed everywhere).
    """
    from scipy.optimize import brentq

    lo, hi = float(lo), float(hi)
    if log is None:
        log = lo > 0
    xs = _scan(lo, hi, points, log)
    vals = np.array([_safe(test, x) for x in xs])
    ok = np.isfinite(vals)
    if not ok.any():
        return ThresholdResult(param, kind, None, "not_converged", (lo, hi))
    xs, vals = xs[ok], vals[ok]
    exact = np.flatnonzero(vals == 0)
    change = np.flatnonzero(np.sign(vals[:-1]) * np.sign(vals[1:]) < 0)
    if change.size == 0 and exact.size == 0:
        res = ThresholdResult(param, kind, None, "no_transition", (lo, hi))
        res.details["sign"] = float(np.sign(vals[0]))
        return res
    if change.size == 0:
        x = float(xs[exact[0] if which == "first" else exact[-1]])
        return ThresholdResult(param, kind, x, "ok", (x, x))
    i = int(change[0] if which == "first" else change[-1])
    a, b = float(xs[i]), float(xs[i + 1])
    root = brentq(test, a, b, xtol=xtol, rtol=max(rtol, 4 * np.finfo(float).eps))
    return ThresholdResult(param, kind, float(root), "ok", (a, b))


def trace_crossing(
    test: Callable[[float, float], float],
    seconds,
    lo: float,
    hi: float,
    *,
    param: str,
    kind: str,
    points: int = 33,
    log: bool | None = None,
    **kw,
) -> tuple[np.ndarray, np.ndarray]:
    """A boundary in a plane: the crossing of ``test(value, second)`` at each ``second``.

    Returns the roots (NaN where there is none in ``[lo, hi]``) and the statuses.
    After the first root, the bracket search starts from the previous root and
    widens geometrically, so a smooth boundary costs a few evaluations a point.
    """
    seconds = np.asarray(seconds, dtype=float)
    roots = np.full(seconds.shape, np.nan)
    status = np.empty(seconds.shape, dtype=object)
    prev = None
    for k, y in enumerate(seconds):
        f = lambda x, y=y: test(x, y)  # noqa: E731
        res = None
        if prev is not None:
            res = _near(f, prev, lo, hi, param, kind, **kw)
        if res is None:
            res = locate_crossing(f, lo, hi, param=param, kind=kind, points=points, log=log, **kw)
        roots[k] = np.nan if res.value is None else res.value
        status[k] = res.status
        prev = res.value if res.status == "ok" else None
    return roots, status.astype(str)


def _near(f, x0, lo, hi, param, kind, **kw):
    """Bracket a root of ``f`` near ``x0`` by widening steps; None if it fails."""
    from scipy.optimize import brentq

    f0 = _safe(f, x0)
    if not np.isfinite(f0):
        return None
    if f0 == 0:
        return ThresholdResult(param, kind, float(x0), "ok", (x0, x0))
    step = 1e-3 * max(abs(x0), 1e-12)
    for _ in range(40):
        for x1 in (x0 - step, x0 + step):
            if not lo <= x1 <= hi:
                continue
            f1 = _safe(f, x1)
            if np.isfinite(f1) and np.sign(f1) != np.sign(f0):
                a, b = sorted((x0, x1))
                root = brentq(f, a, b, xtol=kw.get("xtol", 1e-12), rtol=kw.get("rtol", 1e-10))
                return ThresholdResult(param, kind, float(root), "ok", (a, b))
        step *= 2.0
    return None


def _safe(f, x) -> float:
    try:
        v = float(f(x))
    except (ValueError, ArithmeticError, np.linalg.LinAlgError):
        return np.nan
    return v
