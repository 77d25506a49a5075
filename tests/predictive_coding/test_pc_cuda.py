"""The rate network's CUDA path: CPU parity under the CUDA simulator, and real PTX.

The CUDA kernels call the same sympy-generated Euler-Maruyama body as the CPU kernel
(``sims.engines.network``) and get the same host-side noise, so a few steps agree to
rounding (the sums are associated differently: a tree reduction for ``xhat``,
shared-memory tiles for the disorder product): tolerance 1e-12 absolute on ``h``,
``xhat`` and the error moments. Every CUDA kernel of the engine compiles to PTX for
compute capability 9.0 without a GPU (design.md; patched ``get_current_device``).
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

pytestmark = pytest.mark.cudasim

HERE = Path(__file__).parent
QUANTITIES = ("H", "trace", "mean_err", "var_err")
#: name -> (model params, engine options); small networks, a few tens of steps
CASES = {
    "noise": (dict(b=10, n=24), dict(dt=0.004, t_max=0.04)),
    "delay_feedback": (dict(b=5, d=0.02, n=20, x=0.4), dict(dt=0.005, t_max=0.05)),
    "disorder_independent": (dict(b=3, g=1.5, sigma=0.5, n=20), dict(dt=0.01, t_max=0.08)),
    "disorder_shared_delay_all": (dict(b=3, g=1.5, d=0.02, delay_on="all", n=21),
                                  dict(network="shared", dt=0.005, t_max=0.04)),
    "binary_ou": (dict(b=4, weights="binary", input="ou", amp=0.2, n=18),
                  dict(dt=0.01, t_max=0.06)),
}
PUBLIC = dict(params=dict(b=10, n=24), trials=2, seed=1, dt=0.004, t_max=0.04, t_burn=0.01,
              init="zero")


def run_case(name: str, backend: str) -> dict:
    from meanfield.sims.engines.network import run_rate_network

    import meanfield

    p, kw = CASES[name]
    m = meanfield.get_model("predictive_coding")(**p)
    r = run_rate_network(m, m["n"], 3, 7, t_burn=0.01, record=3, backend=backend, init="random",
                         **kw)
    return {q: r[q] for q in QUANTITIES}


@functools.cache
def _cuda_results() -> dict:
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", PYTHONPATH=str(HERE.parents[1]))
    res = subprocess.run(
        [sys.executable, str(HERE / "_cuda_parity_script.py"), str(HERE)],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout)


@pytest.mark.skipif(os.environ.get("NUMBA_ENABLE_CUDASIM") == "1",
                    reason="compares with the CPU path in this process")
@pytest.mark.parametrize("name", list(CASES))
def test_rate_network_cuda_matches_cpu_under_simulator(name):
    cpu = run_case(name, "cpu")
    gpu = _cuda_results()[name]
    for q in QUANTITIES:
        np.testing.assert_allclose(np.asarray(gpu[q]), cpu[q], rtol=0, atol=1e-12, err_msg=q)


@pytest.mark.skipif(os.environ.get("NUMBA_ENABLE_CUDASIM") == "1",
                    reason="compares with the CPU path in this process")
def test_public_simulate_backend_cuda():
    import meanfield

    gpu = _cuda_results()["public_api"]
    cpu = meanfield.simulate("predictive_coding", backend="cpu", **PUBLIC)
    assert gpu["status"] == cpu["status"] == "ok"
    for k in ("bias", "std", "error", "bias_sem", "std_sem", "error_sem"):
        assert gpu[k] == pytest.approx(cpu[k], rel=1e-10, abs=1e-14), k


class _Hopper:
    compute_capability = (9, 0)


def _compile_ptx(kernel, sig):
    import numba.cuda.dispatcher as dispatcher
    from numba import cuda

    with mock.patch.object(dispatcher, "get_current_device", lambda: _Hopper()):
        ptx, _ = cuda.compile_ptx(kernel.py_func, sig, cc=(9, 0))
    return ptx


@pytest.mark.skipif(os.environ.get("NUMBA_ENABLE_CUDASIM") == "1",
                    reason="PTX needs the real CUDA target, not the simulator")
@pytest.mark.parametrize("phi", ["tanh", pytest.param("Max(0, h)", marks=pytest.mark.slow),
                                 pytest.param("1/(1 + exp(-h))", marks=pytest.mark.slow)])
def test_rate_network_kernels_compile_to_ptx(phi):
    from meanfield.sims.engines import network
    from numba import float64, int64

    import meanfield

    m = meanfield.get_model("predictive_coding")(phi=phi)
    xhat, matvec, gemm, update = network._cuda_kernels(network.update_body(m.phi.expr))
    f2, f3 = float64[:, :], float64[:, :, :]
    i = int64
    sigs = {
        xhat: (f2, f2, f2, f2, f2, f2, i, i, i, i),
        matvec: (f2, f3, f3, i),
        gemm: (f2, f3, f3, i),
        update: (f2, f2, f2, f3, i, f2, f2, i, i, float64, float64, float64, float64, f3),
    }
    for kern, sig in sigs.items():
        ptx = _compile_ptx(kern, sig)
        assert ".entry" in ptx and "sm_90" in ptx


# -- the spiking engine -------------------------------------------------------------------

SPIKING_QUANTITIES = ("mean_err", "var_err", "raster", "trace", "r")
#: name -> (model params, rule); a few tens of steps, spikes in every case
SPIKING_CASES = {
    "one": (dict(b=40, n=20), "one"),
    "all_delay": (dict(b=10, n=20, d=0.005), "all"),
    "one_delay_gaussian": (dict(b=10, n=19, d=0.004, weights="gaussian"), "one"),
}


def run_spiking_case(name: str, backend: str) -> dict:
    from meanfield.sims.engines.spiking import run_spiking_network

    import meanfield

    p, rule = SPIKING_CASES[name]
    p = dict(dict(weights="binary"), **p)
    m = meanfield.get_model("predictive_coding")(engine="spiking", sigma=0.3, **p)
    r = run_spiking_network(m, m["n"], 2, 3, t_max=0.05, t_burn=0.01, dt=1e-3, rule=rule,
                            record=60, backend=backend)
    return {q: r[q] for q in SPIKING_QUANTITIES}


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("NUMBA_ENABLE_CUDASIM") == "1",
                    reason="compares with the CPU path in this process")
@pytest.mark.parametrize("name", list(SPIKING_CASES))
def test_spiking_cuda_matches_cpu_under_simulator(name):
    """Same spikes (raster, readouts) and moments to rounding of the block sums."""
    cpu = run_spiking_case(name, "cpu")
    gpu = _spiking_cuda_results()[name]
    assert cpu["raster"].sum() > 0
    for q in SPIKING_QUANTITIES:
        np.testing.assert_allclose(np.asarray(gpu[q], dtype=float), cpu[q], rtol=0,
                                   atol=1e-12, err_msg=q)


@functools.cache
def _spiking_cuda_results() -> dict:
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", PYTHONPATH=str(HERE.parents[1]))
    res = subprocess.run(
        [sys.executable, str(HERE / "_spiking_cuda_script.py"), str(HERE)],
        env=env, capture_output=True, text=True, timeout=900,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout)


@pytest.mark.skipif(os.environ.get("NUMBA_ENABLE_CUDASIM") == "1",
                    reason="PTX needs the real CUDA target, not the simulator")
def test_spiking_kernel_compiles_to_ptx():
    from meanfield.sims.engines import spiking
    from numba import boolean, float64, int64, uint8

    f1, f2, f3 = float64[:], float64[:, :], float64[:, :, :]
    i = int64
    sig = (f2, f2, f2, f2, f2, f1, f1, uint8[:, :, :], f2, f3, i, i, float64, float64, f2,
           boolean, i, f2, f2, uint8[:, :], f2)
    ptx = _compile_ptx(spiking._cuda_kernel(), sig)
    assert ".entry" in ptx and "sm_90" in ptx
