"""Pseudo-arclength continuation of fixed-point branches, folds located exactly.

For a declared system (a ``map`` ``s <- F(s, theta)`` or a ``flow``
``ds/dt = F(s, theta)``) the fixed points solve ``G(s, v) = 0`` with
``G = F - s`` (map) or ``G = F`` (flow), where ``v`` is one model parameter and
``theta(v)`` the system's parameter vector along it (:class:`ParamPath`). As in
AUTO-07p, MatCont and BifurcationKit.jl (Keller's pseudo-arclength method;
Allgower & Georg, *Introduction to Numerical Continuation Methods*, §2):

* the branch is the curve ``z(a) = (s, x)`` in the extended space (``x`` the
  continuation coordinate: ``v`` or ``log v``, rescaled to ``[0, 1]`` over the
  range), followed by an Euler predictor along the tangent ``tau`` (the null
  vector of ``[G_s | G_x]`` oriented by the previous tangent) and a Newton
  corrector on ``G(z) = 0, tau . (z - z_pred) = 0``, with step-size control;
  it passes through folds, so the unstable middle segment of an S-shaped
  branch is traced like the stable ones;
* stability along the branch comes from the eigenvalues of the sympy
  Jacobian ``J = dF/ds`` (map: spectral radius below one; flow: real parts
  below zero);
* a **fold** (saddle-node) is a sign change of the tangent's ``x`` component;
  it is refined by Newton on the bordered extended system ``G(s, v) = 0,
  g(s, v) = 0`` (Govaerts, *Numerical Methods for Bifurcations of Dynamical
  Equilibria*, §3.2: ``g`` is the last component of the solution of the
  bordered system ``[[G_s, b], [c^T, 0]] (w, g) = (0, 1)``, zero exactly where
  ``G_s`` is singular), converging quadratically to the fold;
* a **branch point** (a sign change of ``det G_s`` without a fold, e.g. the BBP
  point where the informative branch leaves the uninformative one) and any
  other change of stability are refined by Brent's method on the stability
  margin along the branch.

Exact and approximate derivatives: ``G``, ``G_s`` (the sympy Jacobian) and the
free energy are the compiled sympy expressions, and every reported point is
defined by their residuals alone. The parameter column ``G_v`` is the compiled
sympy derivative ``dF/dtheta . dtheta/dv`` (``param_derivative="sympy"``, the
default for closed-form systems) or, for systems whose expressions hold
quadratures (where compiling one more Jacobian costs tens of seconds), a central
difference of the compiled ``F`` along the path (error ~ 1e-11); likewise the
gradient of the bordered test function uses central differences of the sympy
Jacobian. Both enter Newton matrices only: they change the convergence rate,
never the root.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy as sp

from .. import _codegen
from .._model import Model, System
from .._params import ParamError

__all__ = [
    "ParamPath",
    "Branch",
    "Continuation",
    "continue_branches",
    "trace_branch",
    "refine_fold",
    "branch_report",
]

TOL = 1e-12
"""Residual (max-norm of ``G``) at which a corrector is converged."""
H0, HMAX, HMIN = 0.01, 0.04, 1e-9
# steps crossing two eigenvalue events at once are halved down to this size
HSEP = 1e-6
MAX_POINTS = 4000
#: points traced past a branch point before the branch is ended there
BRANCH_POINT_TAIL = 200

_PARAM_JAC: dict[str, object] = {}


# -- the parameter path -----------------------------------------------------------------
@dataclass
class ParamPath:
    """``theta(v)`` of ``model``'s system along the parameter ``param`` on ``[lo, hi]``.

    ``theta`` is affine in ``v`` for the usual axes (``delta``, a prior mean, a
    sparsity): then it is ``t0 + v t1`` exactly; otherwise each value comes from
    ``model.replace(param=v).theta()``. The continuation coordinate is
    ``x = (c(v) - c(lo)) / (c(hi) - c(lo))`` with ``c = log`` on a positive
    range spanning more than a decade (``log=True``) and ``c = id`` otherwise.
    """

    model: Model
    param: str
    lo: float
    hi: float
    log: bool
    system: System
    t0: np.ndarray | None = None
    t1: np.ndarray | None = None

    @classmethod
    def make(cls, model: Model, param: str, lo: float, hi: float, log: bool | None = None):
        spec = model.params.get(param)
        if spec is None or spec.kind != "float" or spec.per_mode and _is_tuple(model[param]):
            floats = ", ".join(k for k, p in model.params.items() if p.kind == "float")
            raise ParamError("param", f"a float parameter of {model.name} ({floats})", param)
        lo, hi = float(lo), float(hi)
        spec.validate(lo)
        spec.validate(hi)
        if not lo < hi:
            raise ParamError("lo", f"a value below hi={hi}", lo)
        if log is None:
            log = lo > 0 and hi / lo > 10.0
        system = model.system()
        ends = [model.replace(**{param: v}) for v in (lo, 0.5 * (lo + hi), hi)]
        for m in ends:
            if m.system() is not system:
                raise ParamError(
                    param, "a parameter that leaves the model's structure unchanged", param
                )
        th = [m.theta() for m in ends]
        path = cls(model, param, lo, hi, bool(log), system)
        t1 = (th[2] - th[0]) / (hi - lo)
        t0 = th[0] - lo * t1
        scale = 1.0 + np.abs(th).max()
        if np.max(np.abs(t0 + 0.5 * (lo + hi) * t1 - th[1])) <= 1e-13 * scale:
            path.t0, path.t1 = t0, t1
        return path

    @property
    def affine(self) -> bool:
        return self.t0 is not None

    def _c(self, v):
        return np.log(v) if self.log else v

    def v_of(self, x):
        c0, c1 = self._c(self.lo), self._c(self.hi)
        c = c0 + np.asarray(x, dtype=float) * (c1 - c0)
        return np.exp(c) if self.log else c

    def x_of(self, v):
        c0, c1 = self._c(self.lo), self._c(self.hi)
        return (self._c(np.asarray(v, dtype=float)) - c0) / (c1 - c0)

    def dv_dx(self, x):
        c0, c1 = self._c(self.lo), self._c(self.hi)
        return (c1 - c0) * (self.v_of(x) if self.log else 1.0)

    def theta(self, v) -> np.ndarray:
        v = np.asarray(v, dtype=float)
        if self.affine:
            return self.t0 + v[..., None] * self.t1
        flat = [self.model.replace(**{self.param: float(a)}).theta() for a in v.reshape(-1)]
        return np.array(flat).reshape(v.shape + (len(self.system.params),))

    def dtheta(self, v) -> np.ndarray:
        v = np.asarray(v, dtype=float)
        if self.affine:
            return np.broadcast_to(self.t1, v.shape + self.t1.shape)
        h = 1e-6 * (1.0 + np.abs(v))
        return (self.theta(v + h) - self.theta(v - h)) / (2 * h[..., None])


def _is_tuple(v) -> bool:
    return isinstance(v, tuple) and len(set(v)) > 1


# -- compiled pieces -------------------------------------------------------------------
def _has_quadrature(system: System) -> bool:
    from .._symbols import GaussExpect, GaussExpectN, Template

    return any(sp.sympify(e).atoms(GaussExpect, GaussExpectN, Template) for e in system.rhs)


def _param_jacobian(system: System):
    """``dF/dtheta`` derived by sympy, compiled (cached per system)."""
    key = system._fn("rhs").key
    if key not in _PARAM_JAC:
        jac = sp.Matrix(system.rhs).jacobian(sp.Matrix(system.params))
        _PARAM_JAC[key] = _codegen.scalar_function(
            list(jac), [*system.state, *system.params], name="dparams"
        )
    return _PARAM_JAC[key]


class _Eval:
    """``G``, ``G_s`` and ``G_x`` of a system along a :class:`ParamPath`."""

    def __init__(self, path: ParamPath, param_derivative: str | None = None):
        self.path = path
        self.sys = path.system
        self.map = self.sys.kind == "map"
        self.d = self.sys.dim
        if param_derivative is None:
            param_derivative = "difference" if _has_quadrature(self.sys) else "sympy"
        if param_derivative not in ("sympy", "difference"):
            raise ValueError("param_derivative must be 'sympy' or 'difference'")
        self.exact = param_derivative == "sympy"
        self.nev = 0
        # scalar compiled calls (a few microseconds each) for single points
        self._f = _codegen.njit(self.sys._fn("rhs"))
        self._j = _codegen.njit(self.sys._fn("jacobian"))
        self._phi = (
            _codegen.njit(self.sys._fn("potential")) if self.sys.potential is not None else None
        )
        self._dp = _codegen.njit(_param_jacobian(self.sys)) if self.exact else None

    def _th(self, x):
        return self.path.theta(self.path.v_of(x))

    def _call(self, fn, s, x):
        s = np.asarray(s, dtype=float)
        th = self._th(x)
        if s.ndim == 1 and th.ndim == 1:
            return np.array(fn(*s.tolist(), *th.tolist()), dtype=float)
        return None

    def F(self, s, x):
        self.nev += 1
        out = self._call(self._f, s, x)
        if out is not None:
            return out
        return self.sys.evaluate("rhs", s, self._th(x))

    def G(self, s, x):
        f = self.F(s, x)
        return f - s if self.map else f

    def J(self, s, x):
        out = self._call(self._j, s, x)
        if out is not None:
            return out.reshape(self.d, self.d)
        return self.sys.evaluate("jacobian", s, self._th(x))

    def A(self, s, x):
        j = self.J(s, x)
        return j - np.eye(self.d) if self.map else j

    def Gx(self, s, x):
        p = self.path
        v = p.v_of(x)
        if self.exact:
            out = self._call(self._dp, s, x)
            if out is not None:
                dF = out.reshape(self.d, len(self.sys.params))
                return dF @ p.dtheta(v) * p.dv_dx(x)
            fn = _param_jacobian(self.sys)
            th = p.theta(v)
            s_ = np.asarray(s, dtype=float)
            cols = [s_[..., i] for i in range(self.d)] + [th[..., j] for j in range(th.shape[-1])]
            out = np.stack(_codegen.evaluate(fn, *cols), axis=-1)
            dF = out.reshape(out.shape[:-1] + (self.d, len(self.sys.params)))
            return (dF @ p.dtheta(v)[..., None])[..., 0] * p.dv_dx(x)
        h = 1e-5
        return (self.F(s, x + h) - self.F(s, x - h)) / (2 * h)

    def margin(self, s, x) -> float:
        """Negative when stable: ``rho(J) - 1`` (map), ``max Re eig J`` (flow)."""
        return self.margin_of(self.A(s, x))

    def margin_of(self, A) -> float:
        """:meth:`margin` from ``A = G_s`` (``J - I`` for a map, ``J`` for a flow)."""
        ev = np.linalg.eigvals(A + np.eye(self.d) if self.map else A)
        return float(np.max(np.abs(ev)) - 1.0 if self.map else np.max(ev.real))

    def potential(self, s, x) -> float:
        if self.sys.potential is None:
            return float("nan")
        out = self._call(self._phi, s, x)
        if out is not None:
            return float(out[0])
        return float(self.sys.evaluate("potential", s, self._th(x)))


def _tangent(A, gx, prev):
    """Unit null vector of ``[A | gx]``, oriented along ``prev``."""
    d = A.shape[0]
    M = np.zeros((d + 1, d + 1))
    M[:d, :d] = A
    M[:d, d] = gx
    M[d] = prev
    rhs = np.zeros(d + 1)
    rhs[d] = 1.0
    try:
        t = np.linalg.solve(M, rhs)
    except np.linalg.LinAlgError:
        _, _, vt = np.linalg.svd(M[:d])
        t = vt[-1]
    if not np.all(np.isfinite(t)):
        _, _, vt = np.linalg.svd(M[:d])
        t = vt[-1]
    t = t / np.linalg.norm(t)
    return t if t @ prev >= 0 else -t


def _natural(ev: _Eval, s, x, tol=TOL, steps=30):
    """Newton on ``G(s, x) = 0`` at fixed ``x``; (state, converged)."""
    s = np.array(s, dtype=float)
    for _ in range(steps):
        g = ev.G(s, x)
        if not np.all(np.isfinite(g)):
            return s, False
        if np.max(np.abs(g)) <= tol:
            return s, True
        try:
            s = s - np.linalg.solve(ev.A(s, x), g)
        except np.linalg.LinAlgError:
            return s, False
    return s, bool(np.max(np.abs(ev.G(s, x))) <= tol)


def _corrector(ev: _Eval, zp, tau, tol=TOL, steps=10, strict=False):
    """Newton on ``G(z) = 0, tau . (z - zp) = 0``; (z, converged, iterations).

    ``strict``: iterate until the Newton step vanishes (``< 1e-15``), not just
    the residual: near a branch point a tiny state has a tiny residual at a
    wrong parameter value."""
    d = ev.d
    z = zp.copy()
    M = np.zeros((d + 1, d + 1))
    M[d] = tau
    rhs = np.zeros(d + 1)
    for k in range(steps):
        s, x = z[:d], z[d]
        g = ev.G(s, x)
        if not np.all(np.isfinite(g)):
            return z, False, k
        res = np.max(np.abs(g))
        if res <= tol and k > 0 and not strict:
            return z, True, k
        M[:d, :d] = ev.A(s, x)
        M[:d, d] = ev.Gx(s, x)
        rhs[:d] = -g
        rhs[d] = -(tau @ (z - zp))
        try:
            dz = np.linalg.solve(M, rhs)
        except np.linalg.LinAlgError:
            return z, False, k
        z = z + dz
        if res <= tol and np.max(np.abs(dz)) < (1e-15 if strict else 1e-14):
            return z, True, k + 1
    g = ev.G(z[:d], z[d])
    return z, bool(np.all(np.isfinite(g)) and np.max(np.abs(g)) <= tol), steps


# -- branches --------------------------------------------------------------------------
@dataclass
class Branch:
    """One traced curve of fixed points.

    Attributes
    ----------
    values : array (n,)
        Parameter values along the curve (in arclength order).
    states : array (n, dim)
    stable : bool array (n,)
    margin : array (n,)
        Stability margin (negative when stable).
    free_energy : array (n,)
        The declared potential (NaN without one).
    det_sign : array (n,)
        Sign of ``det G_s``.
    tangent_x : array (n,)
        The parameter component of the unit tangent.
    end : str
        Why tracing stopped: ``range``, ``domain``, ``closed``, ``branch_point`` (the
        step size collapsed next to a refined branch point), ``step_failed``,
        ``max_points``.
    """

    values: np.ndarray
    states: np.ndarray
    stable: np.ndarray
    margin: np.ndarray
    free_energy: np.ndarray
    det_sign: np.ndarray
    tangent_x: np.ndarray
    x: np.ndarray
    end: str = "range"


@dataclass
class Continuation:
    """All branches traced over a parameter range, with folds and bifurcations."""

    path: ParamPath
    branches: list[Branch]
    folds: list[dict[str, Any]] = field(default_factory=list)
    bifurcations: list[dict[str, Any]] = field(default_factory=list)
    crossings: list[dict[str, Any]] = field(default_factory=list)
    evaluations: int = 0


def _lower_bounds(model: Model) -> np.ndarray | None:
    """Bayes-optimal overlaps obey ``M_aa >= E[x_a]^2`` (Nishimori: ``M = E[xhat^2]``).

    Models with an ``uninformative_state`` get this physical domain (the
    diagonal entries of rank-``r`` overlap matrices); a model may declare its
    own ``state_lower_bounds()``.
    """
    if hasattr(model, "state_lower_bounds"):
        return np.asarray(model.state_lower_bounds(), dtype=float)
    if not hasattr(model, "uninformative_state"):
        return None
    u = np.asarray(model.uninformative_state(), dtype=float)
    r = int(getattr(model, "rank", 1) or 1)
    if r == 1:
        return u
    from ..vector_prior import upper_pairs

    pairs = upper_pairs(r)
    diag = np.array([s == t for s, t in pairs] * (len(u) // len(pairs)))
    return np.where(diag, u, -np.inf)


def trace_branch(
    ev: _Eval,
    s0: np.ndarray,
    x0: float,
    direction: float,
    *,
    lower: np.ndarray | None = None,
    h0: float = H0,
    hmax: float = HMAX,
    max_points: int = MAX_POINTS,
) -> Branch:
    """Follow the branch through ``(s0, x0)`` (a fixed point) towards ``direction``.

    ``direction`` is the sign of the initial change of ``x``. Tracing stops at
    the ends of the range (the last point is landed exactly on ``x = 0`` or
    ``x = 1``), when the state leaves the physical domain (``s >= lower``),
    when the curve closes, or when the step size falls below ``HMIN``.
    """
    d = ev.d
    z = np.concatenate([np.asarray(s0, dtype=float), [float(x0)]])
    prev = np.zeros(d + 1)
    prev[d] = direction
    A0 = ev.A(z[:d], z[d])
    tau = _tangent(A0, ev.Gx(z[:d], z[d]), prev)
    pts, taus, As = [z.copy()], [tau.copy()], [A0]
    n_up = [_n_up(A0)]
    h = h0
    end = "max_points"
    dom_tol = 1e-9
    since_bp = None  # points traced past a branch point (det G_s flipped, x did not turn)
    while len(pts) < max_points:
        zp = z + h * tau
        zn, ok, nit = _corrector(ev, zp, tau)
        if ok:
            A = ev.A(zn[:d], zn[d])
            tn = _tangent(A, ev.Gx(zn[:d], zn[d]), tau)
            # reject a step that turns too sharply (branch switching, big curvature)
            if tn @ tau < 0.95 or np.linalg.norm(zn - z) > 2.5 * h:
                ok = False
            # or that crosses two events at once (a branch point next to a
            # fold: rank 2, order 3, mean 0.07, linear delta, where one step
            # passed both and the branch point went unseen): split it
            elif abs(_n_up(A) - n_up[-1]) > 1:
                zn, tn, A, nit = _split_step(ev, z, tau, h, n_up[-1], (zn, tn, A, nit))
                h = float(np.linalg.norm(zn - z)) or h
        if not ok:
            h *= 0.5
            if h < HMIN:
                end = "step_failed"
                break
            continue
        xn = zn[d]
        if xn < 0.0 or xn > 1.0:
            xb = 0.0 if xn < 0.0 else 1.0
            # land exactly on the end of the range (secant guess, then Newton at fixed x)
            w = (xb - z[d]) / (xn - z[d]) if xn != z[d] else 1.0
            guess = z[:d] + w * (zn[:d] - z[:d])
            sb, conv = _natural(ev, guess, xb)
            if conv and (lower is None or np.all(sb >= lower - dom_tol)):
                zb = np.concatenate([sb, [xb]])
                pts.append(zb)
                As.append(ev.A(sb, xb))
                taus.append(_tangent(As[-1], ev.Gx(sb, xb), tau))
            end = "range"
            break
        if lower is not None and np.any(zn[:d] < lower - dom_tol):
            # land on the domain's edge (where the branch meets, e.g., the
            # uninformative one at a branch point): bisect the step length
            zb = _domain_edge(ev, z, tau, h, lower)
            if zb is not None:
                pts.append(zb)
                As.append(ev.A(zb[:d], zb[d]))
                taus.append(_tangent(As[-1], ev.Gx(zb[:d], zb[d]), tau))
            end = "domain"
            break
        if since_bp is None and tn[d] * tau[d] > 0:
            if np.sign(np.linalg.det(A)) != np.sign(np.linalg.det(As[-1])):
                since_bp = 0
        z, tau = zn, tn
        pts.append(z.copy())
        taus.append(tau.copy())
        As.append(A)
        n_up.append(_n_up(A))
        if len(pts) > 8 and np.linalg.norm(z - pts[0]) < 0.5 * h:
            end = "closed"
            break
        if since_bp is not None:
            since_bp += 1
            if since_bp >= BRANCH_POINT_TAIL:
                # past a branch point the curve is a bifurcating or switched
                # branch that can crawl (rank-r systems: thousands of tiny
                # steps along an asymmetric branch); its start is kept
                end = "branch_point"
                break
        if nit <= 3:
            h = min(1.5 * h, hmax)
    P = np.array(pts)
    T = np.array(taus)
    S, X = P[:, :d], P[:, d]
    # the corrector's last G_s at each point: margin and det sign without new Jacobians
    margin = np.array([ev.margin_of(A) for A in As])
    dets = np.array([np.sign(np.linalg.det(A)) for A in As])
    phi = np.array([ev.potential(s, x) for s, x in zip(S, X, strict=True)])
    return Branch(
        values=ev.path.v_of(X),
        states=S,
        stable=margin < 0,
        margin=margin,
        free_energy=phi,
        det_sign=dets,
        tangent_x=T[:, d],
        x=X,
        end=end,
    )


def _split_step(ev: _Eval, z, tau, h: float, n0: int, full):
    """A step from ``z`` that crosses one eigenvalue event, where the step of
    length ``h`` (``full``: its corrected point, tangent, ``G_s``, iterations)
    crossed several: bisection on the step length for a point past exactly
    one, down to ``HSEP``. Events closer than that (an almost degenerate
    pair at the fold of the symmetric rank-2 upper branch, 1e-10 apart, where
    short steps run into the singular point) are crossed by the full step."""
    d = ev.d
    lo, hi = 0.0, h
    while hi - lo > HSEP:
        m = 0.5 * (lo + hi)
        zm, ok, nit = _corrector(ev, z + m * tau, tau)
        if not ok:
            break
        A = ev.A(zm[:d], zm[d])
        k = abs(_n_up(A) - n0)
        if k == 1:
            tm = _tangent(A, ev.Gx(zm[:d], zm[d]), tau)
            if tm @ tau >= 0.95:
                return zm, tm, A, nit
            break
        if k == 0:
            lo = m
        else:
            hi = m
    return full


def _n_up(A) -> int:
    """Eigenvalue events on the unstable side of ``G_s``: the number of
    distinct real parts ``> 0`` (an exactly degenerate pair, as at the fold of
    the symmetric upper branch of a rank-2 system, or a complex pair is one).
    It changes by one at a fold, a simple branch point or a Hopf point."""
    lam = np.linalg.eigvals(A)
    if not np.all(np.isfinite(lam)):
        return -1
    re = np.sort(lam.real[lam.real > 0])
    if re.size == 0:
        return 0
    return 1 + int(np.sum(np.diff(re) > 1e-7 * (1.0 + np.abs(re[1:]))))


def _domain_edge(ev: _Eval, z, tau, h, lower, steps: int = 50):
    """The branch point on the edge ``min(s - lower) = 0`` between ``z`` and the next step."""
    d = ev.d
    a, b = 0.0, h
    best = None
    for _ in range(steps):
        m = 0.5 * (a + b)
        zm, ok, _ = _corrector(ev, z + m * tau, tau, steps=40, strict=True)
        # a corrector that jumped to the crossing branch is no point of this one
        if not ok or np.linalg.norm(zm - z - m * tau) > 0.25 * m:
            b = m
            continue
        gap = np.min(zm[:d] - lower)
        if gap >= 0:
            a, best = m, zm
        else:
            b = m
        if b - a < 1e-13:
            break
    return best


# -- bifurcation points ------------------------------------------------------------------
def _bordered(A):
    """The bordered test function ``g`` of ``A`` and the vectors it needs."""
    u, _, vt = np.linalg.svd(A)
    b, c = u[:, -1], vt[-1]
    d = A.shape[0]
    M = np.zeros((d + 1, d + 1))
    M[:d, :d] = A
    M[:d, d] = b
    M[d, :d] = c
    rhs = np.zeros(d + 1)
    rhs[d] = 1.0
    wg = np.linalg.solve(M, rhs)
    vh = np.linalg.solve(M.T, rhs)
    return wg[d], wg[:d], vh[:d]


def refine_fold(ev: _Eval, s, x, tol: float = TOL, steps: int = 40):
    """Newton on the bordered extended system ``G = 0, g = 0`` from ``(s, x)``.

    Returns ``(state, x, converged)``. The gradient of ``g`` is
    ``dg/dz_k = -vh^T (dA/dz_k) w`` (Govaerts 2000, Prop. 3.2.1) with ``dA/dz_k``
    a central difference of the sympy Jacobian: along the null vector ``w``
    for the state components (``vh^T (d_w J)``, as second derivatives are
    symmetric) and along ``x`` for the parameter one, four Jacobians per step.
    """
    d = ev.d
    z = np.concatenate([np.asarray(s, dtype=float), [float(x)]])
    N = np.zeros((d + 1, d + 1))
    prev = np.inf
    for _ in range(steps):
        s_, x_ = z[:d], z[d]
        G = ev.G(s_, x_)
        A = ev.A(s_, x_)
        try:
            g, w, vh = _bordered(A)
        except np.linalg.LinAlgError:
            return z[:d], z[d], False
        grad = np.empty(d + 1)
        # state part: sum_ij vh_i (d_k d_j F_i) w_j = (vh^T d/de J(s + e w))_k by
        # the symmetry of second derivatives, so one directional difference of
        # the Jacobian along w gives all d components (2 Jacobians, not 2d)
        hw = 1e-6 * (1.0 + np.max(np.abs(s_))) / max(np.max(np.abs(w)), 1e-300)
        dJw = (ev.A(s_ + hw * w, x_) - ev.A(s_ - hw * w, x_)) / (2 * hw)
        grad[:d] = -(vh @ dJw)
        hx = 1e-6 * (1.0 + abs(x_))
        dAx = (ev.A(s_, x_ + hx) - ev.A(s_, x_ - hx)) / (2 * hx)
        grad[d] = -vh @ dAx @ w
        N[:d, :d] = A
        N[:d, d] = ev.Gx(s_, x_)
        N[d] = grad
        rhs = -np.concatenate([G, [g]])
        try:
            dz = np.linalg.solve(N, rhs)
        except np.linalg.LinAlgError:
            return z[:d], z[d], False
        if not np.all(np.isfinite(dz)):
            return z[:d], z[d], False
        z = z + dz
        step, scale = float(np.max(np.abs(dz))), 1.0 + float(np.max(np.abs(z)))
        # converged, or at the noise floor of the differenced Jacobians (the
        # step no longer shrinks quadratically; 40 steps of four rank-2
        # Jacobians each were 0.3 s a call)
        if step <= 1e-15 * scale or (step <= 1e-11 * scale and step > 0.25 * prev):
            break
        prev = step
    G = ev.G(z[:d], z[d])
    A = ev.A(z[:d], z[d])
    if not (np.all(np.isfinite(G)) and np.all(np.isfinite(A))):
        return z[:d], z[d], False  # Newton left the domain (seen in a 64 x 64 Rademacher diagram)
    try:
        g = _bordered(A)[0]
    except np.linalg.LinAlgError:
        return z[:d], z[d], False
    conv = bool(np.max(np.abs(G)) <= 10 * tol and abs(g) <= 1e-8)
    return z[:d], z[d], conv


def _on_amplitude(ev: _Eval, sb, v, a, z0, tol: float = TOL, steps: int = 30):
    """The fixed point with ``v . (s - sb) = a``, the parameter free: Newton on
    ``G(s, x) = 0`` bordered by that constraint, from ``z0 = (s, x)``."""
    d = ev.d
    z = np.array(z0, dtype=float)
    N = np.zeros((d + 1, d + 1))
    N[d, :d] = v
    polish = 1
    for _ in range(steps):
        s_, x_ = z[:d], z[d]
        r = np.concatenate([ev.G(s_, x_), [v @ (s_ - sb) - a]])
        if not np.all(np.isfinite(r)):
            return z, False
        if np.max(np.abs(r)) <= tol and polish == 0:
            return z, True
        N[:d, :d] = ev.A(s_, x_)
        N[:d, d] = ev.Gx(s_, x_)
        try:
            dz = np.linalg.solve(N, r)
        except np.linalg.LinAlgError:
            return z, False
        z = z - dz
        # x is ill-determined near the branch point (error ~ residual over
        # amplitude): polish past the tolerance until the step vanishes
        if np.max(np.abs(r)) <= tol:
            polish -= 1
            if np.max(np.abs(dz)) <= 1e-15 * (1.0 + np.max(np.abs(z))):
                polish = 0
    r = np.concatenate([ev.G(z[:d], z[d]), [v @ (z[:d] - sb) - a]])
    return z, bool(np.max(np.abs(r)) <= tol)


def bifurcating_fold(ev: _Eval, sb, xb: float, unstable_side: float, a0=1e-5, amax=0.5):
    """Where the stable branch that bifurcates at a branch point ends.

    At a branch point ``(sb, xb)`` the old branch loses stability towards
    ``unstable_side`` (the sign of ``x - xb`` where it is unstable). A new
    branch leaves along the null vector ``v`` of ``G_s``; followed in the
    amplitude ``a = v . (s - sb)`` (a doubling from ``a0``, each point by
    bordered Newton), it is either unstable or leaves towards the stable side
    (subcritical: the branch point is where the stable set ends), or it is
    stable and leaves towards the unstable side (supercritical) and then the
    stable set ends at its fold, the extremum of ``x(a)`` (bounded Brent).

    Returns ``("branch_point", sb, xb)``, ``("fold", s, x)`` or ``("failed", sb, xb)``
    (the branch could not be followed, or it loses stability before folding).
    Measured case: rank 2, order 3, Rademacher, mean 0.114, where the stable
    symmetry-broken branch folds 6.4e-6 (relative) below the pitchfork.
    """
    from scipy.optimize import minimize_scalar

    sb = np.asarray(sb, dtype=float)
    d = ev.d
    v = np.linalg.svd(ev.A(sb, xb))[2][-1]
    scale = 1.0 + float(np.max(np.abs(sb)))
    side = 1.0 if unstable_side > 0 else -1.0
    zb = np.concatenate([sb, [xb]])
    for sign in (1.0, -1.0):
        a = a0 * scale
        pts: list = []  # (a, z, stable)
        turned = False
        while a <= amax * scale:
            if len(pts) >= 2:
                (a1, z1, _), (a2, z2, _) = pts[-2], pts[-1]
                guess = z2 + (z2 - z1) * (a - a2) / (a2 - a1)
            else:
                guess = pts[-1][1] if pts else zb + np.concatenate([sign * a * v, [0.0]])
            z, ok = _on_amplitude(ev, sb, v, sign * a, guess)
            if not ok:
                return "failed", sb, xb
            pts.append((a, z, ev.margin(z[:d], z[d])))
            if len(pts) >= 2 and side * (z[d] - pts[-2][1][d]) < 0:
                turned = True
                break
            a *= 2.0
        # the direction the new branch leaves in: its first resolved move in x
        # (resolved: beyond the noise of Newton's x; the fold can lie 1.4e-7,
        # relative, from the branch point: rank 2, mean 0.07)
        moves = [side * (p[1][d] - xb) for p in pts if abs(p[1][d] - xb) > 1e-10 * (1 + abs(xb))]
        if not moves or moves[0] < 0:
            continue  # towards the stable side (subcritical): the stable set ends at xb
        if not turned:
            return "failed", sb, xb
        a_turn = pts[-2][0]
        near = [p[2] for p in pts if p[0] <= 0.25 * a_turn] or [pts[0][2]]
        if not near or max(near) > 1e-9 or min(near) >= 0:
            continue  # an unstable new branch: the stable set ends at xb
        lo_a = pts[-3][0] if len(pts) >= 3 else 0.0
        hi_a = pts[-1][0]
        cache = {"z": pts[-2][1]}

        def neg_x(a, sign=sign, cache=cache):
            z, ok = _on_amplitude(ev, sb, v, sign * a, cache["z"])
            if not ok:
                return np.inf
            cache["z"] = z
            return -side * z[d]

        r = minimize_scalar(
            neg_x, bounds=(lo_a, hi_a), method="bounded", options={"xatol": 1e-6 * hi_a}
        )
        z, ok = _on_amplitude(ev, sb, v, sign * r.x, cache["z"])
        if not ok:
            return "failed", sb, xb
        # Brent to 1e-6 in a (x to ~1e-12, its error is quadratic in a's),
        # then polish by the bordered fold system when it stays there
        s2, x2, ok = refine_fold(ev, z[:d], z[d])
        if ok and abs(x2 - z[d]) < 1e-6 * (1.0 + abs(z[d])) and abs(x2 - xb) > 1e-9:
            return "fold", s2, float(x2)
        return "fold", z[:d], float(z[d])
    return "branch_point", sb, xb


def _on_branch(ev: _Eval, br: Branch, i: int, x: float):
    """The fixed point at ``x`` near point ``i`` of ``br`` (Newton at fixed x)."""
    j = i + 1 if i + 1 < len(br.x) else i
    xa, xb = br.x[i], br.x[j]
    w = 0.0 if xb == xa else (x - xa) / (xb - xa)
    guess = br.states[i] + w * (br.states[j] - br.states[i])
    return _natural(ev, guess, x)


def bracketed_root(f, a: float, b: float, fa: float | None = None, fb: float | None = None):
    """A root of ``f`` between ``a`` and ``b`` (``f(a) f(b) <= 0``), or ``None``.

    Brent's method; where ``f`` is not finite close to the root (a Newton
    solve at fixed parameter next to a branch point, where ``G_s`` is
    singular: rank 2, order 3, mean 0.07), bisection on the known signs down
    to the last finite value.
    """
    from scipy.optimize import brentq

    fa = f(a) if fa is None else fa
    fb = f(b) if fb is None else fb
    if not (np.isfinite(fa) and np.isfinite(fb)) or fa * fb > 0:
        return None
    if fa == 0:
        return float(a)
    if fb == 0:
        return float(b)
    try:
        return float(brentq(f, min(a, b), max(a, b), xtol=1e-15, rtol=4 * np.finfo(float).eps))
    except ValueError:  # f not finite near the root: bisect on the known signs
        for _ in range(60):
            m = 0.5 * (a + b)
            fm = f(m)
            if not np.isfinite(fm):
                break
            a, fa, b = (m, fm, b) if fm * fa > 0 else (a, fa, m)
        return float(0.5 * (a + b))


def _refine_margin(ev: _Eval, br: Branch, i: int) -> tuple[float, np.ndarray] | None:
    """The stability change between points ``i`` and ``i + 1`` by Brent on the margin."""

    def f(x):
        s, ok = _on_branch(ev, br, i, x)
        return ev.margin(s, x) if ok else np.nan

    xr = bracketed_root(f, br.x[i], br.x[i + 1])
    if xr is None:
        return None
    s, _ = _on_branch(ev, br, i, xr)
    return float(xr), s


def _fold_on_branch(br: Branch, i: int, s, x: float, minimum: bool) -> bool:
    """Whether a refined fold is the turning point between points ``i`` and ``i+1``.

    The turning point is an extremum of ``x`` (at or beyond both neighbours, on
    the side the tangent turns) and lies within a few chords of them; Newton on
    the bordered system started near a branch point can land on a fold of
    another branch (measured: rank 2, order 3, where a pitchfork sits just
    before the fold of the symmetric branch)."""
    xa, xb = float(br.x[i]), float(br.x[i + 1])
    slack = 1e-9 * (1.0 + abs(x))
    if minimum and x > min(xa, xb) + slack:
        return False
    if not minimum and x < max(xa, xb) - slack:
        return False
    za = np.concatenate([br.states[i], [xa]])
    zb = np.concatenate([br.states[i + 1], [xb]])
    z = np.concatenate([np.asarray(s, dtype=float), [float(x)]])
    chord = float(np.linalg.norm(zb - za))
    return min(np.linalg.norm(z - za), np.linalg.norm(z - zb)) <= 3.0 * chord + 1e-12


def _detect(ev: _Eval, branches: list[Branch], lower):
    folds, bifs = [], []
    for k, br in enumerate(branches):
        n = len(br.x)
        for i in range(n - 1):
            tx0, tx1 = br.tangent_x[i], br.tangent_x[i + 1]
            if tx0 * tx1 < 0:
                j = i if abs(tx0) < abs(tx1) else i + 1
                for jj in (j, 2 * i + 1 - j):
                    s, x, ok = refine_fold(ev, br.states[jj], br.x[jj])
                    if ok and _fold_on_branch(br, i, s, x, tx0 < 0):
                        break
                else:
                    s, x, ok = br.states[j], br.x[j], False
                folds.append(
                    {
                        "value": float(ev.path.v_of(x)),
                        "x": float(x),
                        "state": s,
                        "branch": k,
                        "index": i,
                        "status": "ok" if ok else "not_converged",
                        "stable_side": "none",
                    }
                )
            elif br.stable[i] != br.stable[i + 1]:
                r = _refine_margin(ev, br, i)
                if r is None:
                    continue
                x, s = r
                kind = "branch_point" if br.det_sign[i] != br.det_sign[i + 1] else "stability"
                bifs.append(
                    {
                        "value": float(ev.path.v_of(x)),
                        "x": x,
                        "state": s,
                        "branch": k,
                        "index": i,
                        "kind": kind,
                        "status": "ok",
                    }
                )
    # fold's stable side by comparing the two arms of the fold on the branch
    for f in folds:
        br = branches[f["branch"]]
        i = f["index"]
        lo_i = max(i - 3, 0)
        hi_i = min(i + 4, len(br.x) - 1)
        arm_a = br.states[lo_i : i + 1]
        arm_b = br.states[i + 1 : hi_i + 1]
        st_a = br.stable[lo_i : i + 1]
        st_b = br.stable[i + 1 : hi_i + 1]
        if st_a.any() and not st_b.any():
            f["stable_side"] = "upper" if arm_a.sum(1).mean() > arm_b.sum(1).mean() else "lower"
        elif st_b.any() and not st_a.any():
            f["stable_side"] = "upper" if arm_b.sum(1).mean() > arm_a.sum(1).mean() else "lower"
        else:
            f["stable_side"] = "none"
    return folds, bifs


# -- driver ------------------------------------------------------------------------------
def _seeds(model: Model, path: ParamPath, v: float) -> list[np.ndarray]:
    """Stable fixed points at ``v`` from every declared initialisation."""
    from .fixed_point import solve_batch

    m = model.replace(**{path.param: float(v)})
    inits = list(getattr(m, "inits", ()))
    if inits:
        s0 = np.stack([m.initial_state(i) for i in inits])
        S, _, ST, _ = solve_batch(path.system, s0, m.theta(), **m.solver_options())
        return [s for s, st in zip(S, ST, strict=True) if st == "ok"]
    res = m.solve()
    return [np.asarray(res.state, dtype=float)] if res.status == "ok" else []


def _covered(branches: list[Branch], s: np.ndarray, x: float, tol: float = 1e-7) -> bool:
    for br in branches:
        near = np.abs(br.x - x) <= 1e-12
        if near.any() and np.min(np.max(np.abs(br.states[near] - s), axis=1)) < tol:
            return True
    return False


def continue_branches(
    model: Model,
    param: str,
    lo: float,
    hi: float,
    *,
    log: bool | None = None,
    param_derivative: str | None = None,
    hmax: float = HMAX,
    extra_seeds: list[tuple[float, np.ndarray]] | None = None,
) -> Continuation:
    """Every branch reachable from the stable fixed points at ``lo`` and ``hi``.

    The stable fixed points from each declared initialisation at both ends of
    the range seed the continuation (from ``lo`` upwards, then from ``hi``
    downwards for those not already on a traced branch); each branch is traced
    through its folds, so S-shaped branches come with their unstable middle
    segment. Folds are refined by the bordered Newton method, stability changes
    by Brent's method on the stability margin, and information crossings
    (equal free energy of two stable branches) by Brent's method on the
    free-energy difference.

    Parameters
    ----------
    model : Model
        Any model whose :meth:`~meanfield.Model.system` is a map or a flow.
    param : str
        A float parameter that leaves the system's structure unchanged.
    lo, hi : float
        The range.
    log : bool, optional
        Continue in ``log(param)`` (default: positive ranges over a decade).
    param_derivative : {'sympy', 'difference'}, optional
        How ``dG/dparam`` is obtained (see the module docstring).
    hmax : float
        Largest arclength step (the range is rescaled to unit length).
    extra_seeds : list of (value, state), optional
        More fixed points to continue from (e.g. an isolated branch).
    """
    path = ParamPath.make(model, param, lo, hi, log=log)
    # a diverging corrector step is rejected by its non-finite residual
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        return _continue(model, path, param_derivative, hmax, extra_seeds)


def _continue(model, path, param_derivative, hmax, extra_seeds) -> Continuation:
    lo, hi = path.lo, path.hi
    ev = _Eval(path, param_derivative)
    lower = _lower_bounds(model)
    branches: list[Branch] = []
    seeds = [(0.0, s, +1.0) for s in _seeds(model, path, lo)]
    seeds += [(1.0, s, -1.0) for s in _seeds(model, path, hi)]
    for v, s in extra_seeds or []:
        x = float(path.x_of(v))
        seeds += [(x, np.asarray(s, float), +1.0), (x, np.asarray(s, float), -1.0)]
    for x0, s0, direction in seeds:
        s0, ok = _natural(ev, s0, x0)
        if not ok or _covered(branches, s0, x0):
            continue
        if lower is not None and np.any(s0 < lower - 1e-9):
            continue
        br = trace_branch(ev, s0, x0, direction, lower=lower, hmax=hmax)
        if 0.0 < x0 < 1.0:  # an interior seed: trace the other way too and join
            back = trace_branch(ev, s0, x0, -direction, lower=lower, hmax=hmax)
            br = _join(back, br)
        branches.append(br)
    folds, bifs = _detect(ev, branches, lower)
    for k, br in enumerate(branches):
        # the step size collapses where the branch runs into a branch point
        # (e.g. a symmetry-breaking pitchfork of a rank-r system); one refined
        # among its last points ends it there, not a failure
        if br.end == "step_failed" and (
            any(
                b["branch"] == k and b["kind"] == "branch_point" and b["index"] >= len(br.x) - 4
                for b in bifs
            )
            or _near_branch_point(ev, br.states[-1], br.x[-1])
        ):
            br.end = "branch_point"
    out = Continuation(path, branches, folds, bifs)
    out.crossings = information_crossings(ev, branches)
    out.evaluations = ev.nev
    return out


def _near_branch_point(ev: _Eval, s, x, rtol: float = 1e-3) -> bool:
    """Is ``(s, x)`` next to a branch point, where ``[G_s | G_x]`` loses rank
    (two curves cross, so the tangent is not unique and the step size
    collapses)? Judged by the smallest singular value relative to the largest."""
    M = np.column_stack([ev.A(s, x), ev.Gx(s, x)])
    sv = np.linalg.svd(M, compute_uv=False)
    return bool(np.all(np.isfinite(sv)) and sv[-1] <= rtol * sv[0])


def _join(back: Branch, fwd: Branch) -> Branch:
    def rev(a):
        return a[::-1]

    kw = {}
    for name in ("values", "states", "stable", "margin", "free_energy", "det_sign", "x"):
        kw[name] = np.concatenate([rev(getattr(back, name))[:-1], getattr(fwd, name)])
    kw["tangent_x"] = np.concatenate([-rev(back.tangent_x)[:-1], fwd.tangent_x])
    return Branch(end=fwd.end, **kw)


# -- stable segments and information crossings -----------------------------------------
@dataclass
class Segment:
    """A maximal run of stable points of one branch (``x`` monotone on it)."""

    branch: int
    start: int
    stop: int  # inclusive

    def xs(self, brs):
        return brs[self.branch].x[self.start : self.stop + 1]


def stable_segments(branches: list[Branch]) -> list[Segment]:
    segs = []
    for k, br in enumerate(branches):
        i, n = 0, len(br.x)
        while i < n:
            if br.stable[i]:
                j = i
                while j + 1 < n and br.stable[j + 1] and br.tangent_x[j + 1] * br.tangent_x[i] > 0:
                    j += 1
                if j > i:
                    segs.append(Segment(k, i, j))
                i = j + 1
            else:
                i += 1
    return segs


def _seg_state(ev: _Eval, branches, seg: Segment, x: float):
    br = branches[seg.branch]
    xs = br.x[seg.start : seg.stop + 1]
    order = np.argsort(xs)
    xs_o = xs[order]
    if not xs_o[0] - 1e-12 <= x <= xs_o[-1] + 1e-12:
        return None, False
    st = br.states[seg.start : seg.stop + 1][order]
    guess = np.array([np.interp(x, xs_o, st[:, i]) for i in range(st.shape[1])])
    return _natural(ev, guess, x)


def information_crossings(ev: _Eval, branches: list[Branch]) -> list[dict[str, Any]]:
    """Where two stable segments' free energies cross (Brent on the difference)."""

    if ev.sys.potential is None:
        return []
    segs = stable_segments(branches)
    out = []
    for a in range(len(segs)):
        for b in range(a + 1, len(segs)):
            A, B = segs[a], segs[b]
            xa, xb = A.xs(branches), B.xs(branches)
            lo_, hi_ = max(xa.min(), xb.min()), min(xa.max(), xb.max())
            if not hi_ > lo_:
                continue
            # distinct branches on the common interval?
            sa, _ = _seg_state(ev, branches, A, 0.5 * (lo_ + hi_))
            sb, _ = _seg_state(ev, branches, B, 0.5 * (lo_ + hi_))
            if sa is None or sb is None or np.max(np.abs(sa - sb)) < 1e-7:
                continue

            def dphi(x, A=A, B=B):
                s1, ok1 = _seg_state(ev, branches, A, x)
                s2, ok2 = _seg_state(ev, branches, B, x)
                if not (ok1 and ok2):
                    return np.nan
                return ev.potential(s1, x) - ev.potential(s2, x)

            for xr in sign_change_roots(dphi, lo_, hi_, 9):
                s1, _ = _seg_state(ev, branches, A, xr)
                s2, _ = _seg_state(ev, branches, B, xr)
                out.append(
                    {
                        "value": float(ev.path.v_of(xr)),
                        "x": float(xr),
                        "states": (s1, s2),
                        "segments": (A, B),
                    }
                )
    return out


def sign_change_roots(f, a: float, b: float, n: int) -> list[float]:
    """Roots of ``f`` on ``[a, b]``: Brent in each cell of an ``n``-point grid
    where ``f`` changes sign (cells with a non-finite end are skipped)."""
    from scipy.optimize import brentq

    grid = np.linspace(a, b, n)
    vals = np.array([f(x) for x in grid])
    return [
        float(brentq(f, grid[i], grid[i + 1], xtol=1e-15, rtol=4 * np.finfo(float).eps))
        for i in range(n - 1)
        if np.isfinite(vals[i]) and np.isfinite(vals[i + 1]) and vals[i] * vals[i + 1] < 0
    ]


# -- the JSON report ---------------------------------------------------------------------
def branch_report(model: Model, param: str, lo: float, hi: float, **kw) -> dict[str, Any]:
    """``meanfield branch``: every traced point, folds, bifurcations and crossings.

    Returns
    -------
    dict
        ``param``; ``points``: one dict per traced point with ``branch`` (the
        curve's index), ``value``, ``state``, ``stable``, ``free_energy`` and
        the model's observables (e.g. ``overlap``, ``mse``); ``folds``: the
        parameter values of the folds; ``bifurcations``: ``{value, kind}`` of
        branch points and other stability changes; ``crossings``: parameter
        values where two stable branches' free energies are equal; ``status``.
    """
    # the refined segment ends live with the thresholds (they import this module)
    from .continuation_threshold import refined_crossings

    res = continue_branches(model, param, lo, hi, **kw)
    points = []
    for k, br in enumerate(res.branches):
        for i in range(len(br.x)):
            obs = model.observables(br.states[i])
            p = {
                "branch": k,
                "value": float(br.values[i]),
                "state": [float(v) for v in br.states[i]],
                "stable": bool(br.stable[i]),
                "free_energy": _num(br.free_energy[i]),
            }
            p.update(obs)
            points.append(p)
    status = "ok"
    if any(f["status"] != "ok" for f in res.folds) or any(
        br.end in ("step_failed", "max_points") for br in res.branches
    ):
        status = "not_converged"
    if not res.branches:
        status = "no_fixed_point"
    return {
        "param": param,
        "points": points,
        "folds": sorted(float(f["value"]) for f in res.folds),
        "bifurcations": [{"value": float(b["value"]), "kind": b["kind"]} for b in res.bifurcations],
        "crossings": [float(res.path.v_of(x)) for x in refined_crossings(res)],
        "status": status,
    }


def _num(v) -> float | None:
    v = float(v)
    return v if math.isfinite(v) else None
