"""Dynamic mean-field theory (DMFT) of random rate networks, any sympy nonlinearity.

For a network ``tau dh_i/dt = -h_i + w_i y + g sum_j J_ij phi(h_j) + sigma xi_i``
with ``J_ij ~ N(0, 1/N)``, white noise of unit intensity and a static input
``w_i y`` (``w`` drawn from a weight law), the fluctuating part ``z_i = h_i - w_i y``
is a Gaussian process whose autocorrelation ``Delta(s)`` obeys
(Sompolinsky, Crisanti & Sommers 1988; ``shared/papers/predictive_coding.md`` §2.2)

.. math::

    (1 - \\partial_s^2)\\,\\Delta(s) = g^2 C(\\Delta(s); \\Delta_0) + \\sigma^2 \\delta(s),
    \\qquad C(\\Delta; \\Delta_0) = E_w E[\\phi(w y + z_1)\\phi(w y + z_2)],

with ``Var z = Delta_0`` and ``Cov(z_1, z_2) = Delta``. For ``s > 0`` this is
Newtonian motion ``Delta'' = f(Delta) = Delta - g^2 C(Delta)`` in the potential
``V`` with ``V' = -f``; the noise makes a cusp ``Delta'(0+) = -sigma^2/2``.
Energy conservation between ``s = 0`` and ``s = inf`` (where ``Delta`` rests at
``Delta_inf``, the up-crossing root of ``f``) gives one equation for ``Delta_0``
(derived here; it reduces to the SCS potential method at ``sigma = 0`` and to
``Delta_0 = sigma^2 / 2`` at ``g = 0``):

.. math::

    \\int_{\\Delta_\\infty}^{\\Delta_0} f(\\Delta)\\, d\\Delta = \\sigma^4 / 8 .

No primitive of ``phi`` is needed (``V(Delta_inf) - V(Delta_0)`` is the integral of
``f``; ``dQ/dDelta = C`` by Price's theorem). At ``sigma = 0`` the static
(fixed-point) branch ``Delta_0 = Delta_inf = g^2 E[phi^2]`` is used when it is
stable, ``g^2 E[phi'^2] < 1``; otherwise the chaotic root.

Every derivative of ``phi`` is taken by sympy; expectations are Gauss-Hermite
sums from :mod:`meanfield._quadrature`. For Gaussian ``w`` the unweighted
expectations collapse (``w y + sqrt(Delta) u ~ N(0, y^2 + Delta)``), which
keeps the correlation function two-dimensional.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import sympy as sp

from .._params import ParamError
from .._quadrature import gauss_hermite

__all__ = [
    "H",
    "Nonlinearity",
    "nonlinearity",
    "WeightLaw",
    "DMFTSolution",
    "solve_dmft",
    "autocorrelation",
    "rate_autocovariance",
    "closed_loop_variance",
]

#: the symbol of the nonlinearity's argument
H = sp.Symbol("h", real=True)


@dataclass(frozen=True)
class Nonlinearity:
    """``phi(h)`` as sympy, its sympy derivatives, and numpy callables."""

    expr: sp.Expr
    d1: sp.Expr
    d3: sp.Expr
    f: object = field(compare=False, repr=False)
    f1: object = field(compare=False, repr=False)
    f3: object = field(compare=False, repr=False)
    sup: float = 1.0

    def __call__(self, x):
        return self.f(x)


def _vec(fn):
    def g(x):
        return np.asarray(fn(x), dtype=float) + np.zeros(np.shape(x))

    return g


@lru_cache(maxsize=32)
def nonlinearity(text: str) -> Nonlinearity:
    """Parse ``text`` (a sympy expression in ``h``, or a bare name like ``tanh``).

    Raises
    ------
    ParamError
        Naming ``phi`` if the text is not a real expression of ``h`` alone.
    """
    allowed = "a sympy expression in h (e.g. tanh(h), erf(h)) or a function name"
    t = str(text).strip()
    try:
        if t.isidentifier() and t != "h":
            expr = sp.sympify(f"{t}(h)", locals={"h": H})
        else:
            expr = sp.sympify(t, locals={"h": H})
    except (sp.SympifyError, TypeError, SyntaxError, AttributeError):
        raise ParamError("phi", allowed, text) from None
    if not isinstance(expr, sp.Expr) or expr.free_symbols - {H} or H not in expr.free_symbols:
        raise ParamError("phi", allowed, text)
    d1 = sp.diff(expr, H)
    d3 = sp.diff(expr, H, 3)
    f, f1, f3 = (_vec(sp.lambdify(H, e, modules=["scipy", "numpy"])) for e in (expr, d1, d3))
    xs = np.linspace(-30, 30, 2001)
    vals = f(xs)
    if not np.all(np.isfinite(vals)):
        raise ParamError("phi", allowed + " finite on the real line", text)
    return Nonlinearity(expr, d1, d3, f, f1, f3, float(np.max(np.abs(vals))))


@dataclass(frozen=True)
class WeightLaw:
    """Distribution of the encoder/decoder weights ``w``: ``gaussian`` N(0,1) or ``binary`` +-1."""

    name: str
    order: int = 41

    def nodes(self) -> tuple[np.ndarray, np.ndarray]:
        if self.name == "gaussian":
            return gauss_hermite(self.order)
        if self.name == "binary":
            return np.array([-1.0, 1.0]), np.array([0.5, 0.5])
        raise ParamError("weights", "one of gaussian, binary", self.name)

    def fine_nodes(self) -> tuple[np.ndarray, np.ndarray]:
        """Nodes for one-dimensional expectations: for Gaussian ``w`` a trapezoid rule on
        ``[-8.5, 8.5]`` (801 points; spectrally accurate, and it resolves the kink of
        ``w phi(w y)`` at large ``y`` that a Gauss-Hermite rule in ``w`` misses)."""
        if self.name != "gaussian":
            return self.nodes()
        w = np.linspace(-8.5, 8.5, 801)
        p = np.exp(-w * w / 2)
        return w, p / p.sum()

    @property
    def abs_mean(self) -> float:
        """``E|w|`` (the saturation level of the transfer curve for ``sup|phi| = 1``)."""
        return float(np.sqrt(2 / np.pi)) if self.name == "gaussian" else 1.0


def _z(order):
    return gauss_hermite(order)


def expect(fn, y: float, var: float, law: WeightLaw, power: int = 0, order: int = 81) -> float:
    """``E_w[w^power E_z fn(w y + sqrt(var) z)]``, ``z ~ N(0, 1)``."""
    z, pz = _z(order)
    if law.name == "gaussian" and power == 0:
        # w y + sqrt(var) z ~ N(0, y^2 + var): one dimension
        return float(fn(np.sqrt(y * y + var) * z) @ pz)
    w, pw = law.fine_nodes()
    vals = fn(w[:, None] * y + np.sqrt(max(var, 0.0)) * z[None, :]) @ pz
    return float((pw * w**power) @ vals)


def correlation(delta, y: float, d0: float, phi, law: WeightLaw, power: int = 0,
                order: int = 41) -> np.ndarray:
    """``C(Delta) = E_w[w^power E[phi(w y + z_1) phi(w y + z_2)]]``, ``Var z = d0``,
    ``Cov(z_1, z_2) = Delta``.

    Vectorised over ``delta`` (values in ``[0, d0]``).
    """
    delta = np.clip(np.atleast_1d(np.asarray(delta, dtype=float)), 0.0, d0)
    u, pu = _z(order)
    v, pv = _z(order)
    sd = np.sqrt(d0 - delta)[:, None, None]
    if law.name == "gaussian" and power == 0:
        a = np.sqrt(y * y + delta)[:, None, None] * u[None, :, None]
        inner = phi(a + sd * v[None, None, :]) @ pv  # (n, Ku)
        return (inner**2) @ pu
    w, pw = law.nodes()
    out = np.zeros(delta.shape)
    for wk, pk in zip(w, pw, strict=True):
        a = wk * y + np.sqrt(delta)[:, None, None] * u[None, :, None]
        inner = phi(a + sd * v[None, None, :]) @ pv
        out += pk * wk**power * ((inner**2) @ pu)
    return out


@dataclass
class DMFTSolution:
    """Single-site statistics: ``Delta_0`` (total variance of ``z``), ``Delta_inf``
    (its static, quenched part), ``chaotic`` (a time-dependent self-consistent
    solution at ``sigma = 0``), ``criterion`` (``g^2 E[phi'^2]`` on the static
    branch: the chaos test), ``status``."""

    delta0: float
    delta_inf: float
    y: float
    g: float
    sigma: float
    chaotic: bool
    criterion: float
    status: str
    law: WeightLaw
    phi: Nonlinearity


def _delta_inf(f, d0: float, points: int = 33) -> float | None:
    """Smallest up-crossing root of ``f`` on ``[0, d0]`` (``f(0) <= 0``)."""
    from scipy.optimize import brentq

    grid = np.linspace(0.0, d0, points)
    vals = f(grid)
    if abs(vals[0]) < 1e-14 and vals[1] > 0:
        return 0.0
    for i in range(points - 1):
        if vals[i] <= 0 < vals[i + 1]:
            return float(brentq(lambda d: float(f(np.array([d]))[0]), grid[i], grid[i + 1],
                                xtol=1e-14, rtol=1e-13))
    return None


def _gl(n=24):
    x, w = np.polynomial.legendre.leggauss(n)
    return x, w


def fixed_point_variance(phi, g: float, y: float, law: WeightLaw) -> float:
    """``Delta_fp = g^2 E[phi(w y + sqrt(Delta_fp) z)^2]`` (the static branch at ``sigma = 0``)."""
    from scipy.optimize import brentq

    if g == 0:
        return 0.0

    def r(d):
        return d - g * g * expect(lambda x: phi(x) ** 2, y, d, law)

    hi = g * g * phi.sup**2 + 1.0
    # the largest root (the non-trivial static branch; 0 only when it is the sole root)
    d = np.geomspace(1e-10, hi, 80)
    vals = np.array([r(x) for x in d])
    idx = np.flatnonzero(vals < 0)
    if idx.size == 0:
        return 0.0
    k = int(idx[-1])
    return float(brentq(r, d[k], d[k + 1], xtol=1e-14, rtol=1e-13))


def solve_dmft(phi: Nonlinearity, g: float, sigma: float, y: float, law: WeightLaw,
               order: int = 41) -> DMFTSolution:
    """Solve the stationary DMFT at static input ``y`` (module docstring).

    Returns
    -------
    DMFTSolution
        ``status`` ``ok`` or ``not_converged`` (no root bracketed).
    """
    from scipy.optimize import brentq

    g, sigma, y = float(g), float(sigma), float(y)
    dfp = fixed_point_variance(phi, g, y, law)
    crit = g * g * expect(lambda x: phi.f1(x) ** 2, y, dfp, law)
    if g == 0.0:
        return DMFTSolution(sigma**2 / 2, 0.0, y, g, sigma, False, crit, "ok", law, phi)
    target = sigma**4 / 8.0
    if sigma == 0.0 and crit < 1.0:
        return DMFTSolution(dfp, dfp, y, g, sigma, False, crit, "ok", law, phi)
    xg, wg = _gl(24)

    def resid(d0):
        def f(d):
            return d - g * g * correlation(d, y, d0, phi, law, order=order)

        dinf = _delta_inf(f, d0)
        if dinf is None:
            return np.nan, None
        if d0 - dinf < 1e-12:
            return -target, dinf
        mid, half = 0.5 * (d0 + dinf), 0.5 * (d0 - dinf)
        integral = half * float(wg @ f(mid + half * xg))
        return integral - target, dinf

    if sigma == 0.0:
        # the chaotic root lies below the static branch (f(Delta_0) < 0); the scan
        # must be fine: the root is narrow (digest pitfall 10)
        lo, hi_cap = 0.01 * dfp, dfp * (1 - 1e-4)
        step = min(0.01, (hi_cap - lo) / 40)
    else:
        lo = 1e-3 * sigma**2
        hi_cap = 4.0 * (sigma**2 / 2 + g * g * phi.sup**2) + 1.0
        step = max(0.01, 0.05 * (sigma**2 / 2 + dfp))
    prev_d, prev_r = None, None
    d0 = lo
    bracket = None
    while d0 <= hi_cap:
        r, dinf = resid(d0)
        ok = np.isfinite(r) and (sigma > 0 or (d0 - g * g * correlation(
            d0, y, d0, phi, law, order=order)[0]) < 0)
        if ok and prev_r is not None and np.sign(r) != np.sign(prev_r):
            bracket = (prev_d, d0)
            break
        if ok:
            prev_d, prev_r = d0, r
        else:
            prev_d, prev_r = None, None
        d0 += step
    if bracket is None:
        return DMFTSolution(np.nan, np.nan, y, g, sigma, False, crit, "not_converged", law, phi)
    root = brentq(lambda d: resid(d)[0], *bracket, xtol=1e-13, rtol=1e-12)
    _, dinf = resid(root)
    chaotic = sigma == 0.0
    return DMFTSolution(float(root), float(dinf), y, g, sigma, chaotic, crit, "ok", law, phi)


def _cheb(fn, a: float, b: float, n: int = 48):
    """Chebyshev interpolant of ``fn`` (vectorised) on ``[a, b]``."""
    from numpy.polynomial import chebyshev as C

    if b - a < 1e-14:
        c = float(np.atleast_1d(fn(np.array([a])))[0])
        return lambda x: np.full(np.shape(x), c)
    k = np.arange(n)
    t = np.cos(np.pi * (k + 0.5) / n)
    xs = 0.5 * (a + b) + 0.5 * (b - a) * t
    coef = C.chebfit(t, fn(xs), n - 1)
    return lambda x: C.chebval((2 * np.asarray(x) - a - b) / (b - a), coef)


def autocorrelation(sol: DMFTSolution, s: np.ndarray) -> np.ndarray:
    """``Delta(s)`` for ``s >= 0`` (the separatrix from ``Delta_0`` to ``Delta_inf``).

    ``g = 0``: ``(sigma^2/2) e^{-s}``. Otherwise ``Delta'' = Delta - g^2 C(Delta)``
    integrated from ``Delta_0`` with ``Delta'(0+) = -sigma^2/2``, stopped close to
    ``Delta_inf`` and continued by the linearised exponential tail.
    """
    from scipy.integrate import solve_ivp

    s = np.asarray(s, dtype=float)
    d0, dinf, g = sol.delta0, sol.delta_inf, sol.g
    if g == 0.0:
        return d0 * np.exp(-np.abs(s))
    if d0 - dinf < 1e-12:
        return np.full(s.shape, d0)
    cfun = _cheb(lambda d: correlation(d, sol.y, d0, sol.phi, sol.law), dinf, d0)
    span = d0 - dinf
    # rate of the exponential tail: sqrt(f'(Delta_inf))
    eps = 1e-6 * span
    fp = ((dinf + eps - g * g * cfun(dinf + eps)) - (dinf - g * g * cfun(dinf))) / eps
    lam = float(np.sqrt(max(fp, 1e-12)))

    def rhs(_t, u):
        return [u[1], u[0] - g * g * float(cfun(min(max(u[0], dinf), d0)))]

    def near(_t, u):
        return (u[0] - dinf) - 1e-6 * span

    near.terminal = True

    def turn(_t, u):
        return u[1]

    turn.terminal = True
    turn.direction = 1
    v0 = -sol.sigma**2 / 2 if sol.sigma > 0 else 0.0
    smax = max(float(np.max(s)) if s.size else 1.0, 1.0)
    res = solve_ivp(rhs, (0.0, smax + 60.0), [d0, v0], events=(near, turn), dense_output=True,
                    rtol=1e-10, atol=1e-13 * max(span, 1e-12), method="DOP853")
    send = float(res.t[-1])
    uend = max(float(res.y[0, -1]) - dinf, 0.0)
    out = np.empty(s.shape)
    a = np.abs(s)
    inside = a <= send
    out[inside] = res.sol(a[inside])[0]
    out[~inside] = dinf + uend * np.exp(-lam * (a[~inside] - send))
    return np.clip(out, dinf, d0)


def rate_autocovariance(sol: DMFTSolution, s: np.ndarray, power: int = 2) -> np.ndarray:
    """``C~(s) = E_w[w^power (C_w(s) - C_w(inf))]``: the temporal rate autocovariance
    the decoder sees (digest §2.3; minus ``C(Delta_inf)``, pitfall 10)."""
    d = autocorrelation(sol, s)
    lo = sol.delta_inf
    cw = _cheb(lambda x: correlation(x, sol.y, sol.delta0, sol.phi, sol.law, power=power),
               lo, sol.delta0)
    return cw(d) - cw(np.array([lo]))[0]


def closed_loop_variance(sol: DMFTSolution, n: int, loop_gain: float, delay: float,
                         tau: float = 1.0) -> tuple[float, float]:
    """Decoder variance ``var(dxhat)`` by linear response of the collective mode.

    .. math::

        \\mathrm{var} = \\frac1N \\int\\frac{d\\omega}{2\\pi} S_0(\\omega)
            \\frac{|1 + i\\omega\\tau|^2}{|1 + i\\omega\\tau + K e^{-i\\omega d}|^2},
        \\qquad S_0 = \\mathcal F[\\tilde C],\\; K = b\\kappa,

    evaluated as ``(1/N)[C~(0) - int S_0 (1 - |H|^2)]`` (the subtracted integrand
    decays fast) with an FFT of ``C~(s)`` on a grid resolving ``1/(1 + K)`` and ``d``.
    Returns ``(variance, open_loop_variance)``.
    """
    K = float(loop_gain)
    ds = min(0.01, 0.05 / (1.0 + K))
    if delay > 0:
        ds = min(ds, delay / 20)
    smax = 60.0
    m = int(2 ** np.ceil(np.log2(2 * smax / ds)))
    s = np.arange(m // 2) * ds
    c = rate_autocovariance(sol, s)
    c0 = float(c[0])
    buf = np.zeros(m)
    buf[: m // 2] = c
    S = ds * (2.0 * np.fft.rfft(buf).real - c0)
    om = 2 * np.pi * np.fft.rfftfreq(m, ds)
    z = 1.0 + 1j * om * tau
    Hc = np.abs(z) ** 2 / np.abs(z + K * np.exp(-1j * om * delay)) ** 2
    integrand = S * (1.0 - Hc)
    dom = om[1] - om[0]
    integral = (dom / np.pi) * (integrand.sum() - 0.5 * integrand[0])
    return (c0 - integral) / n, c0 / n
