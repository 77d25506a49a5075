"""Spiking (Boerlin-Machens-Deneve) predictive-coding network: error scaling and mapping.

``sims.engines.spiking`` with ``Gamma = 2 w / b`` (digest §5). With ``b = N / 4`` the
coding error must fall as ``1/N`` (superclassical; fitted exponent over N = 100 .. 800
within 4 standard errors plus 0.08 of -1, and not -1/2); at fixed ``b`` it must not fall
as ``N^-1/2`` (the error is held inside ``+-|Gamma|/2``, independent of ``N``). Binary
weights (``w = +-1``: all thresholds equal, as in Boerlin et al.'s homogeneous
networks); with Gaussian ``w`` the neurons with ``|w| ~ 0`` have tiny thresholds and the
one-spike-per-step limit ``1/dt`` binds (measured).
"""

import numpy as np
import pytest

import meanfield
from meanfield import ParamError
from meanfield.scaling import fit_exponent

BASE = dict(engine="spiking", weights="binary", sigma=0.2)


def sim(**p):
    kw = {k: p.pop(k) for k in ("t_max", "t_burn", "trials", "dt") if k in p}
    kw.setdefault("t_max", 4.0)
    kw.setdefault("t_burn", 1.0)
    trials = kw.pop("trials", 4)
    return meanfield.simulate("predictive_coding", dict(BASE, **p), trials=trials, seed=2, **kw)


def scaling(b_of_n, sizes=(100, 200, 400, 800)):
    e, s = [], []
    for n in sizes:
        r = sim(n=n, b=b_of_n(n))
        assert r["status"] == "ok"
        e.append(r["error"])
        s.append(r["error_sem"])
    return fit_exponent(list(sizes), e, s), e


def test_spiking_error_scales_as_one_over_n():
    fit, e = scaling(lambda n: n / 4)
    assert abs(fit.exponent + 1.0) <= 4 * fit.stderr + 0.08, fit
    assert not fit.contains(-0.5, 4), fit


def test_spiking_error_fixed_b_does_not_average_down():
    fit, e = scaling(lambda n: 40.0, sizes=(100, 400))
    assert fit.exponent > -0.25, (fit, e)
    # held inside the threshold band: |x - xhat| <~ |Gamma| / 2 = 1 / b (plus noise)
    assert max(e) < 1.5 / 40.0


def test_spiking_error_bounded_by_gamma():
    """sigma -> 0: the readout error stays within the band |Gamma|/2 = 1/b (uniform-like)."""
    r = sim(n=200, b=50, sigma=0.0)
    assert r["std"] < 1 / 50 and r["bias"] < 1 / 50


def test_delay_and_all_rule_ping_pong():
    """Delays with all-suprathreshold firing make the ping-pong (digest pitfall 11): the
    'all' rule's error and rate blow up far beyond the one-spike rule's."""
    one = sim(n=200, b=50, d=0.01, t_max=3.0)
    al = sim(n=200, b=50, d=0.01, rule="all", t_max=3.0)
    assert al["error"] > 5 * one["error"] and al["rate"] > 10 * one["rate"]


def test_spiking_refusals():
    with pytest.raises(ParamError, match="^g must be 0"):
        sim(n=50, b=10, g=0.5)
    with pytest.raises(ParamError, match="^backend must be one of cpu, cuda"):
        _cuda_refusal()
    with pytest.raises(ParamError, match="^dt must be a divisor"):
        sim(n=50, b=10, d=0.01, dt=0.003)


def _cuda_refusal():
    from meanfield.sims.engines.spiking import run_spiking_network

    m = meanfield.get_model("predictive_coding")(**BASE, n=50)
    run_spiking_network(m, 50, 1, 0, backend="tpu")


def test_spiking_raster_and_trace_recorded():
    from meanfield.sims.engines.spiking import run_spiking_network

    m = meanfield.get_model("predictive_coding")(**BASE, n=60, b=20)
    r = run_spiking_network(m, 60, 1, 0, t_max=1.0, t_burn=0.0, record=500)
    assert r["raster"].shape == (500, 60) and r["trace"].shape == (500,)
    assert r["raster"].sum() > 0
    # xhat jumps by Gamma_i exactly when neuron i fires (one spike per step)
    k = np.nonzero(r["raster"].sum(axis=1))[0][5]
    i = int(np.nonzero(r["raster"][k])[0][0])
    jump = r["trace"][k] - r["trace"][k - 1] * np.exp(-r["dt"])
    assert jump == pytest.approx(r["gamma"][i], rel=1e-9)


def test_mutation_wrong_gamma_breaks_band(monkeypatch):
    """Mutation: a decoder three times too coarse (Gamma = 6 w / b) must leave the band."""
    from meanfield.sims.engines import spiking

    orig = spiking.run_spiking_network

    def doubled(model, *a, **k):
        return orig(model.replace(b=model["b"] / 3), *a, **k)

    monkeypatch.setattr(spiking, "run_spiking_network", doubled)
    r = sim(n=200, b=50, sigma=0.0)
    assert not (r["std"] < 1 / 50 and r["bias"] < 1 / 50)
