"""Closed forms derived by sympy against the numeric solvers (and the digest's values).

Cubic tensor, identical N(mu, v) priors (tensor.md §3): Delta_dyn(mu = 0) =
v^p (p-2)^(p-2) / (p-1)^(p-1); tricritical mu_c^2 = (p-2)^2 v / (4 (p-1)).
"""

import pytest
import sympy as sp

import meanfield
from meanfield.closed_forms import cubic_gaussian

pytestmark = pytest.mark.symbolic


@pytest.mark.parametrize("p", [3, 4, pytest.param(5, marks=pytest.mark.slow)])
def test_closed_forms_match_known_expressions(p):
    c = cubic_gaussian(p)
    M, mu, v, delta = c["symbols"]
    assert (
        sp.simplify(
            c["delta_dyn"] - v**p * sp.Integer(p - 2) ** (p - 2) / sp.Integer(p - 1) ** (p - 1)
        )
        == 0
    )
    assert sp.simplify(c["mu_c"] ** 2 - sp.Integer(p - 2) ** 2 * v / (4 * (p - 1))) == 0
    assert sp.simplify(c["branch"] - v * M ** (p - 1) * (mu**2 + v - M) / (M - mu**2)) == 0


@pytest.mark.parametrize("p", [3, 4])
@pytest.mark.parametrize("var", [1.0, 0.7])
def test_dynamic_spinodal_numeric_equals_closed_form(p, var):
    c = cubic_gaussian(p)
    M, mu, v, delta = c["symbols"]
    exact = float(c["delta_dyn"].subs(v, var))
    got = meanfield.threshold("tensor", dict(order=p, var=var), kind="dynamic")
    assert got["value"] == pytest.approx(exact, rel=1e-6)


@pytest.mark.parametrize("p", [3, 4])
def test_hard_region_closes_at_the_tricritical_mean(p):
    c = cubic_gaussian(p)
    M, mu, v, delta = c["symbols"]
    mu_c = float(c["mu_c"].subs(v, 1))
    d_c = float(c["delta_c"].subs(v, 1))
    below = {
        k: meanfield.threshold("tensor", dict(order=p, mean=mu_c * 0.995), kind=k)["value"]
        for k in ("algorithmic", "dynamic")
    }
    # the window shrinks onto (mu_c, delta_c)
    assert below["algorithmic"] < below["dynamic"]
    assert abs(below["algorithmic"] - d_c) < 0.02 * d_c
    assert abs(below["dynamic"] - d_c) < 0.02 * d_c
    above = meanfield.threshold("tensor", dict(order=p, mean=mu_c * 1.02), kind="dynamic")
    assert above["status"] == "no_transition"


@pytest.mark.parametrize("p,mean,d", [(3, 0.2, 0.15), (4, 0.1, 0.1), (3, 0.0, 0.2)])
def test_fixed_points_lie_on_the_closed_form_branch(p, mean, d):
    c = cubic_gaussian(p)
    M, mu, v, delta = c["symbols"]
    out = meanfield.solve("tensor", dict(order=p, mean=mean, delta=d, init="informed"))
    m = out["overlap"][0]
    assert float(c["branch"].subs({M: m, mu: mean, v: 1})) == pytest.approx(d, rel=1e-8)


def test_every_fixed_point_in_the_window_lies_on_the_branch():
    """Inside the hard window (p = 3, N(0.2, 1), Delta = 0.2) there are three fixed
    points: stable low, unstable middle, stable high; all on Delta = g(M)."""
    from meanfield import get_model
    from meanfield.solvers.fixed_point import all_fixed_points

    c = cubic_gaussian(3)
    M, mu, v, delta = c["symbols"]
    fps = all_fixed_points(get_model("tensor")(order=3, mean=0.2, delta=0.2))
    assert [f["stable"] for f in fps] == [True, False, True]
    for f in fps:
        m = f["state"][0]
        assert float(c["branch"].subs({M: m, mu: 0.2, v: 1})) == pytest.approx(0.2, rel=1e-8)
