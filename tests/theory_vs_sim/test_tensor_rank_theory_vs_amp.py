"""Rank-r state evolution against rank-r AMP (Kadmon & Ganguli 2018; Lesieur et al. 2017).

The theory is ``Tensor(..., rank=2).solve()``: per mode the ``r x r`` overlap
matrix (the state is its upper triangle). AMP overlaps are matched to the
planted components (Hungarian assignment on the summed ``|overlap|``, then the
sign gauge of pairs of zero-mean modes) before they are compared.

Asserted, as for rank one (``test_tensor_theory_vs_amp.py``, issue 8): every
matched diagonal overlap agrees with the SE through
:func:`tolerances.assert_powered` (pass band ``N_SIGMA`` control-variate
standard errors plus the stated bias allowance, at most 3% of M; the old
1/N-extrapolated band was 32-45% of M at order 3); the matched off-diagonal
overlaps agree with the SE's off-diagonal within ``N_SIGMA`` standard errors
plus an absolute ``OFF_ALLOW`` (they are O(N^{-1/2}) noise around 0 or
E[x]^2, so no relative power is defined for them). Controls: each mode's
and component's empirical second moment and mean of the planted factors.

Starts: zero-mean priors start at the planted signal (``informed``; at p = 2
below BBP the informative fixed point is the only stable one, at p >= 3 there
is no easy phase, and noise stays at 0.3-0.5 of the dynamic spinodal so that
finite-N trials do not escape the metastable branch); a non-zero-mean
Gaussian starts at random.

Order 2 avoids the zero-mean Gaussian prior: ``X^1 X^{2T}`` and an isotropic
Gaussian prior are invariant under ``X^a -> X^a R`` for every rotation ``R``,
so the columns are identifiable only up to a rotation and matched diagonal
overlaps are not the SE's (at p >= 3, and for non-Gaussian or
non-zero-mean priors, only permutations and signs remain).
"""

import numpy as np
import pytest
from hypothesis import Phase, example, given, settings
from hypothesis import strategies as st
from meanfield.sims import simulate
from meanfield.sims.engines.amp import sample_instance
from meanfield.sims.engines.amp_rank import run_amp_rank
from tolerances import PowerError, assert_powered, control_variate_mean

import meanfield
from meanfield import get_model

N_SIGMA = 3.0
PRECISION = 0.03
BIAS = {2: 0.002, 3: 0.007}
OFF_ALLOW = 0.01
# a failing example costs minutes of AMP per shrink step: report it unshrunk
NO_SHRINK = (Phase.explicit, Phase.reuse, Phase.generate)


def _overlap_estimates(params, n, trials, seed):
    """Matched overlap matrices (p, r, r): control-variate means and SEMs."""
    model = get_model("tensor")(**params)
    inst = sample_instance(model, n, trials, seed)
    res = run_amp_rank(model, n, instance=inst, max_iter=2000)
    keep = res.converged
    assert keep.mean() >= 0.9, (n, res.iterations)
    cols = []
    for pr, x in zip(model.modes, inst.signals, strict=True):  # x: (T, N_a, r)
        cols += [(x**2).mean(axis=1) - pr.second_moment, x.mean(axis=1) - pr.mean]
    c = np.concatenate(cols, axis=1)[keep]
    o = res.overlap[keep]
    T, p, r, _ = o.shape
    est = np.array([control_variate_mean(v, c) for v in o.reshape(T, -1).T])
    return est[:, 0].reshape(p, r, r), est[:, 1].reshape(p, r, r)


def _check(params, n, trials, seed):
    p = params["order"]
    theory = meanfield.solve("tensor", params)
    assert theory["status"] == "ok"
    M = np.array(theory["overlap"])  # (p, r, r)
    mean, sem = _overlap_estimates(params, n, trials, seed)
    r = M.shape[-1]
    diag = np.eye(r, dtype=bool)
    # an underpowered draw gets more batches of trials (fresh seeds, inverse-variance
    # pooled), up to three in all, before the PowerError stands
    for k in range(1, 4):
        try:
            band = assert_powered(M[:, diag], mean[:, diag], sem[:, diag], n_sigma=N_SIGMA,
                                  precision=PRECISION, bias=BIAS[p],
                                  what=f"rank diag {params} N={n} x{k}")
            break
        except PowerError:
            if k == 3:
                raise
            m2, s2 = _overlap_estimates(params, n, trials, seed + 1000 * k)
            w1, w2 = 1.0 / sem**2, 1.0 / s2**2
            mean = (w1 * mean + w2 * m2) / (w1 + w2)
            sem = 1.0 / np.sqrt(w1 + w2)
    off = ~diag
    z = (np.abs(mean[:, off] - M[:, off]) - OFF_ALLOW) / sem[:, off]
    assert np.all(z <= N_SIGMA), (mean, sem, M)
    return band


ORDER2 = {
    "rademacher-informed": dict(prior="rademacher", init="informed", delta=0.3),
    "gauss_bernoulli-informed": dict(prior="gauss_bernoulli", rho=0.5, init="informed",
                                     delta=0.08),
    "gaussian_mean-random": dict(prior="gaussian", mean=0.5, init="random", delta=0.3),
}


def test_order2_rank2_powered():
    """The non-zero-mean Gaussian from the random start (default run)."""
    _check(dict(order=2, rank=2, **ORDER2["gaussian_mean-random"]), 600, 24, seed=3)


@pytest.mark.slow
@pytest.mark.parametrize("case", list(ORDER2), ids=list(ORDER2))
def test_order2_rank2_powered_every_prior(case):
    """Slow: the discrete priors converge slowly at N = 600 (1065 s and 879 s
    on the loaded shared cores); Gauss-Bernoulli at 24 trials measured a 4.25%
    band (hence 40 trials here; not re-measured)."""
    _check(dict(order=2, rank=2, **ORDER2[case]), 600, 40, seed=3)


_CASES2 = list(ORDER2.values())


@pytest.mark.slow
@settings(phases=NO_SHRINK)
@given(case=st.sampled_from(_CASES2), frac=st.floats(0.3, 0.5), seed=st.integers(0, 1000))
@example(case=_CASES2[0], frac=0.4, seed=1)
@example(case=_CASES2[1], frac=0.4, seed=2)
@example(case=_CASES2[2], frac=0.4, seed=3)
def test_order2_rank2_property(case, frac, seed):
    base = dict(order=2, rank=2, **{k: v for k, v in case.items() if k != "delta"})
    v = [pr.var for pr in get_model("tensor")(**base).modes]
    # BBP of each component (zero means); with a mean the transition is smoothed
    # Gauss-Bernoulli's trial-to-trial spread: 24 trials resolved 3.6% (seed 2), 40 resolve 3%
    trials = 40 if case["prior"] == "gauss_bernoulli" else 24
    _check(dict(base, delta=frac * v[0] * v[1]), 1000, trials, seed)


def _spinodal(base):
    """The dynamic spinodal: with zero means the rank-r SE from the planted
    start keeps diagonal overlaps and reduces to r rank-one SEs."""
    dyn = meanfield.threshold("tensor", dict(base, rank=1), kind="dynamic")
    assert dyn["status"] == "ok"
    return dyn["value"]


def test_order3_rank2_powered():
    """Zero-mean Gaussian, planted start, 0.4 of the spinodal (N = 100).

    Not tested: random starts with a non-zero mean at p = 3. The
    non-specialised point (both estimated columns along the mean direction)
    traps them: at N = 60, mean 0.6, delta = 0.25 of the natural scale, half
    of ten trials had not converged after 2000 iterations."""
    base = dict(order=3, rank=2, prior="gaussian", init="informed")
    _check(dict(base, delta=0.4 * _spinodal(base)), 100, 24, seed=5)


@pytest.mark.slow
@pytest.mark.parametrize(
    "case,spinodal",
    [
        (dict(prior="rademacher", init="informed"), None),
        # tensor.md §4: Delta_dyn = 0.0358 for Gauss-Bernoulli rho = 0.5 at p = 3
        (dict(prior="gauss_bernoulli", rho=0.5, init="informed"), 0.0358),
        (dict(prior="gaussian", init="informed"), None),
    ],
    ids=["rademacher", "gauss_bernoulli", "gaussian"],
)
def test_order3_rank2_powered_large(case, spinodal):
    base = dict(order=3, rank=2, **case)
    spinodal = spinodal if spinodal is not None else _spinodal(base)
    _check(dict(base, delta=0.4 * spinodal), 160, 32, seed=11)


def test_simulate_routes_rank_to_the_rank_engine():
    model = get_model("tensor")(order=3, rank=2, prior="gaussian", mean=0.6, delta=0.1)
    out = simulate(model, size=20, trials=2, seed=0, max_iter=300)
    assert np.array(out["overlap"]).shape == (3, 2, 2)
    assert np.array(out["overlap_sem"]).shape == (3, 2, 2)
    assert len(out["mse"]) == 3 and len(out["mse_sem"]) == 3
    assert out["status"] in ("ok", "not_converged")
