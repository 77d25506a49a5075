"""The system-independent part of the Newton driver (:mod:`meanfield.solvers.newton`),
compiled once per machine.

Every function takes the system's evaluators as first-class functions
(``ev_f(s, th, out)``: the map; ``ev_j(s, th, out)``: its Jacobian, both
``numba.cfunc``), so numba compiles this module once for all systems and
caches it on disk (``cache=True``); a new system compiles only its two small
evaluators. The algorithm and its safeguards are documented in
:mod:`meanfield.solvers.newton`.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import prange

SEGMENT = 12
CHORD_QUAD_TOL = 0.1
RAY_SAMPLES = 3
RAY_GROWTH = 4.0
RAY_COS = 0.98
RAY_LINEAR = 0.05
RAY_FAST = 64.0
RAY_BISECT = 3
NEWTON_STEPS = 40
SQUARINGS = 56

_jit = numba.njit(cache=True)


@_jit
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


@_jit
def _resid(ev_f, s, th, f, g, d):
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


@_jit
def _log_radius(M, d):
    """``log`` of the spectral radius of the real ``d x d`` matrix ``M`` (``-inf`` for 0).

    Gelfand's formula by repeated squaring: with ``A_0 = M`` and
    ``A_{k+1} = (A_k / s_k)^2``, ``s_k = max |A_k|``,
    ``log rho = lim sum_k 2^-k log s_k`` (:data:`SQUARINGS` squarings: the
    constant of ``||M^N|| ~ C rho^N`` enters as ``log(C) / 2^SQUARINGS``).
    No LAPACK call, so the driver compiles in a fraction of the time
    ``numpy.linalg.eigvals`` takes to compile.
    """
    A = M.copy()
    B = np.empty((d, d))
    logr = 0.0
    w = 1.0
    for _k in range(SQUARINGS + 1):
        big = 0.0
        for i in range(d):
            for j in range(d):
                big = max(big, abs(A[i, j]))
        if not math.isfinite(big):
            return np.inf
        if big == 0.0:
            return -np.inf
        logr += w * math.log(big)
        if _k == SQUARINGS:
            break
        for i in range(d):
            for j in range(d):
                A[i, j] /= big
        for i in range(d):
            for j in range(d):
                acc = 0.0
                for m in range(d):
                    acc += A[i, m] * A[m, j]
                B[i, j] = acc
        for i in range(d):
            for j in range(d):
                A[i, j] = B[i, j]
        w *= 0.5
    return logr


@_jit
def _stable(ev_j, x, th, damping, jac, d):
    ev_j(x, th, jac)
    M = np.empty((d, d))
    for i in range(d):
        for j in range(d):
            M[i, j] = damping * jac[i, j]
        M[i, i] += 1.0 - damping
    if d == 1:
        return abs(M[0, 0]) <= 1.0 + 1e-9
    return _log_radius(M, d) <= math.log1p(1e-9)


@_jit
def _chord_quadratic(ev_f, s, x, th, p0, jac, f, y, gy, d):
    """The projected residual ``p(tau) = G(s + tau (x - s)) . (x - s)`` at
    ``tau = 1/2`` if it agrees with its quadratic model, else ``-1``.

    The model ``p = a u + b u^2`` (``u = 1 - tau``) takes ``p(1) = 0``,
    ``p'(1) = -a = D^T (J(x) - I) D`` (``D = x - s``, ``J(x)`` in ``jac``) and
    ``p(0) = p0 = a + b > 0``; with ``a > 0`` it has no zero in ``(0, 1)``.
    A measured ``p(1/2)`` within :data:`CHORD_QUAD_TOL` of the model's
    ``a/2 + b/4`` confirms it (one evaluation instead of :data:`SEGMENT` - 1
    samples); a disagreement sends the caller to the sampled check.
    """
    a = 0.0
    for i in range(d):
        acc = -(x[i] - s[i])
        for j in range(d):
            acc += jac[i, j] * (x[j] - s[j])
        a -= (x[i] - s[i]) * acc
    if not a > 0.0:
        return -1.0
    b = p0 - a
    pred = 0.5 * a + 0.25 * b
    for i in range(d):
        y[i] = 0.5 * (s[i] + x[i])
    _resid(ev_f, y, th, f, gy, d)
    pm = 0.0
    for i in range(d):
        pm += gy[i] * (x[i] - s[i])
    if pred > 0.0 and pm > 0.0 and abs(pm - pred) <= CHORD_QUAD_TOL * pred:
        return pm
    return -1.0


@_jit
def _newton(ev_f, ev_j, s, gs, th, tol, damping, x, f, g, jac, A, dx, y, gy, d):
    """Newton from s into x; returns (accepted, evaluations, residual at x).

    ``gs`` holds ``G(s)`` on entry (the caller has just evaluated it) and is
    left unchanged. A run whose first step goes against the iteration
    direction (``dx . G(s) <= 0``, e.g. towards the unstable point an orbit
    is escaping from) is abandoned at once: its limit could not pass the
    ahead-check below."""
    for i in range(d):
        x[i] = s[i]
        g[i] = gs[i]
    nev = 0
    conv = False
    res0 = np.inf
    res = np.inf
    grow = 0
    for k in range(NEWTON_STEPS):
        if k > 0:
            res, fin = _resid(ev_f, x, th, f, g, d)
            nev += 1
            if not fin:
                return False, nev, res
        else:
            res = 0.0
            for i in range(d):
                res = max(res, abs(g[i]))
        if res <= tol:
            conv = True
            break
        # give up early on a Newton run that is not contracting
        grow = grow + 1 if res >= res0 else 0
        if grow >= 3:
            return False, nev, res
        res0 = res
        ev_j(x, th, jac)
        for i in range(d):
            for j in range(d):
                A[i, j] = jac[i, j]
            A[i, i] -= 1.0
            dx[i] = -g[i]
        if not _lu_solve(A, dx, d):
            return False, nev, res
        if k == 0:
            back = 0.0
            for i in range(d):
                back += dx[i] * gs[i]
            if not back > 0.0:
                return False, nev, res
        for i in range(d):
            x[i] += dx[i]
    if not conv:
        return False, nev, res
    # ahead of s along the iteration direction G(s)?
    ahead = 0.0
    dist = 0.0
    for i in range(d):
        ahead += (x[i] - s[i]) * gs[i]
        dist = max(dist, abs(x[i] - s[i]))
    if dist > 1e-13 * (1.0 + abs(x[0])):
        if not ahead > 0.0:
            return False, nev, res
        if not _stable(ev_j, x, th, damping, jac, d):  # leaves jac = J(x)
            return False, nev, res
        # no fixed point between s and x (projected residual keeps its sign):
        # first the quadratic model of the projected residual along the chord
        p_half = _chord_quadratic(ev_f, s, x, th, ahead, jac, f, y, gy, d)
        nev += 1
        if p_half > 0.0:
            return True, nev, res
        for q in range(1, SEGMENT):
            tau = q / SEGMENT
            for i in range(d):
                y[i] = s[i] + tau * (x[i] - s[i])
            _resid(ev_f, y, th, f, gy, d)
            nev += 1
            pr = 0.0
            for i in range(d):
                pr += gy[i] * (x[i] - s[i])
            if not pr > 0.0:
                return False, nev, res
        return True, nev, res
    if not _stable(ev_j, x, th, damping, jac, d):
        return False, nev, res
    return True, nev, res


@_jit
def _ray_point(ev_f, s, a, th, f, g, y, gy, gn, d):
    """``r(a) = G(s + a g) . g / |g|^2`` at a point of the ray where the orbit
    is still straight (a finite residual within :data:`RAY_COS` of the
    direction of ``g``), else ``-1``."""
    for i in range(d):
        y[i] = s[i] + a * g[i]
    res, fin = _resid(ev_f, y, th, f, gy, d)
    pr = 0.0
    yn = 0.0
    for i in range(d):
        pr += gy[i] * g[i]
        yn += gy[i] * gy[i]
    if not (fin and pr > 0.0 and pr >= RAY_COS * math.sqrt(gn * yn)):
        return -1.0
    return pr / gn


@_jit
def _ray(ev_f, s, th, f, g, y, gy, d):
    """Move s along G(s) (held in ``g`` on entry) while the orbit is straight.

    Stretches ``(best, alpha]`` of the ray ``s + a G(s)`` are sampled at
    :data:`RAY_SAMPLES` points each; a stretch is accepted while the projected
    residual ``r(a) = G(s + a G(s)) . G(s) / |G(s)|^2`` stays positive and the
    residual keeps its direction. The next stretch is :data:`RAY_GROWTH` times
    longer, or up to :data:`RAY_FAST` times while the orbit is in its linear
    regime: ``r`` follows the line ``1 + kappa a`` (fitted at the first
    sample, ``kappa > 0``: escaping) to a relative departure ``dev``, and a
    departure that grows like ``a`` (the quadratic term) stays below
    :data:`RAY_LINEAR` for a growth of ``RAY_LINEAR / dev``; such a stretch
    is sampled at its end only (two more bisections if that sample fails). A fixed point on
    the ray needs ``r`` to fall to zero, a departure of order one, so it is not
    stepped over while the departure stays small. When a sample fails, the
    iterate moves to the last good sample after :data:`RAY_BISECT` bisections
    of the bracket (last good sample, failed sample].

    Returns the evaluations used, negated when s moved."""
    gn = 0.0
    for i in range(d):
        gn += g[i] * g[i]
    if not gn > 0.0:
        return 1
    best = 1.0
    alpha = RAY_GROWTH
    nev = 1
    kappa = 0.0
    fitted = False
    nsamp = RAY_SAMPLES
    for _k in range(60):
        straight = True
        dev = 0.0
        for q in range(1, nsamp + 1):
            a = best + (alpha - best) * q / nsamp
            r = _ray_point(ev_f, s, a, th, f, g, y, gy, gn, d)
            nev += 1
            if not r > 0.0:
                # the orbit bends or crosses a fixed point in (last good, a]:
                # move to the last good sample, then bisect the bracket
                lo = best + (alpha - best) * (q - 1) / nsamp
                hi = a
                for _b in range(RAY_BISECT + (2 if nsamp == 1 else 0)):
                    mid = 0.5 * (lo + hi)
                    nev += 1
                    if _ray_point(ev_f, s, mid, th, f, g, y, gy, gn, d) > 0.0:
                        lo = mid
                    else:
                        hi = mid
                best = lo
                straight = False
                break
            if not fitted:
                kappa = (r - 1.0) / a
                fitted = True
            else:
                lin = 1.0 + kappa * a
                dev = max(dev, abs(r - lin) / abs(lin))
        if not straight:
            break
        best = alpha
        growth = RAY_GROWTH
        if kappa > 0.0 and dev < RAY_LINEAR:
            growth = RAY_FAST if dev <= RAY_LINEAR / RAY_FAST else RAY_LINEAR / dev
            growth = max(growth, RAY_GROWTH)
        # a stretch predicted by the linear model is checked at its end only
        nsamp = 1 if growth > RAY_GROWTH else RAY_SAMPLES
        alpha = best * growth
    if best > 1.0:
        for i in range(d):
            s[i] = s[i] + best * g[i]
        return -nev
    return nev


@_jit
def _solve_row(ev_f, ev_j, s, th, damping, tol, max_iter, use_newton, d):
    f = np.empty(d)
    g = np.empty(d)
    x = np.empty(d)
    y = np.empty(d)
    gy = np.empty(d)
    dx = np.empty(d)
    gs = np.empty(d)
    jac = np.empty((d, d))
    A = np.empty((d, d))
    it = 0
    st = 1
    check = 2
    gap = 2
    res = np.inf
    prev = np.inf
    while True:
        res, fin = _resid(ev_f, s, th, f, g, d)
        if not fin:
            st = 2
            break
        if res <= tol:
            st = 0
            break
        if it >= max_iter:
            break
        if use_newton and it >= check:
            for i in range(d):
                gs[i] = g[i]
            ok, nev, rx = _newton(
                ev_f, ev_j, s, gs, th, tol, damping, x, f, g, jac, A, dx, y, gy, d
            )
            if ok:
                for i in range(d):
                    s[i] = x[i]
                res = rx  # max |F(x) - x|, evaluated at the last Newton iterate
                st = 0
                it += 1
                break
            gap = min(2 * gap, 256)
            check = it + gap
            for i in range(d):
                g[i] = gs[i]  # G(s) again (Newton used g)
            if res > prev:  # growing steps: escaping a weakly unstable point
                if _ray(ev_f, s, th, f, g, y, gy, d) < 0:
                    check = it + 1  # moved: try Newton again from there
                    res, fin = _resid(ev_f, s, th, f, g, d)
                    if not fin:
                        st = 2
                        break
        prev = res
        for i in range(d):
            s[i] = s[i] + damping * g[i]
        it += 1
    return it, st, res


@_jit
def _drive_row(ev_f, ev_j, S0, TH, damping, tol, max_iter, use_newton, S, IT, ST, RES, b):
    """Row ``b`` of the batch, solved in place (the body of both drivers)."""
    d = S0.shape[1]
    s = S0[b].copy()
    it, st, res = _solve_row(ev_f, ev_j, s, TH[b], damping, tol, max_iter, use_newton, d)
    for i in range(d):
        S[b, i] = s[i]
    IT[b] = it
    ST[b] = st
    RES[b] = res


@_jit
def drive(ev_f, ev_j, S0, TH, damping, tol, max_iter, use_newton, S, IT, ST, RES):
    for b in range(S0.shape[0]):
        _drive_row(ev_f, ev_j, S0, TH, damping, tol, max_iter, use_newton, S, IT, ST, RES, b)


@numba.njit(cache=True, parallel=True)
def drive_parallel(ev_f, ev_j, S0, TH, damping, tol, max_iter, use_newton, S, IT, ST, RES):
    for b in prange(S0.shape[0]):
        _drive_row(ev_f, ev_j, S0, TH, damping, tol, max_iter, use_newton, S, IT, ST, RES, b)
