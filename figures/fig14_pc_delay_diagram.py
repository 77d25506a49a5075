"""Balanced predictive coding with a synaptic delay: the (b, d) instability diagram and
the U-shaped error (Kadmon, Timcheck & Ganguli 2020; digest §2.5).

Left: the Hopf boundary ``b_c(d)`` where ``b kappa = K_c(d)`` with ``kappa`` at the
self-consistent static solution at ``b = b_c`` (``meanfield.threshold(..., kind='delay')``),
and the small-delay asymptote ``pi / (2 kappa d)``; above it the decoder oscillates.
Right: the mean-field error against b for several delays (sigma = 0.75, x = 0.2, N = 1400),
diverging at ``b_c(d)``: an optimum ``b* < b_c``.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

import meanfield

from ._io import new_figure

NAME = "fig14_pc_delay_diagram"
IN_DEMO = False


def params(quick: bool) -> dict:
    return {"model": "predictive_coding", "sigma": 0.75, "x": 0.2, "n": 1400,
            "d": [0.02, 0.05, 0.1, 0.2] if quick else list(np.geomspace(0.01, 1.0, 12)),
            "d_error": [0.05, 0.1, 0.2], "nb": 6 if quick else 30}


def compute(quick: bool) -> xr.Dataset:
    P = params(quick)
    base = {"sigma": P["sigma"], "x": P["x"], "n": P["n"]}
    ds_ = np.asarray(P["d"], dtype=float)
    bc = np.full(ds_.size, np.nan)
    kap = np.full(ds_.size, np.nan)
    for i, d in enumerate(ds_):
        r = meanfield.threshold("predictive_coding", dict(base, d=d), param="b", kind="delay")
        if r["status"] == "ok":
            bc[i] = r["value"]
            kap[i] = meanfield.solve("predictive_coding", dict(base, d=d, b=bc[i]))["kappa"]
    de = np.asarray(P["d_error"], dtype=float)
    frac = np.linspace(0.05, 0.98, P["nb"])
    err = np.full((de.size, frac.size), np.nan)
    bgrid = np.full_like(err, np.nan)
    for i, d in enumerate(de):
        r = meanfield.threshold("predictive_coding", dict(base, d=d), param="b", kind="delay")
        if r["status"] != "ok":
            continue
        for j, f in enumerate(frac):
            bgrid[i, j] = f * r["value"]
            s = meanfield.solve("predictive_coding", dict(base, d=d, b=bgrid[i, j]))
            if s["error"] is not None:
                err[i, j] = s["error"]
    return xr.Dataset(
        {"b_c": ("d", bc), "kappa_c": ("d", kap), "b": (("d_error", "frac"), bgrid),
         "error": (("d_error", "frac"), err)},
        coords={"d": ds_, "d_error": de, "frac": frac},
    )


def plot(ds: xr.Dataset):
    fig, (a, b) = new_figure(1, 2, fig_kw={"figsize": (9, 3.8), "layout": "constrained"})
    d = ds["d"].values
    a.loglog(d, ds["b_c"].values, "o-", label=r"$b_c(d)$: $b\kappa = K_c(d)$")
    a.loglog(d, np.pi / (2 * ds["kappa_c"].values * d), ":", color="0.5",
             label=r"$\pi / (2 \kappa d)$")
    a.fill_between(d, ds["b_c"].values, np.nanmax(ds["b_c"].values) * 3, color="C3", alpha=0.15,
                   label="oscillatory")
    from matplotlib.ticker import NullFormatter

    a.xaxis.set_minor_formatter(NullFormatter())
    a.set_xlabel("delay d")
    a.set_ylabel("balance b")
    a.legend(frameon=False, fontsize=8)
    for i, de in enumerate(ds["d_error"].values):
        b.loglog(ds["b"].values[i], ds["error"].values[i], label=f"d = {de:g}")
    b.set_xlabel("balance b")
    b.set_ylabel("coding error (theory)")
    b.legend(frameon=False, fontsize=8)
    return fig


def summary(ds: xr.Dataset) -> str:
    i = int(np.argmin(np.abs(ds["d"].values - 0.1)))
    return f"b_c(d={ds['d'].values[i]:.3g}) = {ds['b_c'].values[i]:.4g}"
