"""Real data: test accuracy against feedback rank r on scikit-learn's digits, with the bp line.

MLP 64-128-128-10 (tanh, softmax cross-entropy, Adam lr 1e-3, batch 32); the
hidden-layer feedback B_l = Q_l P_l has rank min(r, n_in, n_out) (the head's is at most
10, the number of classes = task dimension). Normative (adaptive) and fixed random
low-rank feedback, with FA and DFA for reference. Accuracy is the best test accuracy
over epochs (the authors' convention, digest pitfall 5), mean and SEM over seeds.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from meanfield.sims.engines.learning.mlp import digits, train_mlp

from ._io import new_figure

NAME = "fig32_fa_digits"
RULES = ("normative", "fixed")


def params(quick: bool) -> dict:
    return {
        "data": "sklearn.datasets.load_digits (70/30 stratified split)",
        "hidden": [128, 128],
        "ranks": [1, 2, 4, 10, 32] if quick else [1, 2, 3, 4, 6, 8, 10, 16, 32, 64, 128],
        "epochs": 6 if quick else 30,
        "seeds": [0] if quick else [0, 1, 2],
        "lr": 1e-3,
        "batch": 32,
        "kappa": 10.0,
    }


def compute(quick: bool) -> xr.Dataset:
    P = params(quick)
    D = digits()
    common = dict(hidden=tuple(P["hidden"]), epochs=P["epochs"], lr=P["lr"], batch=P["batch"])

    def run(rule, r, seed):
        return train_mlp(
            D["Xtr"],
            D["ytr"],
            D["Xte"],
            D["yte"],
            rule=rule,
            r=r,
            seed=seed,
            kappa=P["kappa"],
            **common,
        )["best_test_acc"]

    acc = np.array([[[run(rule, r, s) for s in P["seeds"]] for r in P["ranks"]] for rule in RULES])
    ref = {rule: np.array([run(rule, 1, s) for s in P["seeds"]]) for rule in ("bp", "fa", "dfa")}
    return xr.Dataset(
        {
            "acc": (("rule", "r", "seed"), acc),
            **{f"acc_{k}": (("seed",), v) for k, v in ref.items()},
        },
        coords={"rule": list(RULES), "r": P["ranks"], "seed": P["seeds"]},
    )


def _ms(x):
    x = np.asarray(x)
    return x.mean(axis=-1), (
        x.std(axis=-1, ddof=1) / np.sqrt(x.shape[-1]) if x.shape[-1] > 1 else np.zeros(x.shape[:-1])
    )


def plot(ds: xr.Dataset):
    fig, ax = new_figure(fig_kw={"figsize": (5.2, 4.0), "layout": "constrained"})
    for rule in ds["rule"].values:
        m, s = _ms(ds["acc"].sel(rule=rule).values)
        ax.errorbar(ds["r"], m, yerr=s, marker="o", label=f"LDFA {rule}")
    for k, ls in (("bp", "-"), ("fa", "--"), ("dfa", ":")):
        ax.axhline(float(ds[f"acc_{k}"].mean()), color="0.3", ls=ls, lw=1, label=k)
    ax.axvline(10, color="0.7", lw=1)
    ax.set_xscale("log")
    ax.set_xlabel("feedback rank r")
    ax.set_ylabel("best test accuracy")
    ax.legend(frameon=False, fontsize=8)
    return fig


def summary(ds: xr.Dataset) -> str:
    lines = [
        f"  bp {float(ds['acc_bp'].mean()):.3f}, fa {float(ds['acc_fa'].mean()):.3f}, "
        f"dfa {float(ds['acc_dfa'].mean()):.3f}"
    ]
    for rule in ds["rule"].values:
        m, _ = _ms(ds["acc"].sel(rule=rule).values)
        lines.append(
            f"  {rule}: "
            + ", ".join(f"r={r}: {a:.3f}" for r, a in zip(ds["r"].values, m, strict=True))
        )
    return "\n".join(lines)
