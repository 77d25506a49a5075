"""Balanced predictive coding: the chaos boundary in the (g, x) plane (Kadmon, Timcheck &
Ganguli 2020; digest §2.2).

``g_c(x)`` where ``g^2 E[phi'(w y + sqrt(Delta) z)^2] = 1`` on the static branch
(``meanfield.threshold(..., param='g', kind='chaos')``): ``g_c = 1`` at ``x = 0`` and the input
suppresses chaos (Rajan-Abbott-Sompolinsky-type); independent of b and d (shown: b = 10
and b = 100).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

import meanfield

from ._io import new_figure

NAME = "fig15_pc_chaos_boundary"
IN_DEMO = False


def params(quick: bool) -> dict:
    return {"model": "predictive_coding", "b": [10.0, 100.0],
            "x": [0.0, 0.3, 0.6] if quick else list(np.linspace(0.0, 0.75, 11))}


def compute(quick: bool) -> xr.Dataset:
    P = params(quick)
    xs = np.asarray(P["x"], dtype=float)
    bs = np.asarray(P["b"], dtype=float)
    gc = np.full((bs.size, xs.size), np.nan)
    for i, b in enumerate(bs):
        for j, x in enumerate(xs):
            r = meanfield.threshold("predictive_coding", dict(b=b, x=x), param="g", kind="chaos")
            if r["status"] == "ok":
                gc[i, j] = r["value"]
    return xr.Dataset({"g_c": (("b", "x"), gc)}, coords={"b": bs, "x": xs})


def plot(ds: xr.Dataset):
    fig, ax = new_figure(fig_kw={"figsize": (5, 4), "layout": "constrained"})
    x = ds["x"].values
    for i, b in enumerate(ds["b"].values):
        ax.plot(ds["g_c"].values[i], x, "o-" if i == 0 else "x--", label=f"b = {b:g}")
    hi = np.nanmax(ds["g_c"].values)
    ax.fill_betweenx(x, ds["g_c"].values[0], max(hi * 1.2, 2.0), color="C3", alpha=0.15,
                     label="chaotic")
    ax.axvline(1.0, color="0.6", lw=1, ls=":")
    ax.set_xlabel("disorder g")
    ax.set_ylabel("input x")
    ax.legend(frameon=False)
    return fig


def summary(ds: xr.Dataset) -> str:
    return f"g_c(x=0) = {ds['g_c'].values[0, 0]:.4g}, g_c(x={ds['x'].values[-1]:g}) = " \
           f"{ds['g_c'].values[0, -1]:.4g}"
