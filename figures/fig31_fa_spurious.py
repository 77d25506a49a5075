"""Spurious solutions of fixed low-dimensional feedback: loss curves against the rank-r floor.

Matrix gradient flow of a two-layer linear network (n = k = 16, m = 8, s = (4, 3, 2, 1)),
rules fixed / normative / local at r = 2 < d and r = 4 = d (digest §2.5). Fixed random
rank-2 feedback stalls at P D = 0 near or above the Eckart-Young floor 1/2 sum_{a>r} s_a^2
(dotted); adaptive feedback passes below it by learning modes sequentially.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

import meanfield
from meanfield.models.feedback_alignment import eckart_young_floor

from ._io import new_figure

NAME = "fig31_fa_spurious"
RULES = ("fixed", "normative", "local")


def params(quick: bool) -> dict:
    return {
        "model": "feedback_alignment",
        "rules": list(RULES),
        "ranks": [2, 4],
        "spectrum": [4.0, 3.0, 2.0, 1.0],
        "n": 16,
        "k": 16,
        "m": 8,
        "t_max": 30.0 if quick else 100.0,
        "n_t": 40 if quick else 120,
        "seeds": [0] if quick else [0, 1, 2],
    }


def compute(quick: bool) -> xr.Dataset:
    P = params(quick)
    FA = meanfield.get_model("feedback_alignment")
    ts = np.geomspace(0.05, P["t_max"], P["n_t"])
    loss = np.full((len(RULES), len(P["ranks"]), len(P["seeds"]), ts.size), np.nan)
    pd = np.full_like(loss, np.nan)
    for i, rule in enumerate(RULES):
        for j, r in enumerate(P["ranks"]):
            for k, seed in enumerate(P["seeds"]):
                m = FA(
                    rule=rule,
                    r=r,
                    spectrum=tuple(P["spectrum"]),
                    n=P["n"],
                    k=P["k"],
                    m=P["m"],
                    t=P["t_max"],
                    seed=seed,
                )
                tr = m.trajectory(ts)
                if tr["t"].size:
                    loss[i, j, k, : tr["t"].size] = tr["loss"]
                    pd[i, j, k, : tr["t"].size] = tr["pd_norm"] / np.maximum(tr["d_norm"], 1e-300)
    floors = [eckart_young_floor(P["spectrum"], r) for r in P["ranks"]]
    return xr.Dataset(
        {
            "loss": (("rule", "r", "seed", "t"), loss),
            "pd_over_d": (("rule", "r", "seed", "t"), pd),
            "floor": (("r",), np.asarray(floors)),
        },
        coords={"rule": list(RULES), "r": P["ranks"], "seed": P["seeds"], "t": ts},
    )


def plot(ds: xr.Dataset):
    ranks = ds["r"].values
    fig, axes = new_figure(
        1,
        len(ranks),
        sharey=True,
        fig_kw={"figsize": (4.2 * len(ranks), 3.4), "layout": "constrained"},
    )
    for ax, r in zip(np.atleast_1d(axes), ranks, strict=True):
        for rule in ds["rule"].values:
            y = ds["loss"].sel(rule=rule, r=r).values
            (ln,) = ax.plot(ds["t"], y[0], label=rule)
            for row in y[1:]:
                ax.plot(ds["t"], row, color=ln.get_color(), alpha=0.5)
        fl = float(ds["floor"].sel(r=r))
        if fl > 0:
            ax.axhline(fl, color="0.4", ls=":", lw=1)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(f"r = {r}")
        ax.set_xlabel(r"t / $\tau$")
    np.atleast_1d(axes)[0].set_ylabel(r"loss $\frac{1}{2}\|\Sigma_{yx}-W_2W_1\|_F^2$")
    np.atleast_1d(axes)[0].legend(frameon=False)
    return fig


def summary(ds: xr.Dataset) -> str:
    out = []
    for r in ds["r"].values:
        for rule in ds["rule"].values:
            fin = ds["loss"].sel(rule=rule, r=r).values[:, -1]
            pdr = ds["pd_over_d"].sel(rule=rule, r=r).values[:, -1]
            out.append(
                f"  r={r} {rule:9s} final loss {np.nanmin(fin):.3g}-{np.nanmax(fin):.3g} "
                f"(floor {float(ds['floor'].sel(r=r)):.3g}), |PD|/|D| {np.nanmax(pdr):.1e}"
            )
    return "\n".join(out)
