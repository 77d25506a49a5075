"""Run under NUMBA_ENABLE_CUDASIM=1: the rate network on the CUDA path.

Runs the cases of ``test_pc_cuda.CASES`` with ``backend="cuda"`` (the parent test
runs the CPU path in its own process and compares) and the public
``meanfield.simulate(..., backend="cuda")``. Launch tuning and the product's tile
are shrunk so a small network spans several blocks and tiles. Prints JSON
``{case: {quantity: list}}``.
"""

import json
import sys

import numpy as np
from meanfield.sims import _targets
from meanfield.sims.engines import network

import meanfield

sys.path.insert(0, sys.argv[1])
from test_pc_cuda import CASES, PUBLIC, run_case  # noqa: E402

_targets.CONFIG.threads_per_block = 8
_targets.CONFIG.max_blocks = 3
network.TILE = 4  # read at launch and (simulator) in the kernel: set before the first run
out = {}
for name in CASES:
    r = run_case(name, "cuda")
    out[name] = {k: np.asarray(v).tolist() for k, v in r.items()}
out["public_api"] = meanfield.simulate("predictive_coding", backend="cuda", **PUBLIC)
json.dump(out, sys.stdout)
