"""State evolution against AMP simulations, with stated power (Kadmon & Ganguli 2018;
issue 8).

Every comparison goes through :func:`tolerances.assert_powered`: the pass band
``N_SIGMA`` standard errors must be at most ``PRECISION`` (3%) of the
predicted overlap, else the test fails as underpowered. The power comes from
control variates (:func:`tolerances.control_variate_mean`): a trial's overlap
and MSE fluctuate mostly with its planted signal's empirical moments
(``|x_a|^2 / N_a`` and the empirical mean of each mode, tensor.md §9.5), whose
expectations are known; regressing them out leaves an unbiased estimate of
the finite-N mean with a standard error 2-8 times smaller (measured: order 3,
N(0.6, 1), N = 150, 12 trials: 2.0% -> 0.25% of M; order 2, N(0, 1),
N = 1000, 16 trials: 1.1% -> 0.45%).

Sizes: order 2 at N = 1000, 16 trials (default) and 1000/2000 (slow, with
the finite-size trend); order 3 at N = 150, 24 trials (default; 16 left the
Rademacher case at a 3.25% band) and 200/300 (slow); order 4 only under ``slow``. Every prior,
both starts and both damping modes are drawn in the default run (the
parametrised cases); the hypothesis property test (slow) adds shapes and
noise levels, with one explicit example per prior.

Finite size: a stated relative bias allowance (``BIAS``, counted in the band)
covers the O(1/N) bias at the default sizes: measured at order 3, N = 150,
-0.5% of M for N(0.6, 1) (3.3 SE of 16 trials; allowance 0.7% at order 3) and 6e-5 for the zero-mean
Rademacher mode of the mixed case (8 SE, an SE of 7e-6).

The MSE is checked with the same estimator within ``N_SIGMA`` standard errors
(plus the bias allowance of the MSE's scale, ``BIAS * E[x^2]``) but is not
power-guarded: at these sizes its band is 10-700% of the theory MSE for
discrete and sparse priors (a rare-error statistic; MSE = E[x^2] - M carries
the same information as the overlap, which is guarded).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import Phase, example, given, settings
from hypothesis import strategies as st
from meanfield.sims import simulate
from meanfield.sims.engines.amp import run_amp, sample_instance
from tolerances import PowerError, assert_powered, control_variate_mean, pooled_mean

import meanfield
from meanfield import get_model

N_SIGMA = 3.0
PRECISION = 0.03
# finite-size lag allowed, a fraction of M: order 4 measured AMP 0.910 +- 0.003
# against SE 0.931 (2.3%) at N = 40/50, Gaussian, delta = 0.06, 32 trials per size
BIAS = {2: 0.002, 3: 0.007, 4: 0.025}
#: the precision each order's checks must resolve: order 4 at the sizes that fit
#: (N = 40/50) carries that 2.5% lag, so it resolves 4% (orders 2-3: 3%)
PRECISION_BY_ORDER = {2: PRECISION, 3: PRECISION, 4: 0.04}
# a failing example costs minutes of AMP per shrink step: report it unshrunk
NO_SHRINK = (Phase.explicit, Phase.reuse, Phase.generate)


def signal_controls(model, inst, keep=None) -> np.ndarray:
    """Per-trial ``|x_a|^2 / N_a - E[x_a^2]`` and ``mean(x_a) - E[x_a]`` of every mode."""
    cols = []
    for pr, s in zip(model.modes, inst.signals, strict=True):
        cols.append((s**2).mean(axis=1) - pr.second_moment)
        cols.append(s.mean(axis=1) - pr.mean)
    c = np.stack(cols, axis=1)
    return c if keep is None else c[keep]


def amp_estimates(params, n, trials, seed, max_iter=2000, min_converged=0.9):
    """Control-variate means and SEMs of each mode's overlap and MSE: arrays (2, p)."""
    model = get_model("tensor")(**params)
    inst = sample_instance(model, n, trials, seed)
    res = run_amp(model, n, instance=inst, max_iter=max_iter)
    keep = res.converged
    assert keep.mean() >= min_converged, (n, keep.mean(), res.iterations)
    c = signal_controls(model, inst, keep)
    out = {}
    for key, val in (("overlap", res.overlap), ("mse", res.mse)):
        est = [control_variate_mean(val[keep, a], c) for a in range(model.order)]
        out[key] = np.array(est).T  # (2, p): mean, sem
    return out


def check_powered(params, sizes, trials, seed, *, trend=False, max_iter=2000, rounds=3):
    """Powered comparison of the pooled (over sizes) estimate with state evolution;
    per size within ``N_SIGMA`` too; with ``trend``, the 1/N slope between the
    smallest and largest size is reported and must not exceed the band.

    A run that cannot resolve :data:`PRECISION` (``PowerError``) gets another
    ``trials`` trials at every size, with fresh seeds, up to ``rounds`` batches
    in all (property draws land on parameters whose spread varies); only then
    does the power error stand.
    """
    theory = meanfield.solve("tensor", params)
    assert theory["status"] == "ok", theory
    rows = [amp_estimates(params, n, trials, seed + k, max_iter) for k, n in enumerate(sizes)]
    for r in range(1, rounds + 1):
        try:
            return _compare(params, theory, sizes, rows, trend)
        except PowerError:
            if r == rounds:
                raise
            rows += [amp_estimates(params, n, trials, seed + 1000 * r + k, max_iter)
                     for k, n in enumerate(sizes)]
    raise AssertionError("unreachable")


def _compare(params, theory, sizes, rows, trend):
    bias = BIAS[params["order"]]
    scale = np.array([pr.second_moment for pr in get_model("tensor")(**params).modes])
    all_sizes = list(sizes) * (len(rows) // len(sizes))
    bands = {}
    for key in ("overlap", "mse"):
        want = np.asarray(theory[key], dtype=float)
        allow = bias * (np.abs(want) if key == "overlap" else scale)
        for n, r in zip(all_sizes, rows, strict=True):
            z = (np.abs(r[key][0] - want) - allow) / r[key][1]
            assert np.all(z <= N_SIGMA + 1.0), (key, n, r[key], want)
        pooled = np.array(
            [pooled_mean([r[key][0][a] for r in rows], [r[key][1][a] for r in rows])
             for a in range(len(want))]
        ).T
        if key == "overlap":
            bands[key] = assert_powered(
                want, pooled[0], pooled[1], n_sigma=N_SIGMA,
                precision=PRECISION_BY_ORDER[params["order"]], bias=bias,
                what=f"{key} {params} N={sizes} x{len(rows) // len(sizes)}",
            )
        else:
            z = (np.abs(pooled[0] - want) - allow) / pooled[1]
            assert np.all(z <= N_SIGMA), (key, params, pooled, want)
        if trend and len(sizes) > 1:
            # the gap may not grow with N: |gap(N_max)| <= |gap(N_min)| + band
            first, last = rows[0], rows[len(sizes) - 1]
            g0 = np.abs(first[key][0] - want)
            g1 = np.abs(last[key][0] - want)
            assert np.all(g1 <= g0 + N_SIGMA * np.hypot(first[key][1], last[key][1])), (
                key, g0, g1)
    return bands


# ---------------------------------------------------------------------------
# order 2: every prior, both starts, both damping modes (default run)
# ---------------------------------------------------------------------------
ORDER2 = {
    "gaussian-informed": dict(prior="gaussian", delta=0.3, init="informed"),
    "gaussian_mean-informed": dict(prior="gaussian", mean=0.3, delta=0.3, init="informed"),
    "gaussian_shape-random": dict(prior="gaussian", shape="2,0.5", delta=0.3, init="random"),
    # 0.3 of BBP: at 0.5 the trial-to-trial spread needs 40 trials at N = 1000
    "rademacher-random": dict(prior="rademacher", delta=0.3, init="random"),
    # adaptive damping from the planted start: from the random start it freezes
    # at the trivial fixed point (3 of 16 trials converged at N = 1000, M = 0;
    # reported in the issue note)
    "rademacher-adaptive": dict(
        prior="rademacher", delta=0.4, init="informed", damping_mode="adaptive", damping=1.0
    ),
    "sparse_rademacher-informed": dict(prior="sparse_rademacher", rho=0.3, delta=0.3,
                                       init="informed"),
    "gauss_bernoulli-informed": dict(prior="gauss_bernoulli", rho=0.5, delta=0.07,
                                     init="informed"),
    "rademacher,gaussian-random": dict(prior="rademacher,gaussian", delta=0.3, init="random"),
}


@pytest.mark.parametrize("case", list(ORDER2), ids=list(ORDER2))
def test_order2_powered(case):
    check_powered(dict(order=2, **ORDER2[case]), (1000,), 16, seed=7)


@pytest.mark.slow
@pytest.mark.parametrize("case", list(ORDER2), ids=list(ORDER2))
def test_order2_powered_two_sizes(case):
    check_powered(dict(order=2, **ORDER2[case]), (1000, 2000), 16, seed=17, trend=True)


_PRIORS = [
    dict(prior="gaussian"),
    dict(prior="gaussian", mean=0.3),
    dict(prior="rademacher"),
    dict(prior="sparse_rademacher", rho=0.3),
    dict(prior="gauss_bernoulli", rho=0.5),
    dict(prior="rademacher,gaussian"),
]


@pytest.mark.slow
@settings(phases=NO_SHRINK)
@given(prior=st.sampled_from(_PRIORS), n1=st.floats(0.5, 2.0), frac=st.floats(0.2, 0.5),
       seed=st.integers(0, 1000))
@example(prior=_PRIORS[0], n1=1.0, frac=0.3, seed=1)
@example(prior=_PRIORS[1], n1=0.7, frac=0.4, seed=2)
@example(prior=_PRIORS[2], n1=1.5, frac=0.3, seed=3)
@example(prior=_PRIORS[3], n1=1.0, frac=0.4, seed=4)
@example(prior=_PRIORS[4], n1=0.8, frac=0.3, seed=5)
@example(prior=_PRIORS[5], n1=1.2, frac=0.4, seed=6)
def test_order2_property(prior, n1, frac, seed):
    shape = f"{n1},{1.0 / n1}"
    model = get_model("tensor")(order=2, shape=shape, **prior)
    v = [pr.var for pr in model.modes]
    delta = frac * v[0] * v[1] * np.sqrt(np.prod(model.shape))  # below BBP
    check_powered(dict(order=2, shape=shape, delta=delta, init="informed", **prior),
                  (1000,), 16, seed)


def test_order2_above_threshold_amp_finds_no_signal():
    """Above BBP (zero-mean priors) state evolution gives M = 0, and AMP from a
    random start falls to the trivial fixed point at every size."""
    params = dict(order=2, prior="rademacher", delta=1.5)
    assert meanfield.solve("tensor", params)["overlap"] == pytest.approx([0, 0], abs=1e-6)
    for n in (128, 512):
        sim = simulate(get_model("tensor")(**params), size=n, trials=8, seed=1, max_iter=300)
        assert np.all(np.abs(sim["overlap"]) < 1e-3)


# ---------------------------------------------------------------------------
# order >= 3
# ---------------------------------------------------------------------------
ORDER3 = {
    # tensor.md §9.3: p = 3, Rademacher, Delta = 0.2, informed (SE M = 0.9487)
    "rademacher-informed": dict(prior="rademacher", delta=0.2, init="informed"),
    # beyond the tricritical mean: no hard phase, damped AMP from random is optimal
    "gaussian_mean-random": dict(prior="gaussian", mean=0.6, delta=0.1, init="random"),
    # one zero-mean mode, the others with a mean: the easy phase survives (§1)
    "mixed-random": dict(prior="rademacher,gaussian,gaussian", mean="0,0.6,0.6", delta=0.1,
                         init="random"),
}
ORDER3_SLOW = {
    "gaussian-informed": dict(prior="gaussian", delta=0.08, init="informed"),
    "gauss_bernoulli-informed": dict(prior="gauss_bernoulli", rho=0.5, delta=0.015,
                                     init="informed"),
    "sparse_rademacher-informed": dict(prior="sparse_rademacher", rho=0.5, delta=0.12,
                                       init="informed"),
    "gaussian_mean-adaptive": dict(prior="gaussian", mean=0.6, delta=0.1, init="random",
                                   damping_mode="adaptive", damping=1.0),
    "shape-random": dict(prior="gaussian", mean=0.6, shape="1.4,1,0.714", delta=0.1,
                         init="random"),
}


@pytest.mark.parametrize("case", list(ORDER3), ids=list(ORDER3))
def test_order3_powered(case):
    check_powered(dict(order=3, **ORDER3[case]), (150,), 24, seed=11)


@pytest.mark.slow
@pytest.mark.parametrize(
    "case",
    [*ORDER3, *ORDER3_SLOW],
)
def test_order3_powered_two_sizes(case):
    params = dict(order=3, **{**ORDER3, **ORDER3_SLOW}[case])
    check_powered(params, (200, 300), 16, seed=21, trend=True)


@pytest.mark.slow
@pytest.mark.parametrize(
    "case",
    [
        dict(prior="gaussian", mean=0.8, delta=0.1, init="random"),
        dict(prior="gaussian", init="informed", delta=0.06),
    ],
    ids=["gaussian_mean-random", "gaussian-informed"],
)
def test_order4_powered(case):
    check_powered(dict(order=4, **case), (40, 50), 16, seed=31, trend=True)
