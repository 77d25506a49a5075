"""Compiled AMP pieces against the slow references of ``sims.naive``."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from meanfield.sims.engines.amp import fused_fields, run_amp, sample_instance
from meanfield.sims.naive import amp_reference

from meanfield import get_model

pytestmark = pytest.mark.kernels


@given(
    dims=st.lists(st.integers(1, 7), min_size=2, max_size=4),
    trials=st.integers(1, 3),
    seed=st.integers(0, 2**16),
)
def test_fused_contraction_equals_separate_einsums(dims, trials, seed):
    rng = np.random.default_rng(seed)
    p = len(dims)
    Y = rng.standard_normal((trials, *dims))
    xs = [rng.standard_normal((trials, d)) for d in dims]
    R = int(np.prod(dims[1:-1])) if p > 2 else 1
    got = fused_fields(Y.reshape(trials, dims[0], R, dims[-1]), xs)
    letters = "abcd"[:p]
    for a in range(p):
        ops = [Y] + [xs[b] for b in range(p) if b != a]
        subs = ["t" + letters] + ["t" + letters[b] for b in range(p) if b != a]
        ref = np.einsum(",".join(subs) + "->t" + letters[a], *ops)
        # sums of up to 343 terms of O(1) numbers, reassociated (fastmath)
        np.testing.assert_allclose(got[a], ref, rtol=0, atol=1e-12 * max(1, R * dims[0]))


@pytest.mark.parametrize(
    "params,size,init",
    [
        (dict(order=2, prior="rademacher", delta=0.5, shape="1.5,1"), 40, "random"),
        (dict(order=2, prior="gaussian,sparse_rademacher", rho=0.3, delta=0.4), 30, "random"),
        (dict(order=3, prior="gaussian", mean=0.2, delta=0.1), 12, "random"),
        (dict(order=3, prior="rademacher", delta=0.2, shape="1,1.5,0.5"), 12, "informed"),
        (dict(order=4, prior="gauss_bernoulli", rho=0.5, delta=0.05), 6, "informed"),
    ],
)
def test_amp_engine_equals_naive_reference(params, size, init):
    model = get_model("tensor")(**params)
    inst = sample_instance(model, size, 1, seed=3)
    k = 7
    res = run_amp(model, size, instance=inst, max_iter=k, tol=0.0, init=init)
    eta = 0.8 if model.order == 2 else 0.5
    ref = amp_reference(model, inst, k, eta, init=init)
    for a in range(model.order):
        # 7 iterations of a contraction-then-denoise map: 1e-9 relative covers
        # the reassociated sums' rounding amplified by the iteration
        np.testing.assert_allclose(res.estimates[a][0], ref[a], rtol=1e-9, atol=1e-11)


def test_same_seed_same_numbers_and_trials_independent_of_count():
    model = get_model("tensor")(order=2, prior="rademacher", delta=0.6)
    a = run_amp(model, 64, trials=3, seed=11)
    b = run_amp(model, 64, trials=3, seed=11)
    c = run_amp(model, 64, trials=5, seed=11)
    np.testing.assert_array_equal(a.overlap, b.overlap)
    # trial t uses child t of the SeedSequence whatever the number of trials
    np.testing.assert_array_equal(a.overlap, c.overlap[:3])
