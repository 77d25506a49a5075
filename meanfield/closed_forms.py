"""Closed forms derived by sympy from the declared state evolution.

Cubic order-p tensor with identical Gaussian priors N(mu, v) on every mode
(Kadmon & Ganguli 2018; shared/papers/tensor.md §3). Nothing here is typed
by hand: each expression comes from the tensor model's own state-evolution map
(exact for Gaussian priors) by ``solve``, ``diff`` and ``discriminant``.

* ``branch``: the fixed points as ``Delta = g(M)``;
* ``M_dyn``, ``delta_dyn``: zero mean, the informative branch's onset
  (the maximum of ``g``), the dynamic spinodal;
* ``mu_c``, ``M_c``, ``delta_c``: the tricritical point where the two
  spinodals merge and the hard region vanishes.
"""

from __future__ import annotations

from functools import lru_cache

import sympy as sp

__all__ = ["cubic_gaussian"]


@lru_cache(maxsize=8)
def cubic_gaussian(order: int) -> dict[str, sp.Expr]:
    """Closed forms for the cubic order-``order`` tensor with N(mu, v) priors.

    Returns
    -------
    dict
        sympy expressions in the symbols ``M``, ``mu``, ``v`` (positive) and
        ``delta``: ``branch`` (``Delta`` as a function of ``M``), ``M_dyn``,
        ``delta_dyn`` (zero mean), ``mu_c``, ``M_c``, ``delta_c``.
    """
    from .models.tensor import Tensor

    p = int(order)
    system = Tensor(order=p, prior="gaussian").system()
    M, mu = sp.Symbol("M", positive=True), sp.Symbol("mu", positive=True)
    v, delta = sp.Symbol("v", positive=True), sp.Symbol("delta", positive=True)
    subs = {s: M for s in system.state}
    for s in system.params:
        if s.name.startswith("n_"):
            subs[s] = 1
        elif s.name.startswith("mean_"):
            subs[s] = mu
        elif s.name.startswith("var_"):
            subs[s] = v
        elif s.name == "delta":
            subs[s] = delta
    fixed = sp.together(system.rhs[0].subs(subs) - M)
    (g,) = sp.solve(sp.numer(fixed), delta)
    g = sp.factor(g)
    # zero mean: the branch's maximum is the dynamic spinodal
    g0 = sp.factor(g.subs(mu, 0))
    crit = [c for c in sp.solve(sp.diff(g0, M), M) if c != 0]
    (m_dyn,) = crit
    d_dyn = sp.factor(sp.simplify(g0.subs(M, m_dyn)))
    # spinodals: g'(M) = 0, a quadratic in M after removing its M-power factor;
    # they merge where its discriminant vanishes
    num = sp.factor(sp.numer(sp.together(sp.diff(g, M))))
    quad = sp.Poly(sp.factor(num / M ** (p - 2)), M)
    assert quad.degree() == 2, quad
    disc = sp.discriminant(quad.as_expr(), M)
    mu_c = [r for r in sp.solve(disc, mu) if r.is_positive]
    mu_c = sp.simplify(mu_c[0])
    m_c = sp.simplify(sp.solve(quad.as_expr().subs(mu, mu_c), M)[0])
    d_c = sp.simplify(g.subs({mu: mu_c, M: m_c}))
    return {
        "branch": g,
        "M_dyn": sp.simplify(m_dyn),
        "delta_dyn": d_dyn,
        "mu_c": mu_c,
        "M_c": m_c,
        "delta_c": d_c,
        "symbols": (M, mu, v, delta),
    }
