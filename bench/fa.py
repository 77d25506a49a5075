"""Low-dimensional feedback alignment: backward pass of one layer and one training epoch.

Rows (Hanut & Kadmon 2025; digest §3.3):

* the backward pass of a 4096 x 4096 linear layer (batch 256, float32 BLAS) with
  rank-r feedback, ``dW = delta^T h`` plus ``(delta P^T) Q^T``, against backprop's
  ``dW`` plus ``delta W``, at r = 8, 32, 128; the notes give the FLOP model's ratio
  ``1/2 + r (n_in + n_out) / (2 n_in n_out)`` (over a whole forward + backward step
  the saving is at most one third);
* one training epoch of the MLP trainer (digits, 64-256-256-10, SGD, batch 32, then the
  test-set accuracy) against the same epoch written out in plain numpy (same initial
  weights and minibatch order: the losses agree to round-off), for backprop and for
  normative rank-10 feedback;
* with the ``[torch]`` extra (``make bench-torch``): the same backprop epoch against torch
  autograd on the CPU (float64, one thread, the same initial weights and minibatch order,
  so the losses agree to round-off), and :class:`meanfield.torch_layers.LDFALinear`'s
  backward pass (4096 wide, fixed feedback) against ``nn.Linear``'s. Without torch
  (``make bench`` runs in the core install) these rows say they were skipped, and why.
"""

from __future__ import annotations

import numpy as np

from ._timing import Row, race

__all__ = ["run"]


def _numpy_epoch(D, hidden, lr, batch, seed):
    """The same MLP epoch (tanh, softmax cross-entropy, SGD, backprop) in plain numpy.

    The trainer's initial weights and minibatch order (:func:`_engine_init`), the epoch's
    mean training loss, then the test-set accuracy (the trainer evaluates it after every
    epoch). Returns ``(loss, accuracy)``.
    """
    sizes = [D["Xtr"].shape[1], *hidden, 10]
    W, rng = _engine_init(sizes, seed)
    b = [np.zeros((1, s)) for s in sizes[1:]]
    Y = np.eye(10)[D["ytr"]]
    perm = rng.permutation(len(Y))
    tot = 0.0
    for s0 in range(0, len(Y), batch):
        idx = perm[s0 : s0 + batch]
        hs = [D["Xtr"][idx]]
        for i in range(len(W)):
            a = hs[-1] @ W[i].T + b[i]
            hs.append(np.tanh(a) if i < len(W) - 1 else a)
        z = hs[-1] - hs[-1].max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        tot -= float(np.sum(np.log(p[np.arange(len(idx)), D["ytr"][idx]])))
        d = (p - Y[idx]) / len(idx)
        for i in range(len(W) - 1, -1, -1):
            gW, gb = d.T @ hs[i], d.sum(axis=0, keepdims=True)
            if i > 0:
                d = (d @ W[i]) * (1 - hs[i] ** 2)
            W[i] -= lr * gW
            b[i] -= lr * gb
    h = D["Xte"]
    for i in range(len(W)):
        h = h @ W[i].T + b[i]
        h = np.tanh(h) if i < len(W) - 1 else h
    return tot / len(Y), float(np.mean(np.argmax(h, axis=1) == D["yte"]))


def _torch_missing() -> str | None:
    """Why the torch rows cannot run (``None`` when torch imports)."""
    try:
        import torch  # noqa: F401
    except ImportError as exc:
        return f"skipped: torch not installed ({exc}); make bench-torch runs these rows"
    return None


def _skipped(name: str, baseline: str, why: str) -> Row:
    return Row(name, float("nan"), baseline, float("nan"), notes=why)


def _engine_init(sizes, seed):
    """The MLP trainer's initial weights and first-epoch order for ``rule='bp'``.

    The same draws, in the same order, as ``_train_mlp`` (no feedback matrices are
    drawn for backprop), so the torch epoch trains the identical network.
    """
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 31]))
    W = [
        rng.uniform(-1, 1, (sizes[i + 1], sizes[i])) * np.sqrt(3.0 / sizes[i])
        for i in range(len(sizes) - 1)
    ]
    return W, rng


def _torch_epoch(D, hidden, lr, batch, seed):
    """One SGD epoch of the same tanh MLP under torch autograd, and its test accuracy.

    Returns the mean training loss (softmax cross-entropy summed over the epoch / n,
    as the trainer's ``train_loss``) and the test accuracy.
    """
    import torch

    sizes = [D["Xtr"].shape[1], *hidden, 10]
    W0, rng = _engine_init(sizes, seed)
    layers = []
    for i, w in enumerate(W0):
        lin = torch.nn.Linear(sizes[i], sizes[i + 1], dtype=torch.float64)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(w))
            lin.bias.zero_()
        layers.append(lin)
        if i < len(W0) - 1:
            layers.append(torch.nn.Tanh())
    net = torch.nn.Sequential(*layers)
    opt = torch.optim.SGD(net.parameters(), lr=lr)
    Xtr = torch.from_numpy(np.ascontiguousarray(D["Xtr"], dtype=np.float64))
    ytr = torch.from_numpy(np.asarray(D["ytr"], dtype=np.int64))
    perm = torch.from_numpy(rng.permutation(len(ytr)))
    tot = 0.0
    for s0 in range(0, len(ytr), batch):
        idx = perm[s0 : s0 + batch]
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(net(Xtr[idx]), ytr[idx])
        loss.backward()
        opt.step()
        tot += float(loss.detach()) * len(idx)
    with torch.no_grad():
        pred = net(torch.from_numpy(np.ascontiguousarray(D["Xte"], dtype=np.float64)))
        acc = float((pred.argmax(1).numpy() == D["yte"]).mean())
    return tot / len(ytr), acc


def _torch_layer_rows(width: int, batch: int, ranks, repeats: int) -> list[Row]:
    """``LDFALinear`` (fixed rank-r feedback) backward against ``nn.Linear`` (float32)."""
    import torch
    from meanfield.sims.engines.learning.mlp import flop_model

    from meanfield.torch_layers import LDFALinear

    torch.manual_seed(0)
    x = torch.randn(batch, width, requires_grad=True)
    g = torch.randn(batch, width)

    def backward_of(layer):
        out = layer(x)
        params = [p for p in layer.parameters() if p.requires_grad]
        return lambda: torch.autograd.grad(out, [x, *params], g, retain_graph=True)

    def step_of(layer):  # forward + backward: the per-layer training step
        params = [p for p in layer.parameters() if p.requires_grad]
        return lambda: torch.autograd.grad(layer(x), [x, *params], g)

    ref = torch.nn.Linear(width, width)
    fns = {"bp": backward_of(ref), "bp_step": step_of(ref)}
    for r in ranks:
        layer = LDFALinear(width, width, r=r, rule="fixed", init="random")
        fns[r], fns[("step", r)] = backward_of(layer), step_of(layer)
    t = race(fns, warmup=1, repeats=repeats, budget_s=10.0)
    rows = []
    for r in ranks:
        fm = flop_model(width, width, batch, r)
        step = (2 * batch * width * width + fm["flops"]) / (6 * batch * width * width)
        rows.append(
            Row(
                f"torch LDFALinear backward {width}x{width}, batch {batch}, r={r}",
                t[r],
                "nn.Linear backward (autograd, same layer)",
                t["bp"],
                notes=f"torch {torch.__version__}, {torch.get_num_threads()} thread(s); "
                f"FLOP model {fm['ratio']:.3f}; measured/model {t[r] / t['bp'] / fm['ratio']:.2f}; "
                f"forward+backward step {t[('step', r)] / t['bp_step']:.3f} (model {step:.3f})",
            )
        )
    return rows


def run(quick: bool = False) -> list[Row]:
    from meanfield.sims.engines.learning.mlp import backward_timing, digits, flop_model, train_mlp
    from threadpoolctl import threadpool_limits

    width = 1024 if quick else 4096
    batch = 256
    rows = []
    res = backward_timing(width, width, batch, (8, 32, 128), repeats=3 if quick else 5, threads=1)
    for x in res["ldfa"]:
        fm = flop_model(width, width, batch, x["r"])
        step = (2 * batch * width * width + fm["flops"]) / (6 * batch * width * width)
        rows.append(
            Row(
                f"LDFA backward {width}x{width}, batch {batch}, r={x['r']}",
                x["seconds"],
                "backprop backward (same layer)",
                res["bp_seconds"],
                notes=f"numpy float32, one BLAS thread; FLOP model {fm['ratio']:.3f} "
                f"(whole step {step:.3f}); "
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
    ref = ours("bp")()
    loss_np, acc_np = _numpy_epoch(D, hidden, 0.05, 32, 0)
    same = (
        f"same network: epoch loss {ref['train_loss'][0]:.6f} vs numpy {loss_np:.6f} "
        f"(|diff| {abs(ref['train_loss'][0] - loss_np):.1e}), test acc "
        f"{ref['test_acc'][0]:.4f} vs {acc_np:.4f}"
    )
    for rule in ("bp", "normative"):
        rows.append(
            Row(
                f"MLP epoch digits 64-256-256-10 ({rule}{', r=10' if rule != 'bp' else ''})",
                t[rule],
                "plain-numpy epoch (backprop, same init and order)",
                t["numpy"],
                notes="one BLAS thread; both evaluate the test set, ours also computes the "
                "alignment metrics" + ("; " + same if rule == "bp" else ""),
            )
        )
    rows += _torch_rows(D, hidden, width, batch, quick, ours("bp"))
    return rows


def _torch_rows(D, hidden, width, batch, quick, ours_bp) -> list[Row]:
    """The torch-autograd epoch and the ``LDFALinear`` backward (skipped rows without torch)."""
    epoch_name = "MLP epoch digits 64-256-256-10 (bp), our engine"
    epoch_base = "torch autograd epoch (CPU, float64, same init and order)"
    ranks = (8, 32, 128)
    why = _torch_missing()
    if why is not None:
        return [_skipped(epoch_name, epoch_base, why)] + [
            _skipped(
                f"torch LDFALinear backward {width}x{width}, batch {batch}, r={r}",
                "nn.Linear backward (autograd, same layer)",
                why,
            )
            for r in ranks
        ]
    import torch
    from threadpoolctl import threadpool_limits

    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(1, user_api="blas"):
            ref = ours_bp()
            loss_t, acc_t = _torch_epoch(D, hidden, 0.05, 32, 0)
            t = race(
                {"ours": ours_bp, "torch": lambda: _torch_epoch(D, hidden, 0.05, 32, 0)},
                warmup=1,
                repeats=2 if quick else 4,
                budget_s=20.0,
            )
        dloss = abs(ref["train_loss"][0] - loss_t)
        rows = [
            Row(
                epoch_name,
                t["ours"],
                epoch_base,
                t["torch"],
                notes=f"torch {torch.__version__}, one thread each; same network: epoch loss "
                f"{ref['train_loss'][0]:.6f} vs torch {loss_t:.6f} (|diff| {dloss:.1e}), "
                f"test acc {ref['test_acc'][0]:.4f} vs {acc_t:.4f}",
            )
        ]
        rows += _torch_layer_rows(width, batch, ranks, 2 if quick else 4)
    finally:
        torch.set_num_threads(n_threads)
    return rows
