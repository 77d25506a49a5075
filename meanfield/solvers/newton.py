"""Compiled, batched, safeguarded Newton solver for fixed points of a declared map.

For a map ``F`` (state evolution) the fixed points solve ``G(s) = F(s) - s = 0``.
Plain iteration slows down critically near a transition (the contraction
factor tends to one); Newton on ``G`` with the sympy Jacobian ``J - I``
converges quadratically there. Newton alone, however, may land on *another*
fixed point than the iteration from the same start (an unstable middle
branch, or a branch beyond one the iteration would stop at). The driver
therefore accepts a Newton limit ``x`` from the current iterate ``s`` only if

1. ``max |F(x) - x| <= tol`` (convergence is judged on the residual);
2. ``x`` is *stable for the damped iteration*: every eigenvalue ``l`` of
   ``J(x)`` has ``|1 - eta + eta l| <= 1`` (``eta`` the damping), so the
   iteration can converge to it at all;
3. ``x`` lies *ahead* of ``s`` in the direction the iteration moves,
   ``(x - s) . G(s) > 0``;
4. no fixed point lies between: the residual projected on the chord,
   ``G(s + tau (x - s)) . (x - s)``, stays positive at :data:`SEGMENT` points
   ``tau in (0, 1)``.

For a monotone map (Bayes-optimal state evolution is one: ``F`` is
order-preserving, Nishimori) the iteration from a start with ``F(s0) >= s0``
increases to the *least* fixed point above ``s0`` (Kleene/Tarski), which on a
branch traced along the chord is the first zero of the projected residual:
conditions 3-4 select it (up to the chord resolution). For a general map the
conditions are a safeguard, not a proof; when any of them fails the driver
falls back to the iteration itself, so the answer is never a different branch
than the one the checks allow, and it stays correct (only slower) when Newton
cannot be trusted.

Escape from a weakly unstable point (the BBP regime, where the iteration grows
by a factor ``1/delta`` per step from ``M = eps``) is accelerated by a search
along the iteration direction: the step ``s + alpha G(s)`` is doubled while the
projected residual stays positive and the residual keeps its direction
(cosine > :data:`RAY_COS`), i.e. while the orbit is straight and no fixed
point has been crossed; the iterate moves to the last such point.
"""

from __future__ import annotations

import math

import numpy as np

from .._codegen import njit
from ._kernels import spectral_radius

__all__ = ["newton_driver", "STATUS", "SEGMENT", "RAY_COS"]

STATUS = ("ok", "not_converged", "diverged")
SEGMENT = 12
RAY_SAMPLES = 3
RAY_GROWTH = 4.0
RAY_COS = 0.98
NEWTON_STEPS = 40

_DRIVERS: dict[tuple, object] = {}

_GENERIC = '''
def _lu_solve(A, b, d):
    """Solve A x = b in place (partial pivoting); False when singular."""
    for k in range(d):
        p = k
        big = abs(A[k, k])
        for i in range(k + 1, d):
            if abs(A[i, k]) > big:
                big = abs(A[i, k])
                p = i
        if not big > 0.0:
            return False
        if p != k:
            for j in range(d):
                t = A[k, j]
                A[k, j] = A[p, j]
                A[p, j] = t
            t = b[k]
            b[k] = b[p]
            b[p] = t
        for i in range(k + 1, d):
            m = A[i, k] / A[k, k]
            if m != 0.0:
                for j in range(k, d):
                    A[i, j] -= m * A[k, j]
                b[i] -= m * b[k]
    for k in range(d - 1, -1, -1):
        acc = b[k]
        for j in range(k + 1, d):
            acc -= A[k, j] * b[j]
        b[k] = acc / A[k, k]
    return True


def _resid(s, th, f, g, d):
    ev_f(s, th, f)
    res = 0.0
    fin = True
    for i in range(d):
        g[i] = f[i] - s[i]
        a = abs(g[i])
        if not math.isfinite(a):
            fin = False
        if a > res:
            res = a
    return res, fin


def _stable(x, th, damping, jac, d):
    ev_j(x, th, jac)
    M = np.empty((d, d))
    for i in range(d):
        for j in range(d):
            M[i, j] = damping * jac[i, j]
        M[i, i] += 1.0 - damping
    if d == 1:
        return abs(M[0, 0]) <= 1.0 + 1e-9
    return _spectral_radius(M) <= 1.0 + 1e-9


def _newton(s, th, tol, damping, x, f, g, jac, A, dx, y, gy, d):
    """Newton from s into x; returns (accepted, evaluations)."""
    for i in range(d):
        x[i] = s[i]
    nev = 0
    conv = False
    res0 = np.inf
    grow = 0
    for k in range(NEWTON_STEPS):
        res, fin = _resid(x, th, f, g, d)
        nev += 1
        if not fin:
            return False, nev
        if res <= tol:
            conv = True
            break
        # give up early on a Newton run that is not contracting
        grow = grow + 1 if res >= res0 else 0
        if grow >= 3:
            return False, nev
        res0 = res
        ev_j(x, th, jac)
        for i in range(d):
            for j in range(d):
                A[i, j] = jac[i, j]
            A[i, i] -= 1.0
            dx[i] = -g[i]
        if not _lu_solve(A, dx, d):
            return False, nev
        for i in range(d):
            x[i] += dx[i]
    if not conv:
        return False, nev
    # ahead of s along the iteration direction G(s)?
    _resid(s, th, f, g, d)
    ahead = 0.0
    dist = 0.0
    for i in range(d):
        ahead += (x[i] - s[i]) * g[i]
        dist = max(dist, abs(x[i] - s[i]))
    if dist > 1e-13 * (1.0 + abs(x[0])):
        if not ahead > 0.0:
            return False, nev
        # no fixed point between s and x (projected residual keeps its sign)
        for q in range(1, SEGMENT):
            tau = q / SEGMENT
            for i in range(d):
                y[i] = s[i] + tau * (x[i] - s[i])
            _resid(y, th, f, gy, d)
            nev += 1
            pr = 0.0
            for i in range(d):
                pr += gy[i] * (x[i] - s[i])
            if not pr > 0.0:
                return False, nev
    if not _stable(x, th, damping, jac, d):
        return False, nev
    return True, nev


def _ray(s, th, f, g, y, gy, d):
    """Move s along G(s) while the orbit is straight.

    Returns the evaluations used, negated when s moved."""
    _resid(s, th, f, g, d)
    gn = 0.0
    for i in range(d):
        gn += g[i] * g[i]
    if not gn > 0.0:
        return 1
    best = 1.0
    alpha = RAY_GROWTH
    nev = 1
    for k in range(60):
        straight = True
        # the new stretch (best, alpha] sampled densely, so that a fixed point
        # (a sign change of the projected residual) cannot be stepped over
        for q in range(1, RAY_SAMPLES + 1):
            a = best + (alpha - best) * q / RAY_SAMPLES
            for i in range(d):
                y[i] = s[i] + a * g[i]
            res, fin = _resid(y, th, f, gy, d)
            nev += 1
            pr = 0.0
            yn = 0.0
            for i in range(d):
                pr += gy[i] * g[i]
                yn += gy[i] * gy[i]
            if not (fin and pr > 0.0 and pr >= RAY_COS * math.sqrt(gn * yn)):
                straight = False
                break
        if not straight:
            break
        best = alpha
        alpha *= RAY_GROWTH
    if best > 1.0:
        for i in range(d):
            s[i] = s[i] + best * g[i]
        return -nev
    return nev


def _solve_row(s, th, damping, tol, max_iter, use_newton, d):
    f = np.empty(d)
    g = np.empty(d)
    x = np.empty(d)
    y = np.empty(d)
    gy = np.empty(d)
    dx = np.empty(d)
    jac = np.empty((d, d))
    A = np.empty((d, d))
    it = 0
    st = 1
    check = 2
    gap = 2
    res = np.inf
    prev = np.inf
    while True:
        res, fin = _resid(s, th, f, g, d)
        if not fin:
            st = 2
            break
        if res <= tol:
            st = 0
            break
        if it >= max_iter:
            break
        if use_newton and it >= check:
            ok, nev = _newton(s, th, tol, damping, x, f, g, jac, A, dx, y, gy, d)
            if ok:
                for i in range(d):
                    s[i] = x[i]
                res, fin = _resid(s, th, f, g, d)
                st = 0
                it += 1
                break
            gap = min(2 * gap, 256)
            check = it + gap
            if res > prev:  # growing steps: escaping a weakly unstable point
                if _ray(s, th, f, g, y, gy, d) < 0:
                    check = it + 1  # moved: try Newton again from there
            res, fin = _resid(s, th, f, g, d)
            if not fin:
                st = 2
                break
        prev = res
        for i in range(d):
            s[i] = s[i] + damping * g[i]
        it += 1
    return it, st, res


def drive(S0, TH, damping, tol, max_iter, use_newton, S, IT, ST, RES):
    d = S0.shape[1]
    for b in prange(S0.shape[0]):
        s = S0[b].copy()
        it, st, res = _solve_row(s, TH[b], damping, tol, max_iter, use_newton, d)
        for i in range(d):
            S[b, i] = s[i]
        IT[b] = it
        ST[b] = st
        RES[b] = res
'''


def _disk_driver(src: str, f, jf, parallel: bool):
    """The driver as a disk-cached generated module (see :func:`meanfield._codegen.disk_module`):
    compiled once per machine instead of once per process; ``None`` without the cache."""
    from .. import _codegen

    imp_f, imp_j = _codegen.cpu_import(f), _codegen.cpu_import(jf)
    if imp_f is None or imp_j is None:
        return None
    head = [
        "import math",
        "import numba",
        "import numpy as np",
        "from numba import prange" if parallel else "prange = range",
        f"{imp_f} as f_",
        f"{imp_j} as j_",
        "from meanfield.solvers._kernels import spectral_radius as _spectral_radius",
        f"SEGMENT = {SEGMENT!r}",
        f"RAY_COS = {RAY_COS!r}",
        f"RAY_SAMPLES = {RAY_SAMPLES!r}",
        f"RAY_GROWTH = {RAY_GROWTH!r}",
        f"NEWTON_STEPS = {NEWTON_STEPS!r}",
    ]
    body = _codegen.jit_decorated(
        src, "numba.njit(cache=True)",
        {"drive": f"numba.njit(cache=True, parallel={bool(parallel)})"},
    )
    try:
        mod = _codegen.disk_module("\n".join(head) + "\n\n\n" + body)
    except Exception:  # pragma: no cover - a broken cache folder never breaks a run
        return None
    return None if mod is None else mod.drive


def newton_driver(system, parallel: bool = False):
    """The compiled batch driver for ``system`` (cached per system and mode).

    ``drive(S0, TH, damping, tol, max_iter, use_newton, S, IT, ST, RES)``
    solves each row of ``S0``/``TH`` in place of ``S`` and reports the map
    evaluations ``IT``, the status index ``ST`` (into :data:`STATUS`) and the
    final residual ``RES = max |F(s) - s|``.
    """
    import numba

    f = system._fn("rhs")
    jf = system._fn("jacobian")
    key = (f.key, jf.key, bool(parallel))
    if key in _DRIVERS:
        return _DRIVERS[key]
    d, k = system.dim, len(system.params)
    args = ", ".join([f"s[{i}]" for i in range(d)] + [f"th[{j}]" for j in range(k)])
    ev = [
        "def ev_f(s, th, out):",
        f"    r = f_({args})",
        *[f"    out[{i}] = r[{i}]" for i in range(d)],
        "def ev_j(s, th, out):",
        f"    r = j_({args})",
        *[f"    out[{i}, {j}] = r[{i * d + j}]" for i in range(d) for j in range(d)],
    ]
    ns = {
        "f_": njit(f),
        "j_": njit(jf),
        "math": math,
        "np": np,
        "_spectral_radius": spectral_radius,
        "prange": numba.prange if parallel else range,
        "SEGMENT": SEGMENT,
        "RAY_COS": RAY_COS,
        "RAY_SAMPLES": RAY_SAMPLES,
        "RAY_GROWTH": RAY_GROWTH,
        "NEWTON_STEPS": NEWTON_STEPS,
    }
    src = "\n".join(ev) + "\n" + _GENERIC
    out = _disk_driver(src, f, jf, parallel)
    if out is not None:
        _DRIVERS[key] = out
        return out
    exec(compile(src, f"<newton driver {f.name}>", "exec"), ns)
    jit = numba.njit(cache=False)
    for name in ("ev_f", "ev_j", "_lu_solve", "_resid", "_stable", "_newton", "_ray", "_solve_row"):
        ns[name] = jit(ns[name])
    out = numba.njit(cache=False, parallel=bool(parallel))(ns["drive"])
    _DRIVERS[key] = out
    return out
