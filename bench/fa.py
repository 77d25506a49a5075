"""Low-dimensional feedback alignment: backward pass of one layer and one training epoch.

Rows (Hanut & Kadmon 2025; digest §3.3):

* the backward pass of a 4096 x 4096 linear layer (batch 256, float32 BLAS) with
  rank-r feedback, ``dW = delta^T h`` plus ``(delta P^T) Q^T``, against backprop's
  ``dW`` plus ``delta W``, at r = 8, 32, 128; the notes give the FLOP model's ratio
  ``1/2 + r (n_in + n_out) / (2 n_in n_out)`` (over a whole forward + backward step
  the saving is at most one third);
* one training epoch of the MLP trainer (digits, 64-256-256-10, SGD, batch 32) against
  an equivalent plain-numpy loop, for backprop and for normative rank-10 feedback.
"""

from __future__ import annotations

import numpy as np

from ._timing import Row, race

__all__ = ["run"]


def _numpy_epoch(D, hidden, lr, batch, seed):
    """The same MLP epoch (tanh, softmax cross-entropy, SGD, backprop) in plain numpy."""
    rng = np.random.default_rng(seed)
    sizes = [D["Xtr"].shape[1], *hidden, 10]
    W = [
        rng.uniform(-1, 1, (sizes[i + 1], sizes[i])) * np.sqrt(3 / sizes[i])
        for i in range(len(sizes) - 1)
    ]
    b = [np.zeros((1, s)) for s in sizes[1:]]
    Y = np.eye(10)[D["ytr"]]
    perm = rng.permutation(len(Y))
    for s0 in range(0, len(Y), batch):
        idx = perm[s0 : s0 + batch]
        hs = [D["Xtr"][idx]]
        for i in range(len(W)):
            a = hs[-1] @ W[i].T + b[i]
            hs.append(np.tanh(a) if i < len(W) - 1 else a)
        z = hs[-1] - hs[-1].max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        d = (p - Y[idx]) / len(idx)
        for i in range(len(W) - 1, -1, -1):
            gW, gb = d.T @ hs[i], d.sum(axis=0, keepdims=True)
            if i > 0:
                d = (d @ W[i]) * (1 - hs[i] ** 2)
            W[i] -= lr * gW
            b[i] -= lr * gb
    return W


def run(quick: bool = False) -> list[Row]:
    from meanfield.sims.engines.learning.mlp import backward_timing, digits, flop_model, train_mlp
    from threadpoolctl import threadpool_limits

    width = 1024 if quick else 4096
    batch = 256
    rows = []
    res = backward_timing(width, width, batch, (8, 32, 128), repeats=3 if quick else 5)
    for x in res["ldfa"]:
        fm = flop_model(width, width, batch, x["r"])
        step = (2 * batch * width * width + fm["flops"]) / (6 * batch * width * width)
        rows.append(
            Row(
                f"LDFA backward {width}x{width}, batch {batch}, r={x['r']}",
                x["seconds"],
                "backprop backward (same layer)",
                res["bp_seconds"],
                notes=f"FLOP model {fm['ratio']:.3f} (whole step {step:.3f}); "
                f"measured/model {x['ratio'] / fm['ratio']:.2f}",
            )
        )
    D = digits()
    hidden = (256, 256)
    with threadpool_limits(1, user_api="blas"):

        def ours(rule):
            return lambda: train_mlp(
                D["Xtr"],
                D["ytr"],
                D["Xte"],
                D["yte"],
                hidden=hidden,
                rule=rule,
                r=10,
                optimizer="sgd",
                lr=0.05,
                epochs=1,
                batch=32,
                seed=0,
            )

        t = race(
            {
                "bp": ours("bp"),
                "normative": ours("normative"),
                "numpy": lambda: _numpy_epoch(D, hidden, 0.05, 32, 0),
            },
            warmup=1,
            repeats=2 if quick else 4,
            budget_s=20.0,
        )
    for rule in ("bp", "normative"):
        rows.append(
            Row(
                f"MLP epoch digits 64-256-256-10 ({rule}{', r=10' if rule != 'bp' else ''})",
                t[rule],
                "plain-numpy epoch (backprop, same sizes)",
                t["numpy"],
                notes="one BLAS thread; includes the test-set evaluation and alignment metrics",
            )
        )
    return rows
