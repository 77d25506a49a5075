"""Run under NUMBA_ENABLE_CUDASIM=1: the spiking network on the CUDA path.

Runs ``test_pc_cuda.SPIKING_CASES`` with ``backend="cuda"`` (block of 8 threads so that a
trial's neurons span several threads and the arg-max / sums are real reductions); the
parent test compares with the CPU path. Prints JSON ``{case: {quantity: list}}``.
"""

import json
import sys

import numpy as np
from meanfield.sims import _targets

sys.path.insert(0, sys.argv[1])
from test_pc_cuda import SPIKING_CASES, run_spiking_case  # noqa: E402

_targets.CONFIG.threads_per_block = 8
out = {}
for name in SPIKING_CASES:
    out[name] = {k: np.asarray(v).tolist() for k, v in run_spiking_case(name, "cuda").items()}
json.dump(out, sys.stdout)
