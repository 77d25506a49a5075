"""Predictive-coding rate network against the mean-field theory.

Precision resolved: bias and std within 4 standard errors plus 4 % of the
theory (the theory is N -> inf; self-coupling and frozen weight-sampling
corrections are O(1/N) and O(1/sqrt(N)) / (1 + b kappa)); exponents within
4 standard errors of -1 and -1/2. Mutation checks: each deliberate breakage
must make the corresponding check fail.
"""

import pytest
from meanfield.sims.engines import network

import meanfield
from meanfield import ParamError
from meanfield.scaling import fit_exponent

PC = meanfield.get_model("predictive_coding")


def agrees(p, trials=4, t_max=30.0, seed=0, n_se=4.0, rel=0.04):
    th = PC(**p).solve().values
    sim = meanfield.simulate("predictive_coding", p, trials=trials, seed=seed, t_max=t_max)
    if sim["status"] != "ok":
        return False, th, sim
    ok = all(
        abs(sim[k] - th[k]) <= n_se * sim[k + "_sem"] + rel * th[k] for k in ("bias", "std")
    )
    return ok, th, sim


@pytest.mark.parametrize("n", [350, 700, 1400])
def test_noise_theory_vs_sim_sizes(n):
    ok, th, sim = agrees(dict(b=10, n=n))
    assert ok, (th, sim)


@pytest.mark.parametrize("p", [dict(b=3, sigma=0.5, x=0.4, n=700),
                               dict(b=5, d=0.1, n=700), dict(b=10, x=-0.3, n=700),
                               dict(b=8, weights="binary", n=700)])
def test_theory_vs_sim_points(p):
    ok, th, sim = agrees(p, t_max=40.0)
    assert ok, (th, sim)


def test_error_exponents_superclassical_and_classical():
    """b = N/14: RMSE ~ 1/N; fixed b = 10: std ~ N^-1/2 (N = 200 .. 1600)."""
    sizes = [200, 400, 800, 1600]
    e, es, s, ss = [], [], [], []
    for n in sizes:
        r = meanfield.simulate("predictive_coding", dict(b=n / 14, n=n), trials=4, t_max=4.0,
                               t_burn=1.0)
        e.append(r["error"])
        es.append(r["error_sem"])
        r = meanfield.simulate("predictive_coding", dict(b=10, n=n), trials=4, t_max=15.0)
        s.append(r["std"])
        ss.append(r["std_sem"])
    sup = fit_exponent(sizes, e, es)
    cla = fit_exponent(sizes, s, ss)
    assert abs(sup.exponent + 1.0) < max(4 * sup.stderr, 0.06), sup
    assert abs(cla.exponent + 0.5) < max(4 * cla.stderr, 0.04), cla
    assert not sup.contains(-0.5, 4) and not cla.contains(-1.0, 4)


def delay_check(n=700):
    m = PC(d=0.1, n=n)
    bc = m.threshold("b", "delay").value
    lo = meanfield.simulate("predictive_coding", dict(d=0.1, n=n, b=0.9 * bc), trials=2,
                            t_max=15.0)
    hi = meanfield.simulate("predictive_coding", dict(d=0.1, n=n, b=1.1 * bc), trials=2,
                            t_max=15.0)
    return lo["std"] < 0.05 and hi["std"] > 0.1, lo, hi


def test_delay_threshold_stable_below_oscillating_above():
    ok, lo, hi = delay_check()
    assert ok, (lo["std"], hi["std"])


def chaos_check():
    """x = 0, sigma = 0, random start: activity decays for g = 0.8, persists for g = 1.3."""
    out = {}
    for g in (0.8, 1.3):
        r = meanfield.simulate("predictive_coding", dict(b=1, sigma=0.0, g=g, x=0.0, n=300),
                               trials=2, t_max=10.0, t_burn=60.0, init="random")
        out[g] = r["std"]
    return out[0.8] < 1e-6 and out[1.3] > 3e-4, out


def test_chaos_onset_at_g1():
    assert PC(x=0.0).threshold("g", "chaos").value == pytest.approx(1.0, abs=1e-8)
    ok, out = chaos_check()
    assert ok, out


def test_step_size_refused():
    with pytest.raises(ParamError, match="^dt must be at most"):
        meanfield.simulate("predictive_coding", dict(b=100, n=50), trials=1, dt=0.01)
    with pytest.raises(ParamError, match="^dt must be a divisor"):
        meanfield.simulate("predictive_coding", dict(b=1, d=0.1, n=50), trials=1, dt=0.003)
    with pytest.raises(ParamError, match="^size must be equal to n"):
        meanfield.simulate("predictive_coding", dict(n=50), size=60, trials=1)


def test_seeded_and_shared_network():
    a = meanfield.simulate("predictive_coding", dict(g=0.5, n=100), trials=2, seed=3, t_max=2.0)
    b = meanfield.simulate("predictive_coding", dict(g=0.5, n=100), trials=2, seed=3, t_max=2.0)
    assert a["std"] == b["std"]
    c = meanfield.simulate("predictive_coding", dict(g=0.5, n=100), trials=2, seed=3, t_max=2.0,
                           network="shared")
    assert c["status"] == "ok"


# -- mutation checks -------------------------------------------------------------------

def test_mutation_balance_sign_flipped(monkeypatch):
    def flipped(expr):
        import sympy as sp

        from meanfield import _codegen
        from meanfield.solvers.dmft import H

        h, w, e, r, xi, dt, b, g, sq = sp.symbols("h w e r xi dt b g sq", real=True)
        hn = h + dt * (-h - b * w * e + g * r) + sq * xi
        return _codegen.scalar_function((hn, expr.subs(H, hn)), (h, w, e, r, xi, dt, b, g, sq),
                                        name="pc_step_flipped")

    monkeypatch.setattr(network, "update_body", flipped)
    ok, th, sim = agrees(dict(b=10, n=350), t_max=10.0)
    assert not ok


def test_mutation_delay_ignored(monkeypatch):
    orig = network.choose_dt

    def no_delay(model, dt):
        step, _ = orig(model, dt)
        return step, 0

    monkeypatch.setattr(network, "choose_dt", no_delay)
    ok, lo, hi = delay_check(n=350)
    assert not ok


def test_mutation_missing_phi_prime(monkeypatch):
    from meanfield.models import predictive_coding as pcm
    from meanfield.solvers import dmft

    def kappa_without_phi_prime(self, y, delta0):
        return dmft.expect(self.phi.f, y, delta0, self.law, power=2)

    monkeypatch.setattr(pcm.PredictiveCoding, "kappa", kappa_without_phi_prime)
    ok, th, sim = agrees(dict(b=10, n=350), t_max=10.0)
    assert not ok
