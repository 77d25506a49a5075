"""float32 storage on the CUDA path under the simulator, and ``simulate(..., backend="cuda")``.

One ``NUMBA_ENABLE_CUDASIM=1`` subprocess (``_float32_script.py``; issue 8,
item 4) runs rank-1 (orders 2 and 3) and rank-2 (order 3) AMP with the
observed tensor stored in float32, on the CPU and on the CUDA path, on the
same instance, with launch tuning shrunk so that small inputs span many
blocks. Tolerances, in units of float32 eps (``EPS32 = 2**-23``):

* **parity** (CPU float32 vs CUDA float32): both read the same float32
  entries and accumulate in float64 (``acc = 0.0`` in every kernel), so they
  differ only by float64 summation order: ``< 1e-6 EPS32`` (1.2e-13 absolute
  on O(1) estimates; measured <= 3e-8 EPS32). A kernel that accumulated in
  float32 would miss this by orders of magnitude.
* **storage** (float32 vs float64 tensor, both on the CPU): the rounding of
  Y propagated through 6-15 iterations: ``<= 16 EPS32 x max|xhat|`` (measured
  0.2-0.9 EPS32 relative), and not zero (float32 was really used).

The public :func:`meanfield.simulate` with ``backend="cuda"`` (float32) must
return the CPU summaries: same status and iteration counts, every number to
1e-12 relative (1e-13 absolute).
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.cudasim

HERE = Path(__file__).parent
PARITY_EPS32 = 1e-6
STORAGE_EPS32 = 16.0


@functools.cache
def _run() -> dict:
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", PYTHONPATH=str(HERE.parents[1]))
    res = subprocess.run(
        [sys.executable, str(HERE / "_float32_script.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout)


CASES = [("rank1", "order2"), ("rank1", "order3"), ("rank2", "order3")]


@pytest.mark.parametrize("engine,case", CASES, ids=[f"{e}-{c}" for e, c in CASES])
def test_float32_cpu_cuda_parity(engine, case):
    d = _run()[engine][case]
    assert d["parity"] < PARITY_EPS32, d["parity"]
    assert 0.0 < d["storage"] <= STORAGE_EPS32 * d["scale"], (d["storage"], d["scale"])
    # the runs did something: informative overlaps on some mode
    assert np.max(np.abs(d["overlap_cpu"])) > 0.3
    np.testing.assert_allclose(d["overlap_gpu"], d["overlap_cpu"], rtol=0, atol=1e-13)


def _flat(v):
    return np.ravel(np.asarray(v, dtype=float))


@pytest.mark.parametrize("case", ["order2", "order3", "order3-rank2"])
def test_simulate_backend_cuda_summaries(case):
    d = _run()["simulate"][case]
    cpu, gpu = d["cpu"], d["cuda"]
    assert set(gpu) == set(cpu)
    assert {"overlap", "overlap_sem", "mse", "mse_sem", "status"} <= set(cpu)
    assert gpu["status"] == cpu["status"]
    for k, v in cpu.items():
        if k == "status":
            continue
        if k in ("iterations", "converged"):
            assert gpu[k] == v, k
            continue
        np.testing.assert_allclose(_flat(gpu[k]), _flat(v), rtol=1e-12, atol=1e-13, err_msg=k)
    assert np.max(np.abs(_flat(cpu["overlap"]))) > 0.3
