"""Run under NUMBA_ENABLE_CUDASIM=1: each engine on cpu and cuda, print max differences.

The linear engine (three rules and both optimisers) and the nonlinear MLP trainer
(tanh and relu, SGD and Adam, every code path of the rules) on a tiny 3-class
problem: the same host data; on the GPU the scalar bodies, on the CPU numpy.
"""

import json

import numpy as np
from meanfield.sims.engines.learning.mlp import linear_trajectory, train_mlp

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

rng = np.random.default_rng(0)
Xtr, Xte = rng.standard_normal((10, 5)), rng.standard_normal((6, 5))
ytr, yte = np.arange(10) % 3, np.arange(6) % 3
# every code path once: activations (tanh, relu), optimisers (sgd, adam), the error
# delivered through W (bp), a fixed matrix (dfa; fa is the same product), Q P with the
# normative, local and Oja updates (fixed is the same product without updates)
cases = [
    ("bp", "sgd", "tanh"),
    ("dfa", "adam", "relu"),
    ("normative", "adam", "tanh"),
    ("local", "sgd", "relu"),
    ("oja", "sgd", "tanh"),
]
for rule, opt, act in cases:
    res = {}
    for backend in ("cpu", "cuda"):
        res[backend] = train_mlp(
            Xtr, ytr, Xte, yte, hidden=(4, 3), rule=rule, r=2, activation=act,
            optimizer=opt, lr=0.1 if opt == "sgd" else 0.01, epochs=2, batch=5, seed=1,
            backend=backend,
        )  # fmt: skip
    a, b = res["cpu"], res["cuda"]
    diffs = [abs(x - y) for x, y in zip(a["train_loss"], b["train_loss"], strict=True)]
    diffs += [abs(x - y) for x, y in zip(a["test_acc"], b["test_acc"], strict=True)]
    for lyr, al in a["alignment"].items():
        # angles in degrees: arccos near 1 amplifies round-off, compare the cosine-free keys
        diffs += [abs(al[k] - b["alignment"][lyr][k]) for k in ("recon",) if k in al]
    out[f"mlp_{rule}_{opt}_{act}"] = max(diffs)
print(json.dumps(out))
