"""Coverage of documented tensor behaviour against independent values (issue 8, item 4).

* ``free_energy``: the order-2 Gaussian replica-symmetric free entropy in
  closed form (tensor.md §3, Gaussian psi), at the closed-form fixed point
  (BBP / rectangular spiked matrix, §7.1).
* ``branch``: informative / uninformative / unique against the thresholds.
* Hungarian matching (``amp_rank.match_components``) against planted
  columns permuted and sign-flipped by hand.
"""

from __future__ import annotations

import numpy as np
import pytest
from meanfield.sims.engines.amp_rank import match_components

import meanfield


def _psi_gauss(lam, mu=0.0, v=1.0):
    """tensor.md §3: the Gaussian prior's psi(lam), rho = mu^2 + v."""
    rho = mu**2 + v
    return -0.5 * np.log1p(lam * v) + (v * lam**2 * rho + v * lam + lam * mu**2) / (
        2 * (1 + lam * v)
    )


@pytest.mark.parametrize("n1,n2,delta", [(1.0, 1.0, 0.5), (2.0, 0.5, 0.3), (0.5, 3.0, 1.0)])
def test_order2_gaussian_free_energy_closed_form(n1, n2, delta):
    out = meanfield.solve("tensor", dict(order=2, shape=f"{n1},{n2}", delta=delta))
    m1 = (n1 * n2 - delta**2) / (n1 * (n2 + delta))
    m2 = (n1 * n2 - delta**2) / (n2 * (n1 + delta))
    lam1, lam2 = n2 * m2 / delta, n1 * m1 / delta
    phi = n1 * _psi_gauss(lam1) + n2 * _psi_gauss(lam2) - n1 * m1 * n2 * m2 / (2 * delta)
    assert out["free_energy"] == pytest.approx(phi, rel=1e-9, abs=1e-12)
    assert out["branch"] == "unique"


def test_order2_gaussian_free_energy_above_bbp_is_the_trivial_one():
    """Above Delta = sqrt(n1 n2): M = 0, Phi = n1 psi(0) + n2 psi(0) = 0."""
    out = meanfield.solve("tensor", dict(order=2, delta=1.5))
    assert out["overlap"] == pytest.approx([0.0, 0.0], abs=1e-9)
    assert out["free_energy"] == pytest.approx(0.0, abs=1e-9)


def test_order3_branches_against_thresholds():
    """N(0.2, 1), cubic p = 3: below Delta_alg one fixed point (unique); between
    Delta_alg and Delta_dyn the random and informed starts reach different
    branches, and Phi(informative) > Phi(uninformative) exactly below Delta_IT."""
    base = dict(order=3, mean=0.2)
    th = {k: meanfield.threshold("tensor", base, kind=k)["value"]
          for k in ("algorithmic", "information", "dynamic")}
    low = meanfield.solve("tensor", dict(base, delta=0.5 * th["algorithmic"]))
    assert low["branch"] == "unique"
    for delta, informative_wins in [
        (0.5 * (th["algorithmic"] + th["information"]), True),
        (0.5 * (th["information"] + th["dynamic"]), False),
    ]:
        r = meanfield.solve("tensor", dict(base, delta=delta, init="random"))
        i = meanfield.solve("tensor", dict(base, delta=delta, init="informed"))
        assert r["branch"] == "uninformative" and i["branch"] == "informative"
        assert i["overlap"][0] > r["overlap"][0] + 0.1
        assert (i["free_energy"] > r["free_energy"]) == informative_wins, (delta, r, i)
    high = meanfield.solve("tensor", dict(base, delta=1.5 * th["dynamic"]))
    assert high["branch"] == "unique"


@pytest.mark.parametrize("r", [2, 3])
def test_hungarian_matching_recovers_permutation_and_signs(r):
    """Estimated columns = planted columns permuted (``perm``) and sign-flipped on
    pairs of zero-mean modes; ``match_components`` must undo both."""
    rng = np.random.default_rng(r)
    T, p = 5, 3
    zero_mean = np.array([True, True, False])
    true = np.diag(rng.uniform(0.5, 0.9, r))  # (r, r): diagonal true overlaps
    raw = np.empty((T, p, r, r))
    perms = []
    for t in range(T):
        perm = rng.permutation(r)
        perms.append(perm)
        flip = rng.integers(0, 2, r) * 2 - 1  # per component: flip modes 0 and 1 together
        for a in range(p):
            o = true + 0.02 * rng.standard_normal((r, r))  # small cross-overlaps
            s = flip if a < 2 else np.ones(r)
            o = o * s[None, :]
            raw[t, a] = np.empty_like(o)
            raw[t, a][perm, :] = o  # estimated column perm[s] carries true column s
    got, signs = match_components(raw, zero_mean)
    np.testing.assert_array_equal(got, np.array(perms))
    for t in range(T):
        for s in range(r):
            diag = raw[t, :, got[t, s], s] * signs[t, :, s]
            assert np.all(diag > 0), (t, s, diag)
