"""Property tests: mean-field bias, std and error against the rate network (hypothesis).

Points are drawn inside the theory's domain (digest §2): noise-driven, below the chaos
boundary (``g <= 0.6``, criterion < 1), below the Hopf point (``b kappa <= 0.7
K_c(d)``), input away from saturation (``|x| <= 0.5``). At each point the network runs
at two sizes (independent networks per trial, stationary start), and

* every observable agrees with the theory within ``4`` standard errors plus a
  finite-size allowance of ``4 %`` of the theory (the theory is ``N -> inf``: the
  self-coupling ``-(b/N) w_i^2 phi_i`` and the sampled weights' moments shift the bias
  and std at ``O(b/N)`` and ``O(N^-1/2)``; measured here, 1-5 % at N = 400);
* the check is powered: ``4 sem`` is at most ``25 %`` of the prediction (the relative
  precision resolved, asserted per observable), otherwise the test fails as underpowered;
* finite-size trend: the deviation from the theory does not grow with ``N``
  (``|dev(N2)| <= |dev(N1)| + 3 sqrt(se1^2 + se2^2)``), and ``std sqrt(N)`` is the
  same at both sizes within its errors plus the allowance (classical averaging).

Default run (time budget): one reference point with a delay at ``g = 0`` (N = 300 / 1200,
6 trials of ``200 / (1 + 0.8 b)`` time units) and the mutation check. ``slow``: the
``b = 10`` reference point, one disorder point (``g = 0.5``, N = 200 / 600), hypothesis
over ``b, sigma, x, d`` at ``g = 0`` (N = 300 / 1200) and over ``b, sigma, g in (0, 0.6],
x, d`` at N = 400 / 1600 (a dense matrix-vector product per trial per step). The
nightly profile draws 60 points instead of 6.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import meanfield

PC = meanfield.get_model("predictive_coding")
N_SE = 4.0
ALLOW = 0.04
PRECISION = 0.25
KEYS = ("bias", "std", "error")

point = st.fixed_dictionaries({
    "b": st.floats(1.0, 30.0),
    "sigma": st.floats(0.3, 1.0),
    "x": st.floats(-0.5, 0.5).filter(lambda v: abs(v) >= 0.05),
    "d": st.one_of(st.just(0.0), st.floats(0.02, 0.2)),
})


def _theory(p: dict) -> dict | None:
    r = PC(**p).solve()
    v = r.values
    if r.status != "ok" or v.get("chaotic"):
        return None
    if p["d"] > 0 and v["loop_gain"] > 0.7 * v["hopf_gain"]:
        return None
    return v


def run_length(p: dict, scale: float = 1.0) -> float:
    """Simulated time per trial: the std's relative sampling error is ``~ sqrt(tau_c / T)``
    with ``tau_c ~ 1 / (1 + b kappa)`` (digest pitfall 7), and ``dt ~ 1 / (1 + b)``, so
    ``T = 200 / (1 + 0.8 b)`` keeps both the precision and the step count (~4000) fixed."""
    return scale * max(8.0, 200.0 / (1.0 + 0.8 * p["b"]))


def check_point(p: dict, sizes: tuple[int, int], trials: int = 6, scale: float = 1.0,
                seed: int = 0) -> dict:
    """Simulate ``p`` at both sizes and assert agreement, power and the finite-size trend."""
    devs = {}
    t_max = run_length(p, scale)
    for n in sizes:
        th = _theory(dict(p, n=n))
        assume(th is not None)
        sim = meanfield.simulate("predictive_coding", dict(p, n=n), trials=trials, seed=seed,
                                 t_max=t_max, t_burn=3.0)
        assert sim["status"] == "ok", sim
        for k in KEYS:
            band = N_SE * sim[k + "_sem"] / th[k]
            assert band <= PRECISION, f"underpowered: {k} band {band:.1%} at {p}, N={n}"
            dev = sim[k] - th[k]
            assert abs(dev) <= N_SE * sim[k + "_sem"] + ALLOW * th[k], (k, n, p, th[k], sim)
            devs[(k, n)] = (dev / th[k], sim[k + "_sem"] / th[k], sim[k], sim[k + "_sem"])
    n1, n2 = sizes
    for k in KEYS:
        d1, s1 = devs[(k, n1)][:2]
        d2, s2 = devs[(k, n2)][:2]
        assert abs(d2) <= abs(d1) + 3 * np.hypot(s1, s2), ("deviation grows with N", k, p, devs)
    # classical averaging of the fluctuations at fixed b: std sqrt(N) constant
    a1 = devs[("std", n1)][2] * np.sqrt(n1)
    a2 = devs[("std", n2)][2] * np.sqrt(n2)
    e12 = np.hypot(devs[("std", n1)][3] * np.sqrt(n1), devs[("std", n2)][3] * np.sqrt(n2))
    assert abs(a1 - a2) <= N_SE * e12 + ALLOW * a1, ("std sqrt(N) not constant", p, a1, a2)
    return devs


@pytest.mark.parametrize("p", [pytest.param(dict(b=10.0, sigma=0.75, x=0.2, d=0.0),
                                            marks=pytest.mark.slow),
                               dict(b=5.0, sigma=0.75, x=-0.3, d=0.1)])
def test_noise_and_delay_theory_vs_sim(p):
    check_point(dict(p, g=0.0), (300, 1200))


@pytest.mark.slow
@given(p=point)
def test_noise_and_delay_theory_vs_sim_hypothesis(p):
    check_point(dict(p, g=0.0), (300, 1200))


disordered = st.fixed_dictionaries({
    "b": st.floats(1.0, 20.0),
    "sigma": st.floats(0.4, 1.0),
    "g": st.floats(0.05, 0.6),
    "x": st.floats(-0.4, 0.4).filter(lambda v: abs(v) >= 0.05),
    "d": st.one_of(st.just(0.0), st.floats(0.05, 0.2)),
})


@pytest.mark.slow
def test_disorder_theory_vs_sim():
    check_point(dict(b=5.0, sigma=0.75, g=0.5, x=0.2, d=0.0), (200, 600), trials=6)


@pytest.mark.slow
@given(p=disordered)
def test_disorder_theory_vs_sim_hypothesis(p):
    check_point(p, (400, 1600), scale=1.5)


def test_property_check_detects_wrong_kappa(monkeypatch):
    """Mutation: kappa without phi' (E[w^2 phi]) must fail the property check."""
    from meanfield.models import predictive_coding as pcm
    from meanfield.solvers import dmft

    monkeypatch.setattr(pcm.PredictiveCoding, "kappa",
                        lambda self, y, d0: dmft.expect(self.phi.f, y, d0, self.law, power=2))
    with pytest.raises(AssertionError):
        check_point(dict(b=10.0, sigma=0.75, x=0.2, d=0.0, g=0.0), (300, 1200))
