"""Independent closed forms for identical Gaussian priors N(mu, 1), cubic shape, rank 1.

Typed from tensor.md §3 (not derived from the package's sympy system): the
fixed points solve ``Delta = g(M) = M^(p-1) (rho - M) / (M - mu^2)``; the
spinodals are the local extrema of ``g``; the replica-symmetric free entropy
is ``Phi(M) = p psi(M^(p-1)/Delta) - (p-1) M^p / (2 Delta)`` with the Gaussian
``psi``; the Jacobian of ``M_a <- f(prod_{b!=a} M_b / Delta)`` at a symmetric
fixed point is ``c (p - 1 off-diagonal ones per row)``, ``c = f'(lam) M^(p-2) / Delta``,
``f'(lam) = 1 / (1 + lam)^2``, so its spectral radius is ``(p - 1) c``.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import brentq


def psi(lam, mu):
    """tensor.md §3, Gaussian psi with v = 1 (rho = mu^2 + 1)."""
    rho = mu**2 + 1.0
    return -0.5 * np.log1p(lam) + (lam**2 * rho + lam + lam * mu**2) / (2 * (1 + lam))


def phi(M, delta, mu, p=3):
    """Free entropy per N at the symmetric state M (all n_a = 1)."""
    return p * psi(M ** (p - 1) / delta, mu) - (p - 1) * M**p / (2 * delta)


def spectral_radius(M, delta, p=3):
    lam = M ** (p - 1) / delta
    return (p - 1) * M ** (p - 2) / (delta * (1 + lam) ** 2)


def fixed_points(delta, mu, p=3):
    """Real roots of M^(p-1) (rho - M) - Delta (M - mu^2) = 0 in [mu^2, rho], increasing.

    At mu = 0 the trivial root M = 0 has multiplicity p - 2 (listed once).
    """
    rho = mu**2 + 1.0
    # -M^p + rho M^(p-1) - Delta M + Delta mu^2
    c = np.zeros(p + 1)
    c[0], c[1] = -1.0, rho
    c[p - 1] -= delta
    c[p] += delta * mu**2
    r = np.roots(c)
    r = np.sort(r[np.abs(r.imag) < 1e-9].real)
    r = r[(r >= mu**2 - 1e-12) & (r <= rho + 1e-12)]
    out: list[float] = []
    for x in r:
        if not out or abs(x - out[-1]) > 1e-7:
            out.append(float(x))
    return out


def spinodals(mu, p=3):
    """(Delta_alg, Delta_dyn): local min and max of g on (mu^2, rho); at mu = 0,
    (0, Delta_dyn) (the trivial fixed point is always stable at p >= 3); None
    above the tricritical mean (no extrema)."""
    rho = mu**2 + 1.0

    def g(M):
        return M ** (p - 1) * (rho - M) / (M - mu**2)

    if mu == 0.0:
        ms = (p - 2) / (p - 1)
        return 0.0, g(ms)
    # g' = 0  <=>  (p-1)(rho - M)(M - mu^2) = M (rho - mu^2)
    # -(p-1) M^2 + [(p-1)(rho + mu^2) - (rho - mu^2)] M - (p-1) rho mu^2 = 0
    a = -(p - 1)
    b = (p - 1) * (rho + mu**2) - (rho - mu**2)
    cc = -(p - 1) * rho * mu**2
    disc = b * b - 4 * a * cc
    if disc <= 0:
        return None
    m1, m2 = sorted([(-b + s * np.sqrt(disc)) / (2 * a) for s in (1, -1)])
    return g(m1), g(m2)


def information(mu, p=3):
    """Delta_IT: Phi(informative) = Phi(uninformative) inside the spinodal window."""
    lo, hi = spinodals(mu, p)

    def gap(d):
        fp = fixed_points(d, mu, p)
        return phi(fp[-1], d, mu, p) - phi(fp[0], d, mu, p)

    eps = 1e-9 * hi
    return brentq(
        gap, max(lo, eps) * (1 + 1e-9) if lo > 0 else eps, hi * (1 - 1e-9), xtol=1e-15, rtol=1e-14
    )
