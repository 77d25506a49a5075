"""feedback_alignment simulation against the theory, the engines' CUDA path, and real data.

Precision resolved (theory vs sampled-data SGD): each mode strength
``sigma_hat_a(t)`` within ``4`` standard errors (over trials that share the
realisation and differ in their minibatches) plus the Euler bias
``eta * s_max`` (the simulator takes steps ``eta``; the theory is the flow,
``eta -> 0``; measured bias 0.4-0.7 ``eta s_max``). The finite-step trend is
checked explicitly: the bias shrinks linearly in ``eta`` and its ``eta -> 0``
extrapolation agrees with the flow within 4 standard errors. Mutation check:
delivering ``W2^T`` instead of ``Q P`` must fail the agreement check.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from meanfield.sims.engines.learning import mlp

import meanfield
from meanfield import ParamError
from tests.tolerances import extrapolate_1_over_n

FA = meanfield.get_model("feedback_alignment")
HERE = Path(__file__).parent
SMALL = dict(n=8, k=8, m=6)
N_SE = 4.0
C_EULER = 1.0


def agreement(model, times, *, trials=6, batch=256, seed=1, **kw):
    """(ok, worst excess, theory, sim): sim within N_SE SE + C_EULER eta s_max of the flow."""
    th = model.trajectory(times)
    assert th["status"] == "ok"
    sim = mlp.linear_trajectory(model, times, trials=trials, batch=batch, seed=seed, **kw)
    mean = sim["sigma_hat"].mean(axis=1)
    sem = sim["sigma_hat"].std(axis=1, ddof=1) / np.sqrt(trials)
    tol = N_SE * sem + C_EULER * model["eta"] * max(model.spectrum) + 1e-3
    excess = float(np.max(np.abs(mean - th["sigma_hat"]) - tol))
    return excess <= 0, excess, th, sim


@settings(deadline=None)
@given(
    rule=st.sampled_from(["bp", "fa", "fixed", "normative", "local"]),
    d=st.integers(1, 3),
    r=st.integers(1, 3),
    s=st.lists(st.floats(0.5, 3.0), min_size=3, max_size=3),
    eta=st.sampled_from([0.005, 0.01]),
    t=st.floats(1.0, 4.0),
)
@example(rule="fixed", d=3, r=2, s=[3.0, 2.0, 1.0], eta=0.01, t=3.0)
@example(rule="normative", d=3, r=2, s=[3.0, 2.0, 1.0], eta=0.01, t=3.0)
def test_sigma_hat_theory_against_simulation(rule, d, r, s, eta, t):
    spec = tuple(sorted(s[:d], reverse=True))
    model = FA(rule=rule, spectrum=spec, r=r, eta=eta, t=t, **SMALL)
    ok, excess, th, sim = agreement(model, [t / 2, t])
    assert ok, (excess, th["sigma_hat"], sim["sigma_hat"].mean(axis=1))


def test_euler_bias_shrinks_linearly_and_extrapolates_to_the_flow():
    etas = [0.02, 0.01, 0.005]
    devs, means, sems = [], [], []
    th = None
    for eta in etas:
        model = FA(rule="bp", spectrum=(2.0, 1.0), eta=eta, t=2.0, **SMALL)
        th = model.trajectory([2.0])["sigma_hat"][-1, 0]
        sim = mlp.linear_trajectory(model, [2.0], trials=8, batch=512, seed=2)
        x = sim["sigma_hat"][-1, :, 0]
        means.append(x.mean())
        sems.append(x.std(ddof=1) / np.sqrt(x.size))
        devs.append(abs(x.mean() - th))
    assert devs[0] > devs[2]  # the trend: smaller steps, closer to the flow
    c0, se0 = extrapolate_1_over_n([1 / e for e in etas], means, sems)
    assert abs(c0 - th) <= N_SE * se0 + 2e-3, (c0, se0, th, devs)


def test_minibatch_noise_falls_like_one_over_sqrt_batch():
    model = FA(rule="bp", spectrum=(2.0, 1.0), eta=0.01, t=1.5, **SMALL)
    spread = {}
    for batch in (32, 512):
        sim = mlp.linear_trajectory(model, [1.5], trials=8, batch=batch, seed=4)
        spread[batch] = sim["loss"][-1].std(ddof=1)
    ratio = spread[32] / spread[512]
    assert 2.0 < ratio < 8.0, ratio  # sqrt(16) = 4, with the spread of an 8-trial estimate


def test_mutation_wrong_feedback_matrix_fails_agreement():
    """W2^T delivered instead of the rule's Q P: the check must detect it."""
    model = FA(rule="fixed", spectrum=(3.0, 2.0, 1.0), r=1, eta=0.01, t=3.0, **SMALL)
    ok, *_ = agreement(model, [1.5, 3.0])
    assert ok

    def transport(W2, B, Q, P):
        return np.swapaxes(W2, -1, -2)

    bad, excess, *_ = agreement(model, [1.5, 3.0], feedback_override=transport)
    assert not bad and excess > 0.05


def test_simulate_contract_keys_and_refusals():
    keys = FA.contract["simulate"]
    out = meanfield.simulate("feedback_alignment", dict(t=1.0, **SMALL), trials=2, seed=0)
    assert out["status"] == "ok" and all(k in out for k in keys)
    assert len(out["sigma_hat"]) == len(out["sigma_hat_sem"]) == 4
    one = meanfield.simulate("feedback_alignment", dict(t=0.5, **SMALL), trials=1)
    assert one["loss_sem"] is None and one["loss"] is not None
    with pytest.raises(ParamError, match="^eta must be"):
        meanfield.simulate("feedback_alignment", dict(eta=0.5), trials=1)
    with pytest.raises(ParamError, match="^optimizer must be"):
        meanfield.simulate("feedback_alignment", {}, trials=1, optimizer="lbfgs")
    tr = mlp.simulate_feedback(FA(t=20, eta=0.001), size=16, trials=1, seed=0, max_seconds=0.5)
    assert tr["status"] == "not_converged" and "budget" in tr["message"]


def test_adam_learns():
    model = FA(rule="normative", spectrum=(2.0, 1.0), eta=0.01, t=2.0, **SMALL)
    sim = mlp.linear_trajectory(model, [0.0, 2.0], trials=2, optimizer="adam", seed=0)
    assert np.all(sim["loss"][-1] < 0.1 * sim["loss"][0])


def test_alignment_metrics():
    rng = np.random.default_rng(0)
    W = rng.normal(size=(5, 7))
    a = mlp.alignment(W, W.T, delta=rng.normal(size=(9, 5)))
    assert a["matrix_angle"] < 1e-5 and a["recon"] < 1e-12 and a["delivered_angle"] < 1e-5
    b = mlp.alignment(W, -W.T, delta=rng.normal(size=(9, 5)))
    assert abs(b["matrix_angle"] - 180) < 1e-5 and abs(b["delivered_angle"] - 180) < 1e-4
    U = np.linalg.qr(rng.normal(size=(5, 5)))[0]
    c = mlp.alignment(W, W.T, P=U[:, :2].T, Ud=U[:, :2])
    assert abs(c["overlap"] - 1) < 1e-12


# -- real data: digits ---------------------------------------------------------------------------
@functools.cache
def _digits():
    return mlp.digits()


def _train(rule, r=10, **kw):
    D = _digits()
    kw.setdefault("epochs", 6)
    return mlp.train_mlp(
        D["Xtr"], D["ytr"], D["Xte"], D["yte"], hidden=(64, 64), rule=rule, r=r, seed=0, **kw
    )


def test_digits_bp_and_low_rank_feedback():
    bp = _train("bp")
    assert bp["best_test_acc"] > 0.93
    full = _train("normative", r=64, init_feedback="svd", kappa=10)
    low = _train("fixed", r=1)
    assert full["best_test_acc"] > bp["best_test_acc"] - 0.03
    assert low["best_test_acc"] < full["best_test_acc"]
    assert all(v["matrix_angle"] < 30 for v in full["alignment"].values())


@pytest.mark.parametrize("rule", ["fa", "dfa", "local", "oja"])
def test_digits_every_rule_learns(rule):
    out = _train(rule, r=8, epochs=3)
    assert out["best_test_acc"] > 0.5  # chance is 0.1


# -- CUDA path -------------------------------------------------------------------------------------
@functools.cache
def _parity() -> dict:
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", PYTHONPATH=str(HERE.parents[1]))
    res = subprocess.run(
        [sys.executable, str(HERE / "_cuda_parity_script.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


@pytest.mark.cudasim
def test_cpu_cuda_parity_under_simulator():
    # same host data, same optimiser body; the products are summed in a
    # different order (one thread per entry vs BLAS), the MLP's element-wise steps are
    # numpy on the CPU and the scalar bodies on the GPU: agreement to 1e-12 (measured
    # at most 4.4e-16; a 0.1% error in the softmax body shows as 1e-5)
    out = _parity()
    assert {k for k in out if k.startswith("mlp_")} >= {"mlp_bp_sgd_tanh", "mlp_oja_sgd_tanh"}
    for name, diff in out.items():
        assert diff < 1e-12, (name, diff)


@pytest.mark.parametrize("act", ["tanh", "relu", "linear"])
def test_mlp_bodies_equal_the_numpy_cpu_path(act):
    """The scalar bodies the GPU runs (compiled here for the CPU) against Ops' numpy forms,
    element-wise within 4 eps relative (tanh/exp/log of two libraries: <= 1-2 ulp each)."""
    rng = np.random.default_rng(4)
    ops, k = mlp.Ops("cpu"), mlp._cpu_nn()
    eps = np.finfo(float).eps
    A = rng.normal(size=(1, 7, 5)) * 3
    bias = rng.normal(size=(1, 1, 5))
    a_np, h_np = ops.bias_act(A, bias, act)
    a_b, h_b = np.empty(A.size), np.empty(A.size)
    k["bias_act"](A.reshape(-1), bias.reshape(-1), a_b, h_b, mlp.ACT_CODES[act], 5)
    np.testing.assert_array_equal(a_b, a_np.reshape(-1))
    np.testing.assert_allclose(h_b, h_np.reshape(-1), rtol=4 * eps, atol=0)
    D = rng.normal(size=(1, 7, 5))
    d_b = np.empty(D.size)
    k["dact"](D.reshape(-1), a_np.reshape(-1), h_np.reshape(-1), d_b, mlp.ACT_CODES[act])
    np.testing.assert_allclose(d_b, ops.dact(D, a_np, h_np, act).reshape(-1), rtol=4 * eps)
    if act == "relu":  # the derivative switches at a > 0 exactly
        assert np.all(d_b[a_np.reshape(-1) <= 0] == 0) and np.any(d_b != 0)


def test_xent_and_colsum_bodies_equal_the_numpy_cpu_path():
    rng = np.random.default_rng(5)
    ops, k = mlp.Ops("cpu"), mlp._cpu_nn()
    eps = np.finfo(float).eps
    Z = rng.normal(size=(1, 6, 4)) * 5
    Z[0, 0, 0] = 800.0  # a huge logit: the max shift keeps exp finite, p -> 1e-300 floor
    Y = np.eye(4)[[0, 1, 2, 3, 1, 0]][None]
    E_np, L_np = ops.softmax_xent(Z, Y, 0.25)
    E_b, L_b = np.empty(Z.size), np.empty(6)
    k["xent"](Z.reshape(-1), Y.reshape(-1), E_b, L_b, 0.25, 4)
    assert np.all(np.isfinite(E_b)) and np.all(np.isfinite(L_b))
    np.testing.assert_allclose(E_b, E_np.reshape(-1), rtol=16 * eps, atol=16 * eps)
    np.testing.assert_allclose(L_b, L_np, rtol=16 * eps)
    # independent check: E sums to zero per row (softmax minus one-hot) and L >= 0
    np.testing.assert_allclose(E_b.reshape(6, 4).sum(1), 0.0, atol=16 * eps)
    assert np.all(L_b >= 0)
    D = rng.normal(size=(1, 6, 4))
    c_b = np.empty(4)
    k["colsum"](D.reshape(-1), c_b, -1.0, 6, 4)
    np.testing.assert_allclose(c_b, ops.colsum(D, -1.0).reshape(-1), rtol=8 * eps)


def test_train_mlp_bad_backend_is_a_param_error():
    D = _digits()
    with pytest.raises(ParamError, match="^backend must be"):
        mlp.train_mlp(D["Xtr"], D["ytr"], D["Xte"], D["yte"], epochs=1, backend="tpu")
    with pytest.raises(ParamError, match="^activation must be"):
        mlp.train_mlp(D["Xtr"], D["ytr"], D["Xte"], D["yte"], epochs=1, activation="gelu")


class _Hopper:
    compute_capability = (9, 0)


@pytest.mark.cudasim
@pytest.mark.skipif(
    os.environ.get("NUMBA_ENABLE_CUDASIM") == "1",
    reason="PTX needs the real CUDA target, not the simulator",
)
@pytest.mark.parametrize(
    "name",
    [
        "gemm",
        "xent",
        pytest.param("opt", marks=pytest.mark.slow),
        pytest.param("axpby", marks=pytest.mark.slow),
        pytest.param("bias_act", marks=pytest.mark.slow),
        pytest.param("dact", marks=pytest.mark.slow),
        pytest.param("colsum", marks=pytest.mark.slow),
    ],
)
def test_kernels_compile_to_ptx(name):
    import numba.cuda.dispatcher as dispatcher
    from numba import boolean, cuda, float64, int64

    k = mlp.cuda_kernels()
    sigs = {
        "opt": (float64[:], float64[:], float64[:], float64[:], float64[:]),
        "gemm": (
            float64[:, :, :],
            float64[:, :, :],
            float64[:, :, :],
            float64,
            float64,
            boolean,
            boolean,
        ),
        "axpby": (float64[:], float64[:], float64[:], float64, float64),
        "bias_act": (float64[:], float64[:], float64[:], float64[:], int64, int64),
        "dact": (float64[:], float64[:], float64[:], float64[:], int64),
        "xent": (float64[:], float64[:], float64[:], float64[:], float64, int64),
        "colsum": (float64[:], float64[:], float64, int64, int64),
    }
    assert set(sigs) == set(mlp.CUDA_KERNELS)
    with mock.patch.object(dispatcher, "get_current_device", lambda: _Hopper()):
        ptx, _ = cuda.compile_ptx(k[name].py_func, sigs[name], cc=(9, 0))
    assert ".entry" in ptx and "sm_90" in ptx, name
