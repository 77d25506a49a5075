"""Compute per step against feedback rank: one layer's backward pass, LDFA against backprop.

Measured wall time (float32 BLAS on one thread, best of interleaved repeats) of
the backward pass of a linear layer, dW = delta^T h plus the delivered error (delta W for backprop,
(delta P^T) Q^T for rank-r feedback), relative to backprop, against the FLOP
model 1/2 + r (n_in + n_out) / (2 n_in n_out) (digest §3.3; over a whole
forward + backward step the saving is at most one third).
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from meanfield.sims.engines.learning.mlp import backward_timing

from ._io import new_figure

NAME = "fig33_fa_compute"


def params(quick: bool) -> dict:
    return {
        "width": 1024 if quick else 4096,
        "batch": 256,
        "ranks": [8, 32, 128, 512] if quick else [8, 16, 32, 64, 128, 256, 512, 1024],
        "repeats": 3 if quick else 7,
        "threads": 1,  # one BLAS thread: reproducible on a shared machine, as bench/fa.py
    }


def compute(quick: bool) -> xr.Dataset:
    P = params(quick)
    res = backward_timing(
        P["width"], P["width"], P["batch"], P["ranks"], P["repeats"], threads=P["threads"]
    )
    rows = res["ldfa"]
    return xr.Dataset(
        {
            "ratio": (("r",), np.array([x["ratio"] for x in rows])),
            "flop_ratio": (("r",), np.array([x["flop_ratio"] for x in rows])),
            "seconds": (("r",), np.array([x["seconds"] for x in rows])),
        },
        coords={"r": P["ranks"]},
        attrs={
            "bp_seconds": res["bp_seconds"],
            "width": P["width"],
            "batch": P["batch"],
            "threads": P["threads"],
        },
    )


def plot(ds: xr.Dataset):
    fig, ax = new_figure(fig_kw={"figsize": (5.0, 3.8), "layout": "constrained"})
    ax.plot(ds["r"], ds["ratio"], "o-", label="measured")
    ax.plot(ds["r"], ds["flop_ratio"], "k--", label="FLOP model")
    ax.axhline(1.0, color="0.6", lw=1)
    ax.set_xscale("log")
    ax.set_xlabel("feedback rank r")
    ax.set_ylabel("backward time, LDFA / backprop")
    ax.set_title(f"{ds.attrs['width']} x {ds.attrs['width']} layer, batch {ds.attrs['batch']}")
    ax.legend(frameon=False)
    return fig


def summary(ds: xr.Dataset) -> str:
    return "  " + ", ".join(
        f"r={int(r)}: {m:.2f} (model {f:.2f})"
        for r, m, f in zip(ds["r"].values, ds["ratio"].values, ds["flop_ratio"].values, strict=True)
    )
