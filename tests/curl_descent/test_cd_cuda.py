"""The curl-descent engine's CUDA path: CPU parity under the CUDA simulator, and real PTX.

The CUDA kernels run the same per-configuration bodies (``BODY_SOURCE``, and
``LIN_SOURCE`` for linear networks, compiled with ``numba.cuda.jit(device=True)``) as the
CPU path; only the two products differ (a grid-stride loop instead of BLAS, sums associated
differently; the CPU's linear body reassociates its sums): a few epochs agree to 1e-12
absolute. Every kernel compiles to PTX for compute capability 9.0 without a GPU
(design.md; patched ``get_current_device``).
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
#: name -> (phi, batch size, normalise): the linear rank-one epoch (``LIN_SOURCE``), and the
#: general body's tracked-norm (B <= 16) and exact-norm (B > 16) paths
CASES = {
    "lin_rank_one": ("lin", 2, True),
    "tanh_track": ("tanh", 2, True),
    "relu_exact_norm": ("relu", 18, True),
}


def run_case(name: str, backend: str):
    from meanfield.sims.engines.learning import student_teacher as st

    phi, bsz, norm = CASES[name]
    b = st.make_batch(4, 3, [0.0, 0.25, 0.5], [0.0, 1 / 3, 2 / 3], [1, 2, 3], samples=18)
    r = st.train(b, phi=phi, epochs=2, batch_size=bsz, normalize=norm, record=2,
                 backend=backend, threads=1)
    return r["w1"], r["w2"]


@functools.cache
def _cuda_results() -> dict:
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", PYTHONPATH=str(HERE.parents[1]))
    res = subprocess.run([sys.executable, str(HERE / "_cd_cuda_script.py"), str(HERE)],
                         env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout)


@pytest.mark.skipif(os.environ.get("NUMBA_ENABLE_CUDASIM") == "1",
                    reason="compares with the CPU path in this process")
@pytest.mark.parametrize("name", list(CASES))
def test_cuda_matches_cpu_under_simulator(name):
    w1, w2 = run_case(name, "cpu")
    gpu = _cuda_results()[name]
    np.testing.assert_allclose(np.asarray(gpu["w1"]), w1, rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.asarray(gpu["w2"]), w2, rtol=0, atol=1e-12)


class _Hopper:
    compute_capability = (9, 0)


@pytest.mark.skipif(os.environ.get("NUMBA_ENABLE_CUDASIM") == "1",
                    reason="PTX needs the real CUDA target, not the simulator")
@pytest.mark.parametrize("phi", ["tanh", pytest.param("relu", marks=pytest.mark.slow)])
def test_kernels_compile_to_ptx(phi):
    import numba.cuda.dispatcher as dispatcher
    from meanfield.sims.engines.learning import student_teacher as st
    from numba import cuda, float64, int64

    fwd, upd, steps, norm = st.cuda_kernels(phi)
    f1, f2, f3 = float64[::1], float64[:, ::1], float64[:, :, ::1]
    sigs = {
        fwd: (f3, f2, f2, f3),
        upd: (f3, f2, f2, f3),
        steps: (f3, f3, f2, f2, f2, f2, int64[::1], f1, f1, f1, f1, f2, f1),
        norm: (f3, f1, f1, f1),
    }
    for kern, sig in sigs.items():
        with mock.patch.object(dispatcher, "get_current_device", lambda: _Hopper()):
            ptx, _ = cuda.compile_ptx(kern.py_func, sig, cc=(9, 0))
        assert ".entry" in ptx and "sm_90" in ptx


@pytest.mark.skipif(os.environ.get("NUMBA_ENABLE_CUDASIM") == "1",
                    reason="PTX needs the real CUDA target, not the simulator")
def test_linear_epoch_kernel_compiles_to_ptx():
    import numba.cuda.dispatcher as dispatcher
    from meanfield.sims.engines.learning import student_teacher as st
    from numba import cuda, float64, int64

    f1, f2, f3 = float64[::1], float64[:, ::1], float64[:, :, ::1]
    sig = (f3, f2, f2, f2, f2, f1, f1, f1, f1, f2, f3, int64[:, ::1], f2, f2, f2, f1)
    with mock.patch.object(dispatcher, "get_current_device", lambda: _Hopper()):
        ptx, _ = cuda.compile_ptx(st.cuda_lin_kernel().py_func, sig, cc=(9, 0))
    assert ".entry" in ptx and "sm_90" in ptx
