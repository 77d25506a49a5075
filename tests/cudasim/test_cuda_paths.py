"""The CUDA path: parity with the CPU under the simulator, and real PTX for every kernel."""

import functools
import json
import os
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest

pytestmark = pytest.mark.cudasim

HERE = Path(__file__).parent


@functools.cache
def _parity() -> dict:
    """One simulator subprocess for both engines (``_parity_script.py``)."""
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", PYTHONPATH=str(HERE.parents[1]))
    res = subprocess.run(
        [sys.executable, str(HERE / "_parity_script.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout)


def test_cpu_cuda_parity_under_simulator():
    # same data, same scalar body, sums associated differently (GPU: one
    # thread per output entry; CPU: fused pass): agreement to 1e-12
    for name, d in _parity()["rank1"].items():
        assert d < 1e-12, (name, d)


def test_rank_cpu_cuda_parity_under_simulator():
    """The rank-r engine (vector update kernel, per-component contractions)."""
    for name, d in _parity()["rank2"].items():
        assert d < 1e-12, (name, d)


class _Hopper:
    compute_capability = (9, 0)


def _compile_ptx(kernel, sig):
    import numba.cuda.dispatcher as dispatcher
    from numba import cuda

    with mock.patch.object(dispatcher, "get_current_device", lambda: _Hopper()):
        ptx, _ = cuda.compile_ptx(kernel.py_func, sig, cc=(9, 0))
    return ptx


@pytest.mark.skipif(
    os.environ.get("NUMBA_ENABLE_CUDASIM") == "1",
    reason="PTX needs the real CUDA target, not the simulator",
)
@pytest.mark.parametrize(
    "prior", ["gaussian", "rademacher", "sparse_rademacher", "gauss_bernoulli"]
)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_update_kernel_compiles_to_ptx(prior, dtype):
    from meanfield.sims import _targets
    from meanfield.sims.engines.amp import denoiser_for
    from numba import float32, float64

    from meanfield import make_prior

    ft = {"float64": float64, "float32": float32}[dtype]
    kernel = _targets.update_kernel(_targets.amp_entry(denoiser_for(make_prior(prior))), "cuda")
    ptx = _compile_ptx(kernel, (ft[:], ft[:, :], float64[:], ft[:, :], ft[:, :], ft[:]))
    assert ".entry" in ptx and "sm_90" in ptx


@pytest.mark.skipif(
    os.environ.get("NUMBA_ENABLE_CUDASIM") == "1",
    reason="PTX needs the real CUDA target, not the simulator",
)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_contraction_kernels_compile_to_ptx(dtype):
    from meanfield.sims.engines.amp import _cuda_kernels
    from numba import float32, float64

    ft = {"float64": float64, "float32": float32}[dtype]
    first, last, middle = _cuda_kernels()
    y4 = ft[:, :, :, :]
    assert "sm_90" in _compile_ptx(first, (y4, float64[:, :], float64[:, :], float64[:, :]))
    assert "sm_90" in _compile_ptx(last, (y4, float64[:, :], float64[:, :], float64[:, :]))
    assert "sm_90" in _compile_ptx(middle, (y4, float64[:, :], float64[:, :], float64[:, :]))


@pytest.mark.skipif(
    os.environ.get("NUMBA_ENABLE_CUDASIM") == "1",
    reason="PTX needs the real CUDA target, not the simulator",
)
@pytest.mark.parametrize(
    "prior,rank", [("gaussian", 2), ("rademacher", 2), ("gauss_bernoulli", 2), ("gaussian", 3)]
)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_vector_update_kernel_compiles_to_ptx(prior, rank, dtype):
    from meanfield.sims import _targets
    from meanfield.sims.engines.amp_rank import vector_denoiser_for
    from numba import float32, float64

    from meanfield import make_prior

    ft = {"float64": float64, "float32": float32}[dtype]
    den = vector_denoiser_for(make_prior(prior), rank)
    kernel = _targets.update_kernel(_targets.vector_amp_entry(den, rank), "cuda")
    sig = (ft[:, :], ft[:, :, :], float64[:], ft[:, :, :], ft[:, :, :], ft[:])
    ptx = _compile_ptx(kernel, sig)
    assert ".entry" in ptx and "sm_90" in ptx
