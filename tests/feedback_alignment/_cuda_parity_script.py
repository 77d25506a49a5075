"""Run under NUMBA_ENABLE_CUDASIM=1: the linear engine on cpu and cuda, print max differences."""

import json

import numpy as np
from meanfield.sims.engines.learning.mlp import linear_trajectory

import meanfield

FA = meanfield.get_model("feedback_alignment")
out = {}
for rule, opt in [("bp", "sgd"), ("normative", "adam"), ("oja", "sgd")]:
    m = FA(rule=rule, n=4, k=4, m=3, spectrum=(2.0, 1.0), r=1, eta=0.01, t=0.02)
    res = {}
    for backend in ("cpu", "cuda"):
        res[backend] = linear_trajectory(
            m, [0.01, 0.02], trials=2, seed=3, batch=6, optimizer=opt, backend=backend
        )
    out[f"{rule}_{opt}"] = max(
        float(np.max(np.abs(np.asarray(res["cpu"][k]) - np.asarray(res["cuda"][k]))))
        for k in ("loss", "sigma_hat", "d_norm")
    )
print(json.dumps(out))
