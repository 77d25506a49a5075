"""Rank-r state evolution against rank-r AMP (Kadmon & Ganguli 2018; Lesieur et al. 2017).

The theory is ``Tensor(..., rank=2).solve()``: per mode the ``r x r`` overlap
matrix (the state is its upper triangle). AMP overlaps are matched to the
planted components (Hungarian assignment on the summed ``|overlap|``, then the
sign gauge of pairs of zero-mean modes) before they are compared.

Asserted, as for rank one (``test_tensor_theory_vs_amp.py``): the 1/N
extrapolation of every diagonal overlap agrees with the SE within ``N_SE``
standard errors of the intercept; at the largest size the matched
off-diagonal overlaps agree with the SE's off-diagonal within ``N_SE``
standard errors.

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
from hypothesis import Phase, given, settings
from hypothesis import strategies as st
from meanfield.sims import simulate
from meanfield.sims.engines.amp_rank import run_amp_rank
from tolerances import extrapolate_1_over_n, within_se

import meanfield
from meanfield import get_model

N_SE = 4.0
SIZES = {2: (200, 400, 800), 3: (60, 90, 120)}
TRIALS = {2: 8, 3: 10}
# a failing example costs minutes of AMP per shrink step: report it unshrunk
NO_SHRINK = (Phase.explicit, Phase.reuse, Phase.generate)


def _overlap_stats(params, n, trials, seed):
    """Matched overlap matrices (p, r, r): mean and SEM over the converged trials."""
    res = run_amp_rank(get_model("tensor")(**params), n, trials=trials, seed=seed, max_iter=2000)
    keep = res.converged
    assert keep.mean() >= 0.75, (n, res.iterations)
    o = res.overlap[keep]
    return o.mean(axis=0), o.std(axis=0, ddof=1) / np.sqrt(len(o))


def _check(params, seed):
    p = params["order"]
    sizes, trials = SIZES[p], TRIALS[p]
    theory = meanfield.solve("tensor", params)
    assert theory["status"] == "ok"
    M = np.array(theory["overlap"])  # (p, r, r)
    rows = [_overlap_stats(params, n, trials, seed + k) for k, n in enumerate(sizes)]
    r = M.shape[-1]
    for a in range(p):
        for s in range(r):
            means = [m[a, s, s] for m, _ in rows]
            sems = [max(e[a, s, s], 1e-4) for _, e in rows]
            c0, se0 = extrapolate_1_over_n(sizes, means, sems)
            assert abs(c0 - M[a, s, s]) <= N_SE * se0, (a, s, c0, se0, M[a, s, s], means, sems)
    mean, sem = rows[-1]
    off = ~np.eye(r, dtype=bool)
    assert within_se(mean[:, off], np.maximum(sem[:, off], 1e-4), M[:, off], N_SE), (
        mean,
        sem,
        M,
    )
    return M, rows


@settings(max_examples=3, phases=NO_SHRINK)
@given(
    case=st.sampled_from(
        [
            dict(prior="rademacher", init="informed"),
            dict(prior="gauss_bernoulli", rho=0.5, init="informed"),
            dict(prior="gaussian", mean=0.5, init="random"),
        ]
    ),
    frac=st.floats(0.3, 0.6),
    seed=st.integers(0, 1000),
)
def test_order2_rank2_amp_agrees_with_state_evolution(case, frac, seed):
    base = dict(order=2, rank=2, **case)
    v = [pr.var for pr in get_model("tensor")(**base).modes]
    # BBP of each component (zero means); with a mean the transition is smoothed
    delta = frac * v[0] * v[1]
    _check(dict(base, delta=delta), seed)


def _spinodal(base):
    """The dynamic spinodal: with zero means the rank-r SE from the planted
    start keeps diagonal overlaps and reduces to r rank-one SEs."""
    dyn = meanfield.threshold("tensor", dict(base, rank=1), kind="dynamic")
    assert dyn["status"] == "ok"
    return dyn["value"]


@settings(max_examples=2, phases=NO_SHRINK)
@given(frac=st.floats(0.0, 1.0), seed=st.integers(0, 1000))
def test_order3_rank2_amp_agrees_with_state_evolution(frac, seed):
    """Zero-mean Gaussian, planted start (discrete priors: the slow test below).

    Not tested: random starts with a non-zero mean at p = 3. The
    non-specialised point (both estimated columns along the mean direction)
    traps them: at N = 60, mean 0.6, delta = 0.25 of the natural scale, half
    of ten trials had not converged after 2000 iterations."""
    base = dict(order=3, rank=2, prior="gaussian", init="informed")
    _check(dict(base, delta=(0.3 + 0.2 * frac) * _spinodal(base)), seed)


@pytest.mark.slow
@pytest.mark.parametrize(
    "case,spinodal",
    [
        (dict(prior="rademacher", init="informed"), None),
        # tensor.md §4: Delta_dyn = 0.0358 for Gauss-Bernoulli rho = 0.5 at p = 3
        # (meanfield.threshold gives 0.03585: tests/literature check it against this row)
        (dict(prior="gauss_bernoulli", rho=0.5, init="informed"), 0.0358),
    ],
)
def test_order3_rank2_discrete_priors_agree_with_state_evolution(case, spinodal):
    base = dict(order=3, rank=2, **case)
    spinodal = spinodal if spinodal is not None else _spinodal(base)
    _check(dict(base, delta=0.4 * spinodal), seed=11)


def test_simulate_routes_rank_to_the_rank_engine():
    model = get_model("tensor")(order=3, rank=2, prior="gaussian", mean=0.6, delta=0.1)
    out = simulate(model, size=20, trials=2, seed=0, max_iter=300)
    assert np.array(out["overlap"]).shape == (3, 2, 2)
    assert np.array(out["overlap_sem"]).shape == (3, 2, 2)
    assert len(out["mse"]) == 3 and len(out["mse_sem"]) == 3
    assert out["status"] in ("ok", "not_converged")
