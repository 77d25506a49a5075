"""CP-ALS (``sims.als``): exact recovery, agreement with tensorly, and the AMP-style scoring."""

import numpy as np
import pytest
from meanfield.sims.als import als_on_instance, cp_als, cp_to_tensor, khatri_rao
from meanfield.sims.engines.amp import Instance, sample_instance

import meanfield

SHAPE = (6, 7, 8)


def _low_rank(rng, dims, rank):
    factors = [rng.standard_normal((d, rank)) for d in dims]
    return cp_to_tensor(np.ones(rank), factors), factors


def _rel(a, b):
    return np.linalg.norm(a - b) / np.linalg.norm(b)


# ---------------------------------------------------------------------------
# building blocks
# ---------------------------------------------------------------------------


def test_khatri_rao_matches_c_order_unfolding():
    rng = np.random.default_rng(0)
    Y, F = _low_rank(rng, (3, 4, 5), 2)
    # mode-0 unfolding in C order equals F0 @ KR(F1, F2)^T
    np.testing.assert_allclose(Y.reshape(3, -1), F[0] @ khatri_rao(F[1:]).T, rtol=1e-12)
    direct = np.einsum("ir,jr,kr->ijk", *F)
    np.testing.assert_allclose(Y, direct, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------
# (a) noiseless tensors are recovered to rounding
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("rank", [1, 2])
@pytest.mark.parametrize("init", ["random", "svd"])
def test_noiseless_low_rank_recovered(rank, init):
    rng = np.random.default_rng(10 + rank)
    Y, F = _low_rank(rng, SHAPE, rank)
    r = cp_als(Y, rank, init=init, rng=1, n_iter_max=2000, tol=1e-12, restarts=2)
    assert r.residual < 1e-10
    assert _rel(r.to_tensor(), Y) < 1e-10
    assert r.converged
    assert len(r.factors) == 3
    assert [f.shape for f in r.factors] == [(d, rank) for d in SHAPE]
    np.testing.assert_allclose([np.linalg.norm(f, axis=0) for f in r.factors], 1.0, rtol=1e-12)
    if rank == 1:
        # unique up to scale and sign: each factor is parallel to the truth
        for f, x in zip(r.factors, F, strict=True):
            cos = abs(f[:, 0] @ x[:, 0]) / np.linalg.norm(x[:, 0])
            assert cos == pytest.approx(1.0, abs=1e-10)


def test_noiseless_other_orders_and_shapes():
    rng = np.random.default_rng(3)
    for dims in [(5, 9), (3, 4, 2, 5)]:
        Y, _ = _low_rank(rng, dims, 1)
        r = cp_als(Y, 1, rng=0)
        assert r.residual < 1e-10, dims


def test_restarts_keep_best_residual():
    rng = np.random.default_rng(4)
    Y = _low_rank(rng, SHAPE, 3)[0] + 0.5 * rng.standard_normal(SHAPE)
    r = cp_als(Y, 2, rng=5, restarts=4, n_iter_max=50)
    assert r.residuals.shape == (4,)
    assert r.residual == pytest.approx(r.residuals.min())
    assert r.residuals[r.restart] == r.residual
    assert _rel(r.to_tensor(), Y) == pytest.approx(r.residual, rel=1e-9)


def test_bad_arguments():
    Y = np.ones(SHAPE)
    for kw in [dict(rank=0), dict(restarts=0), dict(tol=-1.0), dict(n_iter_max=0), dict(init="x")]:
        with pytest.raises(ValueError):
            cp_als(Y, **kw)
    r = cp_als(np.zeros(SHAPE), 1)
    assert r.residual == 0.0 and r.converged


# ---------------------------------------------------------------------------
# (b) agreement with tensorly's parafac from the same start
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_matches_tensorly_parafac(rank):
    tl = pytest.importorskip("tensorly")
    from tensorly.decomposition import parafac

    rng = np.random.default_rng(20 + rank)
    Y = _low_rank(rng, SHAPE, rank)[0] + 0.3 * rng.standard_normal(SHAPE)
    init = [rng.standard_normal((d, rank)) for d in SHAPE]
    ref = parafac(tl.tensor(Y), rank, init=(np.ones(rank), [f.copy() for f in init]),
                  n_iter_max=30, tol=0)
    ref_tensor = np.asarray(tl.cp_to_tensor(ref))
    # a fixed number of sweeps (tol = 0 on both sides): the same iterates
    ours = cp_als(Y, rank, init=[f.copy() for f in init], tol=0, n_iter_max=30)
    assert ours.iterations == 30
    assert _rel(ours.to_tensor(), ref_tensor) < 1e-6
    assert ours.residual == pytest.approx(_rel(ref_tensor, Y), rel=1e-6)
    # run to convergence on both sides: the same fit
    ref = parafac(tl.tensor(Y), rank, init=(np.ones(rank), [f.copy() for f in init]),
                  n_iter_max=2000, tol=1e-12)
    ours = cp_als(Y, rank, init=[f.copy() for f in init], tol=1e-12, n_iter_max=2000)
    ref_tensor = np.asarray(tl.cp_to_tensor(ref))
    assert np.linalg.norm(Y - ours.to_tensor()) == pytest.approx(
        np.linalg.norm(Y - ref_tensor), rel=1e-6)
    assert _rel(ours.to_tensor(), ref_tensor) < 1e-4


def test_init_accepts_weights_and_factors():
    rng = np.random.default_rng(7)
    Y = _low_rank(rng, SHAPE, 2)[0] + 0.2 * rng.standard_normal(SHAPE)
    F = [rng.standard_normal((d, 2)) for d in SHAPE]
    w = np.array([2.0, -0.5])
    a = cp_als(Y, 2, init=(w, F), tol=0, n_iter_max=5)
    b = cp_als(Y, 2, init=[F[0], F[1], F[2] * w], tol=0, n_iter_max=5)
    np.testing.assert_allclose(a.to_tensor(), b.to_tensor(), rtol=1e-12, atol=1e-12)
    # the update does not depend on the scale of the start
    c = cp_als(Y, 2, init=[3.0 * F[0], F[1], 0.1 * F[2]], tol=0, n_iter_max=5)
    np.testing.assert_allclose(c.to_tensor(), a.to_tensor(), rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------------------
# (c) scoring on planted instances
# ---------------------------------------------------------------------------


def _planted(shape="1,1,1", size=10, trials=2, delta=1e-30):
    """Planted instances; the default noise (``sqrt(delta) = 1e-15``) is rounding level."""
    model = meanfield.get_model("tensor")(order=3, shape=shape, delta=delta, prior="gaussian",
                                         mean=0.2, damping=0.5)
    return model, sample_instance(model, size, trials, seed=3)


def test_scoring_noiseless_is_perfect():
    model, inst = _planted(shape="2,1,0.5", size=12)
    out = als_on_instance(model, inst, seed=0)
    np.testing.assert_allclose(out["mse"], 0.0, atol=1e-20)
    np.testing.assert_allclose(out["overlap"], 1.0, atol=1e-12)
    assert np.all(out["tensor_mse"] < 1e-24)
    np.testing.assert_allclose(out["tensor_error"], 0.0, atol=1e-10)
    # the rescaled estimates rebuild the planted tensor (signs may pair up)
    p, N = model.order, inst.size
    for t in range(inst.Y.shape[0]):
        xh = [e[t] for e in out["estimates"]]
        Xh = N ** (-(p - 1) / 2) * np.einsum("i,j,k->ijk", *xh)
        X = N ** (-(p - 1) / 2) * np.einsum("i,j,k->ijk", *[s[t] for s in inst.signals])
        assert _rel(Xh, X) < 1e-10
        # each mode on the same per-entry scale
        ms = [np.mean(x**2) for x in xh]
        np.testing.assert_allclose(ms, ms[0], rtol=1e-10)


@pytest.mark.parametrize("flip", [(1, 1, 1), (-1, -1, 1), (-1, 1, -1), (-1, -1, -1)])
def test_scoring_of_given_factors(flip, monkeypatch):
    """Perfect factors, negated (any pattern) and rescaled, score MSE 0 and overlap 1."""
    import meanfield.sims.als as als

    model, inst = _planted(size=9, trials=2, delta=0.05)

    def fake(Y, rank, **kw):
        t = fake.t
        fake.t += 1
        us = [s[t] * f * 3.0 for s, f in zip(inst.signals, flip, strict=True)]
        w = np.prod([np.linalg.norm(u) for u in us]) / 27.0 / inst.size
        return als.ALSResult([(u / np.linalg.norm(u))[:, None] for u in us], np.array([w]),
                             0.5, 1, True)

    fake.t = 0
    monkeypatch.setattr(als, "cp_als", fake)
    out = als.als_on_instance(model, inst)
    np.testing.assert_allclose(out["mse"], 0.0, atol=1e-24)
    np.testing.assert_allclose(out["overlap"], 1.0, rtol=1e-13)
    np.testing.assert_allclose(np.sign(out["scale"]), np.broadcast_to(flip, (2, 3)))
    odd = np.prod(flip) < 0  # an odd number of sign flips changes the tensor's sign
    np.testing.assert_allclose(out["tensor_error"], 2.0 if odd else 0.0, atol=1e-10)


def test_scoring_matches_definitions_on_noisy_data():
    model, inst = _planted(size=14, trials=2, delta=0.1)
    out = als_on_instance(model, inst, seed=1, restarts=2)
    assert out["mse"].shape == (2, 3) and out["tensor_mse"].shape == (2,)
    N = inst.size
    for t in range(2):
        Yt = inst.Y[t].reshape(inst.dims)
        r = cp_als(Yt, 1, rng=np.random.default_rng(np.random.SeedSequence(1).spawn(2)[t]),
                   restarts=2)
        assert out["residual"][t] == pytest.approx(r.residual, rel=1e-12)
        X = N ** -1.0 * np.einsum("i,j,k->ijk", *[s[t] for s in inst.signals])
        assert out["tensor_mse"][t] == pytest.approx(np.mean((r.to_tensor() - X) ** 2), rel=1e-10)
        for a in range(3):
            u, x = r.factors[a][:, 0], inst.signals[a][t]
            c = u @ x / (u @ u)
            assert out["mse"][t, a] == pytest.approx(np.mean((c * u - x) ** 2), rel=1e-10)
            # the best scaling: no other scalar does better
            for c2 in (0.9 * c, 1.1 * c, -c):
                assert np.mean((c2 * u - x) ** 2) >= out["mse"][t, a]
            cos = abs(u @ x) / np.linalg.norm(u) / np.linalg.norm(x)
            assert out["overlap"][t, a] == pytest.approx(cos, rel=1e-12)
            # ALS's own scale, sign from the truth: never better than the best scaling
            xh = out["estimates"][a][t]
            plug = np.mean((np.sign(xh @ x) * xh - x) ** 2)
            assert out["mse_plugin"][t, a] == pytest.approx(plug, rel=1e-10)
            assert out["mse_plugin"][t, a] >= out["mse"][t, a] * (1 - 1e-12)


def test_scoring_rejects_mismatch():
    model, inst = _planted(size=6, trials=1)
    with pytest.raises(ValueError):
        als_on_instance(model, inst, rank=2)
    bad = Instance(inst.signals[:2], inst.Y, inst.init_noise[:2], inst.size)
    with pytest.raises(ValueError):
        als_on_instance(model, bad)
