"""Run under NUMBA_ENABLE_CUDASIM=1: AMP on the CUDA path equals the CPU path.

Both backends get the same pre-generated instance (data and initial noise);
launch tuning is shrunk so small inputs span many blocks. Rank one
(``run_amp``) and rank r (``run_amp_rank``: vector update kernel,
per-component contractions); prints ``{engine: {case: max |cpu - gpu|}}``.
"""

import json
import sys

import numpy as np
from meanfield.sims import _targets
from meanfield.sims.engines.amp import run_amp, sample_instance
from meanfield.sims.engines.amp_rank import run_amp_rank

from meanfield import get_model

_targets.CONFIG.threads_per_block = 8
_targets.CONFIG.max_blocks = 3
ENGINES = {
    "rank1": (
        run_amp,
        4,
        {
            "order2": (dict(order=2, prior="rademacher,gaussian", delta=0.5, shape="1,1.5"), 10),
            "order3": (dict(order=3, prior="sparse_rademacher", rho=0.5, delta=0.1), 5),
        },
    ),
    "rank2": (
        run_amp_rank,
        3,
        {
            "order2": (
                dict(order=2, prior="rademacher,gaussian", delta=0.5, shape="1,1.5", rank=2),
                8,
            ),
            "order3": (dict(order=3, prior="gauss_bernoulli", rho=0.5, delta=0.1, rank=2), 5),
        },
    ),
}
out = {}
for engine, (run, iters, cases) in ENGINES.items():
    out[engine] = {}
    for name, (params, size) in cases.items():
        model = get_model("tensor")(**params)
        inst = sample_instance(model, size, 2, seed=5)
        cpu = run(model, size, instance=inst, max_iter=iters, tol=0.0, backend="cpu")
        gpu = run(model, size, instance=inst, max_iter=iters, tol=0.0, backend="cuda")
        out[engine][name] = max(
            float(np.max(np.abs(c - g))) for c, g in zip(cpu.estimates, gpu.estimates, strict=True)
        )
json.dump(out, sys.stdout)
