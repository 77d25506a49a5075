"""Two-parameter continuation of folds and of information crossings; cusps.

A fold of the fixed-point branch in ``v`` (:func:`~meanfield.solvers.continuation.refine_fold`)
persists as a curve when a second parameter ``w`` moves: the solutions of the
extended system ``G(s, v, w) = 0, g(s, v, w) = 0`` (``g`` the bordered test
function) in the ``(s, v, w)`` space. It is traced by pseudo-arclength
continuation, so it passes through the **cusp** (codimension two: the two
folds of an S-shaped branch meet and the hard region closes; Kuznetsov,
*Elements of Applied Bifurcation Theory*, §8.2), which is located as the
root of the fold's quadratic normal-form coefficient

.. math::

    a = \\psi^T G_{ss}[\\phi, \\phi],

``phi``/``psi`` the right/left null vectors of ``G_s`` (the second derivative
along ``phi`` is a central difference of the sympy Jacobian), refined by
Brent's method along the curve. For the tensor with ``N(mu, 1)`` priors this is
the tricritical point (cubic order 3: ``mu_c = 1/(2 sqrt 2)``,
``Delta_c = 27/64``; :func:`meanfield.closed_forms.cubic_gaussian`).

The information crossing continues as the solution of ``G(s_1) = 0``,
``G(s_2) = 0``, ``Phi(s_1) = Phi(s_2)`` in ``(s_1, s_2, v)`` with ``w`` as the
natural parameter (:func:`trace_information`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._model import Model
from .continuation import TOL, ParamPath, _bordered, continue_branches

__all__ = ["PlaneEval", "FoldCurve", "trace_fold_curve", "cusp", "trace_information"]


class PlaneEval:
    """``G``, ``G_s`` and the two parameter columns in the ``(param_x, param_y)`` plane.

    Coordinates: ``x`` rescales ``param_x`` on ``[x_lo, x_hi]`` as in
    :class:`ParamPath` (log for ranges over a decade), ``y`` is ``param_y``.
    """

    def __init__(self, model: Model, px: str, x_range, py: str, y_range):
        self.model = model
        self.px, self.py = px, py
        self.pathx = ParamPath.make(model, px, *x_range)
        self.pathy = ParamPath.make(model, py, *y_range, log=False)
        self.sys = self.pathx.system
        self.map = self.sys.kind == "map"
        self.d = self.sys.dim
        # theta(v, w) = t0 + v tv + w tw when both paths are affine and separable
        m = model
        vs, ws = (float(x_range[0]), float(x_range[1])), (float(y_range[0]), float(y_range[1]))
        th = {(a, b): m.replace(**{px: vs[a], py: ws[b]}).theta() for a in (0, 1) for b in (0, 1)}
        tv = (th[1, 0] - th[0, 0]) / (vs[1] - vs[0])
        tw = (th[0, 1] - th[0, 0]) / (ws[1] - ws[0])
        t0 = th[0, 0] - vs[0] * tv - ws[0] * tw
        pred = t0 + vs[1] * tv + ws[1] * tw
        vm, wm = 0.5 * sum(vs), 0.3 * ws[0] + 0.7 * ws[1]
        mid = m.replace(**{px: vm, py: wm}).theta()
        scale = 1.0 + max(np.abs(t).max() for t in th.values())
        self.affine = (
            np.max(np.abs(pred - th[1, 1])) <= 1e-13 * scale
            and np.max(np.abs(t0 + vm * tv + wm * tw - mid)) <= 1e-13 * scale
        )
        self.t0, self.tv, self.tw = t0, tv, tw

    def theta(self, x, y):
        v = float(self.pathx.v_of(x))
        if self.affine:
            return self.t0 + v * self.tv + float(y) * self.tw
        return self.model.replace(**{self.px: v, self.py: float(y)}).theta()

    def F(self, s, x, y):
        return self.sys.evaluate("rhs", s, self.theta(x, y))

    def G(self, s, x, y):
        f = self.F(s, x, y)
        return f - s if self.map else f

    def A(self, s, x, y):
        j = self.sys.evaluate("jacobian", s, self.theta(x, y))
        return j - np.eye(self.d) if self.map else j

    def dG(self, s, x, y, which: int, h: float = 1e-6):
        if which == 0:
            return (self.F(s, x + h, y) - self.F(s, x - h, y)) / (2 * h)
        hy = h * (1.0 + abs(y))
        return (self.F(s, x, y + hy) - self.F(s, x, y - hy)) / (2 * hy)

    def potential(self, s, x, y) -> float:
        return float(self.sys.evaluate("potential", s, self.theta(x, y)))

    def ext(self, z):
        """The extended (fold) system at ``z = (s, x, y)``: ``(G, g)``."""
        d = self.d
        s, x, y = z[:d], z[d], z[d + 1]
        g, _, _ = _bordered(self.A(s, x, y))
        return np.concatenate([self.G(s, x, y), [g]])

    def ext_jac(self, z):
        """``d(G, g)/d(s, x, y)``; ``dg`` from ``-vh^T dA w`` with differenced ``dA``."""
        d = self.d
        s, x, y = z[:d], z[d], z[d + 1]
        A = self.A(s, x, y)
        _, w, vh = _bordered(A)
        Jm = np.zeros((d + 1, d + 2))
        Jm[:d, :d] = A
        Jm[:d, d] = self.dG(s, x, y, 0)
        Jm[:d, d + 1] = self.dG(s, x, y, 1)
        for k in range(d + 2):
            hk = 1e-6 * (1.0 + abs(z[k]))
            zp, zm = z.copy(), z.copy()
            zp[k] += hk
            zm[k] -= hk
            dA = (self.A(zp[:d], zp[d], zp[d + 1]) - self.A(zm[:d], zm[d], zm[d + 1])) / (2 * hk)
            Jm[d, k] = -vh @ dA @ w
        return Jm

    def quadratic_coefficient(self, z) -> float:
        """``a = psi^T G_ss[phi, phi]`` at a fold (normalised null vectors)."""
        d = self.d
        s, x, y = z[:d], z[d], z[d + 1]
        u, _, vt = np.linalg.svd(self.A(s, x, y))
        phi, psi = vt[-1], u[:, -1]
        # orientation-free sign: phi along increasing states, psi along G_x
        # (non-zero at a fold, the cusp included)
        if phi.sum() < 0:
            phi = -phi
        if psi @ self.dG(s, x, y, 0) < 0:
            psi = -psi
        h = 1e-4
        gp = self.G(s + h * phi, x, y)
        gm = self.G(s - h * phi, x, y)
        g0 = self.G(s, x, y)
        return float(psi @ (gp - 2 * g0 + gm) / h**2)


@dataclass
class FoldCurve:
    """A traced fold curve: states, ``param_x`` and ``param_y`` values, cusp coefficient."""

    states: np.ndarray
    xs: np.ndarray  # param_x values
    ys: np.ndarray  # param_y values
    a: np.ndarray  # quadratic coefficient along the curve
    end: str


def _palc(fun, jac, z0, tau0, h0, hmax, max_points, inside, tol=TOL):
    """Generic pseudo-arclength continuation of ``fun(z) = 0`` (one-dimensional set)."""
    n = len(z0)
    z, tau = z0.copy(), tau0 / np.linalg.norm(tau0)
    pts = [z.copy()]
    h = h0
    end = "max_points"
    M = np.zeros((n, n))
    rhs = np.zeros(n)
    while len(pts) < max_points:
        zp = z + h * tau
        zn = zp.copy()
        ok = False
        nit = 12
        for k in range(12):
            nit = k
            f = fun(zn)
            if not np.all(np.isfinite(f)):
                break
            M[:-1] = jac(zn)
            M[-1] = tau
            rhs[:-1] = -f
            rhs[-1] = -(tau @ (zn - zp))
            try:
                dz = np.linalg.solve(M, rhs)
            except np.linalg.LinAlgError:
                break
            zn = zn + dz
            if np.max(np.abs(dz)) < 1e-12 and np.max(np.abs(fun(zn)[:-1])) <= 10 * tol:
                ok = True
                break
        if ok:
            M[:-1] = jac(zn)
            M[-1] = tau
            e = np.zeros(n)
            e[-1] = 1.0
            try:
                tn = np.linalg.solve(M, e)
                tn /= np.linalg.norm(tn)
            except np.linalg.LinAlgError:
                ok = False
            if ok and (tn @ tau < 0.9 or np.linalg.norm(zn - z) > 2.5 * h):
                ok = False
        if not ok:
            h *= 0.5
            if h < 1e-8:
                end = "step_failed"
                break
            continue
        if not inside(zn):
            end = "range"
            break
        z, tau = zn, tn
        pts.append(z.copy())
        if nit <= 3:
            h = min(1.5 * h, hmax)
    return np.array(pts), end


def trace_fold_curve(
    model: Model,
    px: str,
    x_range,
    py: str,
    y_range,
    *,
    start: float | None = None,
    fold: int = 0,
    direction: float = 1.0,
    hmax: float = 0.02,
    max_points: int = 2000,
) -> FoldCurve:
    """Trace a fold of the ``px`` branch as ``py`` moves over ``y_range``.

    The starting fold is fold number ``fold`` (in increasing ``px``) of the
    continuation in ``px`` at ``py = start`` (default: the lower end of
    ``y_range``); tracing heads towards increasing ``py`` for ``direction > 0``
    (it may turn back: past a cusp the curve returns as the other fold).
    """
    pe = PlaneEval(model, px, x_range, py, y_range)
    y0 = float(y_range[0] if start is None else start)
    base = model.replace(**{py: y0})
    res = continue_branches(base, px, *x_range)
    folds = sorted((f for f in res.folds if f["status"] == "ok"), key=lambda f: f["value"])
    if len(folds) <= fold:
        raise ValueError(f"no fold number {fold} of {px} at {py}={y0}")
    f = folds[fold]
    d = pe.d
    z0 = np.concatenate([f["state"], [f["x"], y0]])
    J0 = pe.ext_jac(z0)
    _, _, vt = np.linalg.svd(J0)
    tau0 = vt[-1]
    if tau0[-1] * direction < 0:
        tau0 = -tau0
    ylo, yhi = float(y_range[0]), float(y_range[1])

    def inside(z):
        return 0.0 <= z[d] <= 1.0 and ylo <= z[d + 1] <= yhi

    P, end = _palc(pe.ext, pe.ext_jac, z0, tau0, 0.005, hmax, max_points, inside)
    a = np.array([pe.quadratic_coefficient(z) for z in P])
    return FoldCurve(
        states=P[:, :d],
        xs=pe.pathx.v_of(P[:, d]),
        ys=P[:, d + 1],
        a=a,
        end=end,
    )


def cusp(model: Model, px: str, x_range, py: str, y_range, **kw) -> dict:
    """The cusp (tricritical point) on a fold curve: root of the quadratic coefficient.

    Returns ``{px: value, py: value, "state": ..., "status"}``; the root is
    bracketed on the traced curve and refined by Brent's method on the
    coefficient along the straight chord between bracketing curve points,
    each chord point projected back on the fold curve by Newton at fixed
    ``py``.
    """
    from scipy.optimize import brentq

    pe = PlaneEval(model, px, x_range, py, y_range)
    curve = trace_fold_curve(model, px, x_range, py, y_range, **kw)
    d = pe.d
    ch = np.flatnonzero(np.sign(curve.a[:-1]) * np.sign(curve.a[1:]) < 0)
    if ch.size == 0:
        return {px: None, py: None, "state": None, "status": "no_cusp"}
    i = int(ch[0])
    za = np.concatenate([curve.states[i], [float(pe.pathx.x_of(curve.xs[i])), curve.ys[i]]])
    zb = np.concatenate(
        [curve.states[i + 1], [float(pe.pathx.x_of(curve.xs[i + 1])), curve.ys[i + 1]]]
    )
    # near the cusp the fold curve turns in py: parametrise by the chord and
    # project on the curve orthogonally to it
    tau = (zb - za) / np.linalg.norm(zb - za)

    def project(t):
        zp = za + t * (zb - za)
        z = zp.copy()
        M = np.zeros((d + 2, d + 2))
        for _ in range(30):
            f = pe.ext(z)
            M[:-1] = pe.ext_jac(z)
            M[-1] = tau
            r = -np.concatenate([f, [tau @ (z - zp)]])
            dz = np.linalg.solve(M, r)
            z = z + dz
            if np.max(np.abs(dz)) < 1e-14:
                break
        return z

    def coef(t):
        return pe.quadratic_coefficient(project(t))

    t = brentq(coef, 0.0, 1.0, xtol=1e-13)
    z = project(t)
    return {
        px: float(pe.pathx.v_of(z[d])),
        py: float(z[d + 1]),
        "state": z[:d],
        "status": "ok",
        "residual": float(np.max(np.abs(pe.ext(z)))),
    }


def trace_information(
    model: Model, px: str, x_range, py: str, ys, *, tol: float = TOL
) -> tuple[np.ndarray, np.ndarray]:
    """The information crossing in ``px`` at each ``py`` value (natural continuation in ``py``).

    At the first ``ys`` value the crossing comes from one-parameter
    continuation; then Newton on ``G(s_1) = 0, G(s_2) = 0,
    Phi(s_1) - Phi(s_2) = 0`` in ``(s_1, s_2, x)``, each solve seeded by the
    previous one (secant predictor). Returns the values (NaN where lost) and statuses.
    """
    ys = np.asarray(ys, dtype=float)
    pe = PlaneEval(model, px, x_range, py, (float(ys.min()), float(ys.max()) + 1e-12))
    d = pe.d
    out = np.full(ys.shape, np.nan)
    status = np.full(ys.shape, "none", dtype=object)
    z = None
    prev = None
    for k, y in enumerate(ys):
        if z is None:
            res = continue_branches(model.replace(**{py: float(y)}), px, *x_range)
            if not res.crossings:
                continue
            c = res.crossings[0]
            z = np.concatenate([c["states"][0], c["states"][1], [c["x"]]])
            prev = None
        else:
            guess = z if prev is None else 2 * z - prev
            zn, ok = _info_newton(pe, guess, y, tol)
            if not ok:
                zn, ok = _info_newton(pe, z, y, tol)
            if not ok or np.max(np.abs(zn[:d] - zn[d : 2 * d])) < 1e-7:
                z = None
                status[k] = "lost"
                continue
            prev, z = z, zn
        out[k] = float(pe.pathx.v_of(z[2 * d]))
        status[k] = "ok"
    return out, status.astype(str)


def _info_newton(pe: PlaneEval, z, y, tol, steps=30):
    d = pe.d
    z = z.copy()
    M = np.zeros((2 * d + 1, 2 * d + 1))
    for _ in range(steps):
        s1, s2, x = z[:d], z[d : 2 * d], z[2 * d]
        f = np.concatenate(
            [pe.G(s1, x, y), pe.G(s2, x, y), [pe.potential(s1, x, y) - pe.potential(s2, x, y)]]
        )
        if not np.all(np.isfinite(f)):
            return z, False
        if np.max(np.abs(f)) <= tol:
            return z, True
        M[:] = 0
        M[:d, :d] = pe.A(s1, x, y)
        M[d : 2 * d, d : 2 * d] = pe.A(s2, x, y)
        M[:d, 2 * d] = pe.dG(s1, x, y, 0)
        M[d : 2 * d, 2 * d] = pe.dG(s2, x, y, 0)
        # the potential's gradient in s vanishes at fixed points (stationarity)
        h = 1e-6
        M[2 * d, 2 * d] = (
            pe.potential(s1, x + h, y)
            - pe.potential(s2, x + h, y)
            - pe.potential(s1, x - h, y)
            + pe.potential(s2, x - h, y)
        ) / (2 * h)
        try:
            dz = np.linalg.solve(M, -f)
        except np.linalg.LinAlgError:
            return z, False
        z = z + dz
    return z, False
