"""Run under NUMBA_ENABLE_CUDASIM=1: curl-descent training on the CUDA path.

Prints JSON ``{case: {"w1": list, "w2": list}}`` for the cases of
``test_cd_cuda.CASES`` (the parent test runs the CPU path and compares). Launch tuning is
shrunk so the tiny batches span several blocks.
"""

import json
import sys

import numpy as np
from meanfield.sims import _targets

sys.path.insert(0, sys.argv[1])
from test_cd_cuda import CASES, run_case  # noqa: E402

_targets.CONFIG.threads_per_block = 4
_targets.CONFIG.max_blocks = 3
out = {}
for name in CASES:
    w1, w2 = run_case(name, "cuda")
    out[name] = {"w1": np.asarray(w1).tolist(), "w2": np.asarray(w2).tolist()}
json.dump(out, sys.stdout)
