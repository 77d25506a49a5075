"""Reference values for the tensor model from closed forms and the literature.

Sources:
* BBP / rectangular spiked matrix (Baik, Ben Arous & Péché 2005; Lesieur,
  Krzakala & Zdeborová, J. Stat. Mech. 2017, 073403): Gaussian prior, order 2,
  M_1 = (n_1 n_2 - Delta^2) / (n_1 (n_2 + Delta)) below Delta = sqrt(n_1 n_2).
* Zero-mean Gaussian, cubic, order p (Lesieur et al., ISIT 2017, arXiv:1701.08010,
  whose symmetric state evolution the cubic non-symmetric one equals;
  closed form re-derived in shared/papers/tensor.md §3):
  Delta_dyn = (p-2)^(p-2) / (p-1)^(p-1).
* Tricritical mean for N(mu, 1), cubic order 3 (tensor.md §3):
  mu_c = 1/(2 sqrt 2), Delta_c = 27/64; above mu_c no hard phase.
* Threshold table of tensor.md §4, Gaussian rows (exact to about 1e-4 there).
"""

import numpy as np
import pytest

import meanfield

pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.mark.parametrize("n1,n2,delta", [(1, 1, 0.5), (2, 0.5, 0.3), (0.5, 3.0, 1.0)])
def test_order2_gaussian_closed_form(n1, n2, delta):
    out = meanfield.solve("tensor", dict(order=2, shape=f"{n1},{n2}", delta=delta))
    m1 = (n1 * n2 - delta**2) / (n1 * (n2 + delta))
    m2 = (n1 * n2 - delta**2) / (n2 * (n1 + delta))
    np.testing.assert_allclose(out["overlap"], [m1, m2], atol=1e-9)


@pytest.mark.parametrize("prior", ["gaussian", "rademacher", "sparse_rademacher"])
@pytest.mark.parametrize("shape", ["1,1", "2,0.5", "0.5,4"])
def test_order2_bbp_threshold_numeric(prior, shape):
    n1, n2 = map(float, shape.split(","))
    for kind in ("algorithmic", "dynamic", "information"):
        out = meanfield.threshold("tensor", dict(order=2, prior=prior, shape=shape), kind=kind)
        assert out["status"] == "ok"
        assert out["value"] == pytest.approx(np.sqrt(n1 * n2), rel=1e-7)


def test_rademacher_order2_values():
    """Rademacher, order 2, square: M = 0.6184 at Delta = 0.5 (tensor.md §7.1)."""
    out = meanfield.solve("tensor", dict(order=2, prior="rademacher", delta=0.5))
    assert out["overlap"][0] == pytest.approx(0.6184, abs=1e-4)


@pytest.mark.parametrize("p", [3, 4])
def test_zero_mean_gaussian_dynamic_spinodal(p):
    out = meanfield.threshold("tensor", dict(order=p), kind="dynamic")
    assert out["value"] == pytest.approx((p - 2) ** (p - 2) / (p - 1) ** (p - 1), rel=1e-6)
    alg = meanfield.threshold("tensor", dict(order=p), kind="algorithmic")
    assert alg["status"] == "ok" and alg["value"] == 0.0


@pytest.mark.parametrize(
    "mean,alg,it,dyn",
    [(0.1, 0.0396, 0.2399, 0.2602), (0.25, 0.2331, 0.3077, 0.3215), (0.3, 0.3234, 0.3523, 0.3604)],
)
def test_order3_gaussian_threshold_table(mean, alg, it, dyn):
    base = dict(order=3, prior="gaussian", mean=mean)
    got = {
        k: meanfield.threshold("tensor", base, kind=k)["value"]
        for k in ("algorithmic", "information", "dynamic")
    }
    assert got["algorithmic"] == pytest.approx(alg, abs=1.5e-4)
    assert got["information"] == pytest.approx(it, abs=1.5e-4)
    assert got["dynamic"] == pytest.approx(dyn, abs=1.5e-4)
    assert got["algorithmic"] < got["information"] < got["dynamic"]


def test_tricritical_point_order3():
    mu_c = 1 / (2 * np.sqrt(2))
    below = meanfield.threshold("tensor", dict(order=3, mean=mu_c - 0.01), kind="dynamic")
    above = meanfield.threshold("tensor", dict(order=3, mean=mu_c + 0.01), kind="dynamic")
    assert below["status"] == "ok" and abs(below["value"] - 27 / 64) < 0.02
    assert above["status"] == "no_transition"


def test_order3_gaussian_mse_table():
    """MSE of SE from the random start, N(0.2, 1), cubic p = 3 (tensor.md §4)."""
    for delta, mse in [(0.05, 0.0484), (0.1, 0.1021), (0.15, 0.1633), (0.2, 0.9852)]:
        out = meanfield.solve("tensor", dict(order=3, mean=0.2, delta=delta))
        assert out["mse"][0] == pytest.approx(mse, abs=1e-4)


@pytest.mark.parametrize(
    "params,alg,it,dyn,tol",
    [
        # tensor.md §4: Gaussian rows exact to ~1e-4, discrete/sparse to ~1e-3
        (dict(order=4, prior="rademacher"), 0.0, 0.1903, 0.2301, 1.5e-3),
        (dict(order=3, prior="rademacher", mean=0.1), 0.0388, 0.2866, 0.3121, 1.5e-3),
        (dict(order=3, prior="rademacher", mean=0.3), 0.2722, 0.3239, 0.3357, 1.5e-3),
        (dict(order=3, prior="gauss_bernoulli", rho=0.5), 0.0, 0.0325, 0.0358, 1.5e-3),
        (dict(order=3, prior="gaussian", mean="0,0.2,0.2"), 0.1010, 0.2592, 0.2780, 1.5e-4),
        (dict(order=3, prior="gaussian", mean="0,0,0.5"), 0.2460, 0.3291, 0.3424, 1.5e-4),
    ],
)
def test_threshold_table_more_rows(params, alg, it, dyn, tol):
    got = {
        k: meanfield.threshold("tensor", params, kind=k)["value"]
        for k in ("algorithmic", "information", "dynamic")
    }
    assert got["algorithmic"] == pytest.approx(alg, abs=tol)
    assert got["information"] == pytest.approx(it, abs=tol)
    assert got["dynamic"] == pytest.approx(dyn, abs=tol)


def test_one_zero_mean_mode_keeps_the_easy_phase():
    """k = 1 zero-mean mode (Kadmon & Ganguli 2018, §1): the easy phase survives
    when the other modes have non-zero mean; k = 3 removes it (Delta_alg = 0)."""
    one = meanfield.threshold("tensor", dict(order=3, mean="0,0.2,0.2"), kind="algorithmic")
    three = meanfield.threshold("tensor", dict(order=3, mean="0,0,0"), kind="algorithmic")
    assert one["value"] > 0.05
    assert three["value"] == 0.0


@pytest.mark.parametrize("family", ["prod", "sum"])
def test_cubic_shape_maximises_the_hard_region(family):
    """Kadmon & Ganguli 2018, abstract/§1: over tensor shapes, the hard region is
    widest (here: largest Delta_IT / Delta_alg, a normalisation-free measure,
    tensor.md §9.1) for cubic tensors. Families from tensor.md §4, N(0.2, 1)."""
    if family == "prod":
        shapes = [(a, a, 1 / a**2) for a in (0.5, 0.7, 1.0, 1.5, 2.0)]
    else:
        shapes = [(a, a, 3 - 2 * a) for a in (0.6, 0.8, 1.0, 1.2, 1.4)]
    ratios = []
    for n in shapes:
        base = dict(order=3, mean=0.2, shape=",".join(map(str, n)))
        alg = meanfield.threshold("tensor", base, kind="algorithmic")["value"]
        it = meanfield.threshold("tensor", base, kind="information")["value"]
        ratios.append(it / alg)
    assert int(np.argmax(ratios)) == 2, ratios
