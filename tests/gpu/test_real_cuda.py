"""On a real NVIDIA GPU (``make test-gpu``): the CUDA path equals the CPU path.

Deselected by ``make test`` (marker ``gpu``); the simulator version of this
check runs in CI (``tests/cudasim``).
"""

import numpy as np
import pytest
from meanfield.sims.engines.amp import run_amp, sample_instance

from meanfield import get_model

pytestmark = pytest.mark.gpu


@pytest.mark.parametrize(
    "params,size",
    [
        (dict(order=2, prior="rademacher", delta=0.5), 512),
        (dict(order=3, prior="gaussian", mean=0.6, delta=0.4), 120),
    ],
)
def test_gpu_matches_cpu(params, size):
    model = get_model("tensor")(**params)
    inst = sample_instance(model, size, 2, seed=1)
    cpu = run_amp(model, size, instance=inst, max_iter=20, tol=0.0, backend="cpu")
    gpu = run_amp(model, size, instance=inst, max_iter=20, tol=0.0, backend="cuda")
    for c, g in zip(cpu.estimates, gpu.estimates, strict=True):
        np.testing.assert_allclose(g, c, rtol=1e-9, atol=1e-11)
