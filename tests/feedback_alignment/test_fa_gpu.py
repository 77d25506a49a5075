"""On a real NVIDIA GPU (``make test-gpu``): the feedback-alignment engines' CUDA path
equals the CPU path. Deselected by ``make test`` (marker ``gpu``); the CUDA-simulator
version runs everywhere (``test_fa_sim.py::test_cpu_cuda_parity_under_simulator``).

Tolerance: the GPU's ``exp``/``tanh`` (libdevice) and fused multiply-adds in the product
kernel differ from the CPU's by an ulp or two per operation; a few hundred SGD steps
amplify that mildly, so losses agree to 1e-8 relative (written without a GPU in this
session: not yet run on one).
"""

import numpy as np
import pytest
from meanfield.sims.engines.learning import mlp

import meanfield

pytestmark = pytest.mark.gpu


def test_linear_engine_gpu_matches_cpu():
    FA = meanfield.get_model("feedback_alignment")
    m = FA(rule="normative", n=16, k=12, m=8, spectrum=(3.0, 2.0, 1.0), r=2, eta=0.01, t=1.0)
    res = {
        b: mlp.linear_trajectory(m, [0.5, 1.0], trials=4, seed=2, batch=64, backend=b)
        for b in ("cpu", "cuda")
    }
    for key in ("loss", "sigma_hat", "d_norm"):
        np.testing.assert_allclose(res["cuda"][key], res["cpu"][key], rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("rule,optimizer", [("bp", "sgd"), ("normative", "adam"), ("oja", "sgd")])
def test_mlp_digits_gpu_matches_cpu(rule, optimizer):
    D = mlp.digits()
    kw = dict(hidden=(32, 16), rule=rule, r=4, optimizer=optimizer, epochs=1, batch=64, seed=0)
    kw["lr"] = 0.05 if optimizer == "sgd" else 1e-3
    cpu = mlp.train_mlp(D["Xtr"], D["ytr"], D["Xte"], D["yte"], backend="cpu", **kw)
    gpu = mlp.train_mlp(D["Xtr"], D["ytr"], D["Xte"], D["yte"], backend="cuda", **kw)
    np.testing.assert_allclose(gpu["train_loss"], cpu["train_loss"], rtol=1e-8)
    assert gpu["test_acc"] == cpu["test_acc"]
