"""State evolution against AMP simulations (Kadmon & Ganguli 2018, "excellent match").

Hypothesis samples the prior, the shape and the noise; seeded AMP runs at
three sizes. Asserted: agreement within N_SE standard errors at every size,
and a gap that does not grow with N beyond its noise (the finite-size trend).

Finite-size corrections are O(1/N) and visible at these sizes (rectangular
shapes, noise half-way to the threshold: a 4-SE bias at N = 512), so the
property tests assert that the 1/N extrapolation of the simulations agrees
with theory within N_SE standard errors of the intercept, and that the gap
does not grow with N; fixed cases also check each size directly.

The property test starts AMP at the planted signal: below the BBP threshold
the informative fixed point is unique, so this tests the fixed point without
the escape from the unstable trivial point, which at finite N can trap a
trial in a period-two orbit near zero (seen with sparse priors at N = 256).
Random starts are checked on fixed cases below.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from meanfield.sims import simulate
from meanfield.sims.engines.amp import run_amp
from tolerances import extrapolate_1_over_n, within_se

import meanfield
from meanfield import get_model

N_SE = 4.0
SIZES = (256, 512, 1024)
TRIALS = 12

prior_st = st.sampled_from(
    [
        dict(prior="gaussian"),
        dict(prior="gaussian", mean=0.3),
        dict(prior="rademacher"),
        dict(prior="sparse_rademacher", rho=0.3),
        dict(prior="gauss_bernoulli", rho=0.5),
        dict(prior="rademacher,gaussian"),
    ]
)


def _converged_stats(params, n, trials, seed, max_iter):
    """MSE mean and SEM over the trials whose AMP converged.

    At N = 256 an order-2 trial sometimes falls into a period-two,
    sign-flipping orbit near zero overlap instead of settling (seen: about 1
    in 200 trials for Gaussian priors with rectangular shapes, up to 2 in 12
    for Gauss-Bernoulli rho = 0.5); it is reported as not converged. This is
    an open AMP issue (see the issue note), not a tolerance: at least 75% of
    the trials must converge, and only those are compared with theory.
    """
    res = run_amp(get_model("tensor")(**params), n, trials=trials, seed=seed, max_iter=max_iter)
    keep = res.converged
    assert keep.mean() >= 0.75, (n, res.iterations)
    mse = res.mse[keep]
    return mse.mean(axis=0), mse.std(axis=0, ddof=1) / np.sqrt(len(mse))


def _check_extrapolated(params, sizes, trials, seed, max_iter=2000):
    """At the small N that order >= 3 tensors allow, AMP carries a visible 1/N
    bias; its 1/N extrapolation must agree with theory within N_SE standard
    errors (of the intercept), and the gap must not grow with N."""
    theory = meanfield.solve("tensor", params)
    assert theory["status"] == "ok"
    rows = [_converged_stats(params, n, trials, seed + k, max_iter) for k, n in enumerate(sizes)]
    for a in range(len(theory["mse"])):
        means = [r[0][a] for r in rows]
        sems = [r[1][a] for r in rows]
        c0, se0 = extrapolate_1_over_n(sizes, means, sems)
        assert abs(c0 - theory["mse"][a]) <= N_SE * se0, (a, c0, se0, theory["mse"][a], means, sems)
        slack = 2.0 * np.hypot(sems[0], sems[-1])
        assert abs(means[-1] - theory["mse"][a]) <= abs(means[0] - theory["mse"][a]) + slack


def _check(params, sizes, trials, seed):
    theory = meanfield.solve("tensor", params)
    assert theory["status"] == "ok"
    gaps, sems = [], []
    for k, n in enumerate(sizes):
        sim = simulate(get_model("tensor")(**params), size=n, trials=trials, seed=seed + k)
        assert sim["status"] == "ok", (n, sim)
        for key in ("overlap", "mse"):
            mean = np.array(sim[key])
            sem = np.array(sim[key + "_sem"])
            assert within_se(mean, sem, theory[key], N_SE), (n, key, mean, sem, theory[key])
        gaps.append(np.abs(np.array(sim["mse"]) - theory["mse"]))
        sems.append(np.array(sim["mse_sem"]))
    # finite-size trend: the largest size is no further from theory than the
    # smallest, up to two combined standard errors
    slack = 2.0 * np.sqrt(sems[0] ** 2 + sems[-1] ** 2)
    assert np.all(gaps[-1] <= gaps[0] + slack), (gaps, sems)
    return gaps


@given(
    prior=prior_st,
    n1=st.floats(0.5, 2.0),
    frac=st.floats(0.2, 0.6),
    seed=st.integers(0, 1000),
)
def test_order2_amp_agrees_with_state_evolution(prior, n1, frac, seed):
    shape = f"{n1},{1.0 / n1}"
    model = get_model("tensor")(order=2, shape=shape, **prior)
    v = [pr.var for pr in model.modes]
    # the BBP threshold (with means, the transition is smoothed: stay below it)
    delta = frac * v[0] * v[1] * np.sqrt(np.prod(model.shape))
    # damped (0.8): undamped order-2 AMP with sparse priors can settle into a
    # period-two oscillation at N = 256; damping leaves the fixed points alone
    params = dict(order=2, shape=shape, delta=delta, init="informed", damping=0.8, **prior)
    _check_extrapolated(params, SIZES, TRIALS, seed)


@pytest.mark.parametrize(
    "params",
    [
        dict(order=2, prior="rademacher", delta=0.5),
        dict(order=2, prior="gaussian", shape="2,0.5", delta=0.4),
        dict(order=2, prior="gaussian,rademacher", delta=0.3),
    ],
)
def test_order2_random_start_reaches_state_evolution(params):
    _check(dict(params, init="random"), SIZES, TRIALS, seed=7)


def test_order2_above_threshold_amp_finds_no_signal():
    """Above BBP (zero-mean priors) state evolution gives M = 0, and AMP from a
    random start falls to the trivial fixed point at every size."""
    params = dict(order=2, prior="rademacher", delta=1.5)
    assert meanfield.solve("tensor", params)["overlap"] == pytest.approx([0, 0], abs=1e-6)
    for n in (128, 512):
        sim = simulate(get_model("tensor")(**params), size=n, trials=8, seed=1, max_iter=300)
        assert np.all(np.abs(sim["overlap"]) < 1e-3)


# ---------------------------------------------------------------------------
# higher orders (tensor issue): sizes whose tensors fit in memory
# ---------------------------------------------------------------------------
HIGH_SIZES = {3: (60, 90, 120), 4: (18, 24, 30)}
HIGH_TRIALS = 6


@settings(max_examples=4)
@given(
    order=st.sampled_from([3, 3, 4]),  # p = 4 only at N <= 30: continuous priors
    case=st.sampled_from(
        [
            # non-zero mean beyond the tricritical point: no hard phase, AMP
            # from the random start is optimal (damped)
            dict(prior="gaussian", mean=0.6, init="random"),
            dict(prior="gaussian", mean=0.6, init="random", damping_mode="adaptive", damping=1.0),
            # zero means at p >= 3: no easy phase; the informative branch from
            # the planted start (metastable or stable)
            dict(prior="gaussian", init="informed"),
            dict(prior="gauss_bernoulli", rho=0.5, init="informed"),
        ]
    ),
    a=st.floats(0.7, 1.4),
    frac=st.floats(0.0, 1.0),
    seed=st.integers(0, 1000),
)
def test_higher_order_amp_agrees_with_state_evolution(order, case, a, frac, seed):
    """Noise ranges: with the random start, delta in [0.15, 0.25] of the natural
    scale (at higher noise damped AMP at these small N needs > 1000 iterations
    and its 1/N corrections exceed 4 SE: seen at N = 50, shrinking by N = 150);
    with the planted start, delta in [0.35, 0.65] of the dynamic spinodal
    (closer to it, finite-N trials escape the metastable branch; far below it
    the MSE of discrete priors is a rare-error, heavy-tailed statistic whose
    standard error six trials cannot estimate)."""
    shape = ",".join(str(s) for s in [a] + [1.0] * (order - 2) + [1.0 / a])
    base = dict(order=order, shape=shape, **case)
    model = get_model("tensor")(**base)
    if case["init"] == "informed":
        # below the dynamic spinodal, where the informative branch exists
        dyn = meanfield.threshold("tensor", base, kind="dynamic")
        assert dyn["status"] == "ok"
        delta = (0.35 + 0.3 * frac) * dyn["value"]
    else:
        delta = (0.15 + 0.1 * frac) * model.scan_scale("delta")
    _check_extrapolated(dict(base, delta=delta), HIGH_SIZES[order], HIGH_TRIALS, seed)


@pytest.mark.parametrize(
    "params",
    [
        # discrete priors: the MSE is a rare-error statistic at low noise, so
        # fixed, moderate-noise cases with more trials (tensor.md §3: p = 3,
        # Rademacher, Delta = 0.2, informed: AMP matched SE to ~1% at N = 200)
        dict(order=3, prior="rademacher", delta=0.2, init="informed"),
        dict(order=3, prior="sparse_rademacher", rho=0.5, delta=0.12, init="informed"),
    ],
)
def test_order3_discrete_priors_agree_with_state_evolution(params):
    _check_extrapolated(params, HIGH_SIZES[3], 10, seed=11)
