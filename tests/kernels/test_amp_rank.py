"""Rank-r AMP engine against the rank-one engine, the naive reference and itself."""

import numpy as np
import pytest
from meanfield.sims.engines.amp import run_amp, sample_instance
from meanfield.sims.engines.amp_rank import run_amp_rank, vector_denoiser_for
from meanfield.sims.naive import amp_rank_reference, vector_posterior_moments

from meanfield import get_model, make_prior
from meanfield.vector_prior import upper_pairs

pytestmark = pytest.mark.kernels


@pytest.mark.parametrize(
    "params,size",
    [
        (dict(order=2, prior="rademacher", delta=0.5, shape="1.5,1"), 40),
        (dict(order=2, prior="gaussian,gauss_bernoulli", rho=0.5, delta=0.4), 30),
        (dict(order=3, prior="gaussian", mean=0.2, delta=0.1), 12),
        (dict(order=3, prior="gauss_bernoulli", rho=0.5, delta=0.05, shape="1,1.5,0.5"), 12),
    ],
)
@pytest.mark.parametrize("init", ["random", "informed"])
def test_rank_one_reproduces_run_amp(params, size, init):
    model = get_model("tensor")(**params)
    # one sampler serves every rank: both engines run on the same instance
    inst = sample_instance(model, size, 2, seed=3)
    k = 9
    ref = run_amp(model, size, instance=inst, max_iter=k, tol=0.0, init=init)
    got = run_amp_rank(model, size, instance=inst, max_iter=k, tol=0.0, init=init)
    for a in range(model.order):
        # the same operations up to the association of the r x r Gram sums
        np.testing.assert_allclose(got.estimates[a][..., 0], ref.estimates[a], rtol=0, atol=1e-12)
    np.testing.assert_allclose(got.overlap[:, :, 0, 0], ref.overlap, rtol=0, atol=1e-12)
    np.testing.assert_allclose(got.mse, ref.mse, rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    "params,size,init",
    [
        (dict(order=2, prior="rademacher", delta=0.5, rank=2, shape="1.5,1"), 30, "random"),
        (dict(order=2, prior="gaussian", mean=0.3, delta=0.3, rank=2), 24, "random"),
        (dict(order=2, prior="gauss_bernoulli", rho=0.5, delta=0.2, rank=2), 24, "informed"),
        (dict(order=3, prior="gaussian", mean=0.2, delta=0.1, rank=2), 10, "random"),
        (dict(order=3, prior="rademacher", delta=0.2, rank=2, shape="1,1.5,0.5"), 10, "informed"),
        (dict(order=3, prior="gauss_bernoulli", rho=0.5, delta=0.05, rank=2), 10, "informed"),
        (dict(order=3, prior="gaussian", delta=0.1, rank=3), 10, "informed"),
        (
            dict(order=3, prior="gaussian,rademacher,gaussian", mean=0.3, delta=0.1, rank=3),
            9,
            "random",
        ),
    ],
)
def test_rank_engine_equals_naive_reference(params, size, init):
    model = get_model("tensor")(**params)
    inst = sample_instance(model, size, 1, seed=3)
    k = 6
    res = run_amp_rank(model, size, instance=inst, max_iter=k, tol=0.0, init=init)
    eta = 0.8 if model.order == 2 else 0.5
    ref = amp_rank_reference(model, inst, k, eta, init=init)
    for a in range(model.order):
        # a few iterations of contraction-then-denoise: 1e-9 relative covers the
        # reassociated sums' rounding amplified by the iteration
        np.testing.assert_allclose(res.estimates[a][0], ref[a], rtol=1e-9, atol=1e-11)


def test_same_seed_same_numbers_and_trials_independent_of_count():
    model = get_model("tensor")(order=3, prior="gaussian", mean=0.3, delta=0.1, rank=2)
    a = run_amp_rank(model, 12, trials=2, seed=11, max_iter=30)
    b = run_amp_rank(model, 12, trials=2, seed=11, max_iter=30)
    c = run_amp_rank(model, 12, trials=4, seed=11, max_iter=30)
    np.testing.assert_array_equal(a.overlap, b.overlap)
    for x, y in zip(a.estimates, b.estimates, strict=True):
        np.testing.assert_array_equal(x, y)
    # trial t uses child t of the SeedSequence whatever the number of trials
    np.testing.assert_array_equal(a.overlap, c.overlap[:2])
    for x, y in zip(a.estimates, c.estimates, strict=True):
        np.testing.assert_array_equal(x, y[:2])


@pytest.mark.parametrize("prior", ["gaussian", "rademacher", "gauss_bernoulli"])
def test_vector_denoiser_equals_naive_posterior_moments(prior):
    """At a full (non-diagonal) precision the sympy vector denoiser equals the
    enumerated posterior moments of the naive reference."""
    pr = make_prior(prior, mean=0.3 if prior != "gauss_bernoulli" else 0.0, rho=0.4)
    r = 2
    vden = vector_denoiser_for(pr, r)
    rng = np.random.default_rng(1)
    for _ in range(5):
        L = rng.normal(size=(r, r))
        A = L @ L.T + 0.1 * np.eye(r)
        B = rng.normal(0, 2, (1, r))
        out = vden(*B[0], *[A[s, t] for s, t in upper_pairs(r)], *pr.values)
        mean, cov = vector_posterior_moments(pr, A, B)
        np.testing.assert_allclose(out[:r], mean[0], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(
            out[r:], [cov[0, s, t] for s, t in upper_pairs(r)], rtol=1e-9, atol=1e-12
        )
