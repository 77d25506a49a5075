"""Run under NUMBA_ENABLE_CUDASIM=1: float32 storage, CPU against the CUDA path.

For each case one instance is drawn in float64 and stored again in float32
(the same numbers rounded; ``sample_instance`` draws in float64 and casts).
Prints JSON: per engine and case, ``parity`` (max |cpu32 - gpu32| over the
estimates, both backends on the float32 tensor) and ``storage`` (max
|cpu32 - cpu64|, the float32 rounding of Y propagated through AMP), both in
units of float32 eps; then ``simulate``: the public
``meanfield.simulate(..., backend=...)`` summaries for cpu and cuda.
"""

import json
import sys

import numpy as np
from meanfield.sims import _targets
from meanfield.sims.engines.amp import Instance, run_amp, sample_instance
from meanfield.sims.engines.amp_rank import run_amp_rank

import meanfield
from meanfield import get_model

EPS32 = float(np.finfo(np.float32).eps)
_targets.CONFIG.threads_per_block = 8
_targets.CONFIG.max_blocks = 3
CASES = {
    "rank1": (
        run_amp,
        {
            # order 2: the CPU's sequential one-pass schedule against the
            # CUDA path's two field contractions
            "order2": (
                dict(order=2, prior="rademacher,gaussian", delta=0.5, shape="1,1.5"),
                32,
                3,
                15,
            ),
            # order 3 from the informed start (a random start at N = 12 stays
            # near zero within a few iterations: nothing to compare)
            "order3": (
                dict(order=3, prior="sparse_rademacher", rho=0.5, delta=0.05, init="informed"),
                12,
                3,
                8,
            ),
        },
    ),
    "rank2": (
        run_amp_rank,
        {
            "order3": (
                dict(
                    order=3, prior="gauss_bernoulli", rho=0.5, delta=0.05, rank=2, init="informed"
                ),
                10,
                2,
                6,
            ),
        },
    ),
}
out = {}
for engine, (run, cases) in CASES.items():
    out[engine] = {}
    for name, (params, size, trials, iters) in cases.items():
        model = get_model("tensor")(**params)
        i64 = sample_instance(model, size, trials, seed=7)
        i32 = Instance(i64.signals, i64.Y.astype(np.float32), i64.init_noise, i64.size)
        kw = dict(max_iter=iters, tol=0.0)
        c32 = run(model, size, instance=i32, backend="cpu", dtype="float32", **kw)
        g32 = run(model, size, instance=i32, backend="cuda", dtype="float32", **kw)
        c64 = run(model, size, instance=i64, backend="cpu", **kw)

        def dmax(a, b):
            return max(
                float(np.max(np.abs(x - y))) for x, y in zip(a.estimates, b.estimates, strict=True)
            )

        scale = max(float(np.max(np.abs(x))) for x in c64.estimates)
        out[engine][name] = {
            "parity": dmax(c32, g32) / EPS32,
            "storage": dmax(c32, c64) / EPS32,
            "scale": scale,
            "overlap_cpu": c32.overlap.tolist(),
            "overlap_gpu": g32.overlap.tolist(),
        }
sims = {}
for name, params, size in [
    ("order2", dict(order=2, prior="rademacher,gaussian", delta=0.5, shape="1,1.5"), 32),
    ("order3", dict(order=3, prior="rademacher", delta=0.2, init="informed"), 12),
    ("order3-rank2", dict(order=3, prior="gaussian", delta=0.05, rank=2, init="informed"), 10),
]:
    sims[name] = {
        b: meanfield.simulate(
            "tensor", params, size=size, trials=3, seed=4, backend=b, dtype="float32", max_iter=8
        )
        for b in ("cpu", "cuda")
    }
out["simulate"] = sims
json.dump(out, sys.stdout)
