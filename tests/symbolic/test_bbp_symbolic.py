"""The order-2 model's trivial fixed point loses stability at the BBP threshold.

For zero-mean priors with variances v_1, v_2, the state-evolution Jacobian at
M = 0 (derived by sympy, Gaussian expectations by Price's theorem) has
spectral radius 1 exactly at Delta = v_1 v_2 sqrt(n_1 n_2) (tensor.md §3;
Baik, Ben Arous & Péché 2005; Lesieur et al. 2017 for rectangular matrices).
"""

import itertools

import pytest
import sympy as sp

from meanfield import get_model
from meanfield._symbols import explicit

pytestmark = pytest.mark.symbolic

ZERO_MEAN = ["gaussian", "rademacher", "sparse_rademacher", "gauss_bernoulli"]


def _jacobian_at_zero(priors):
    model = get_model("tensor")(order=2, prior=",".join(priors))
    system = model.system()
    J = system.jacobian.subs({m: 0 for m in system.state})
    J = J.applyfunc(lambda e: sp.simplify(explicit(e)))
    return system, J


@pytest.mark.parametrize("p1,p2", list(itertools.combinations_with_replacement(ZERO_MEAN, 2)))
def test_bbp_threshold_exact(p1, p2):
    system, J = _jacobian_at_zero([p1, p2])
    delta, n1, n2 = system.params[:3]
    # zero means for the priors that have a mean parameter
    zero = {s: 0 for s in system.params if s.name.startswith("mean")}
    J = J.subs(zero).applyfunc(sp.simplify)
    assert J[0, 0] == 0 and J[1, 1] == 0
    model = get_model("tensor")(order=2, prior=f"{p1},{p2}")
    variances = []
    for a, pr in enumerate(model.modes):
        local = {s: sp.Symbol(f"{s.name}_{a + 1}", **s.assumptions0) for s in pr.params}
        variances.append(pr.var_expr.xreplace(local).subs(zero))
    v1, v2 = variances
    # eigenvalues +-sqrt(J01 J10); spectral radius 1 <=> J01 J10 = 1
    rho_sq = sp.simplify(J[0, 1] * J[1, 0])
    assert sp.simplify(rho_sq - (v1 * v2) ** 2 * n1 * n2 / delta**2) == 0
    crit = sp.solve(sp.Eq(rho_sq, 1), delta)
    crit = [c for c in crit if c.is_positive is not False]
    assert len(crit) == 1
    assert sp.simplify(crit[0] - v1 * v2 * sp.sqrt(n1 * n2)) == 0


def test_all_zero_mean_order3_trivial_point_always_stable():
    """p >= 3, zero means: the Jacobian at M = 0 vanishes, so no easy phase (Delta_alg = 0)."""
    model = get_model("tensor")(order=3, prior="gaussian")
    system = model.system()
    J = system.jacobian.subs({m: 0 for m in system.state})
    J = J.applyfunc(lambda e: sp.simplify(explicit(e)))
    zero = {s: 0 for s in system.params if s.name.startswith("mean")}
    assert J.subs(zero).applyfunc(sp.simplify) == sp.zeros(3, 3)


def test_two_zero_mean_modes_order3_instability():
    """Two zero-mean modes and one of mean mu (p = 3): M_1 = M_2 = 0 is unstable iff
    Delta < v_1 v_2 sqrt(n_1 n_2) n_3 mu^2 (tensor.md §3, k = 2)."""
    model = get_model("tensor")(order=3, prior="gaussian", mean="0,0,0.3")
    system = model.system()
    delta, n1, n2, n3 = system.params[:4]
    mu3 = [s for s in system.params if s.name == "mean_3"][0]
    v = [s for s in system.params if s.name.startswith("var")]
    zero = {s: 0 for s in system.params if s.name in ("mean_1", "mean_2")}
    J = system.jacobian.subs(zero)
    # the third mode sits at its own fixed point given M_1 = M_2 = 0: M_3 = mu^2
    J = J.subs({system.state[0]: 0, system.state[1]: 0, system.state[2]: mu3**2})
    J = J.applyfunc(lambda e: sp.simplify(explicit(e)))
    block = J[:2, :2]
    rho_sq = sp.simplify(block[0, 1] * block[1, 0])
    expected = (v[0] * v[1]) ** 2 * n1 * n2 * (n3 * mu3**2) ** 2 / delta**2
    assert sp.simplify(rho_sq - expected) == 0
