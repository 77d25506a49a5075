"""Balanced predictive coding: mean transfer curve <xhat> vs x (Kadmon, Timcheck & Ganguli
2020, Fig. 1C setting: sigma = 0.75, g = d = 0).

Mean-field curves (``x - bias`` from ``meanfield.solve``) for three balance strengths,
with rate-network simulation points at N = ``size``; the grey diagonal is ``<xhat> = x``
and the plateau is ``E|w| = sqrt(2/pi)`` for Gaussian weights.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

import meanfield

from ._io import new_figure

NAME = "fig10_pc_transfer"
IN_DEMO = True


def params(quick: bool) -> dict:
    return {
        "model": "predictive_coding",
        "b": [1.0, 10.0, 100.0],
        "x_theory": {"lo": 0.0, "hi": 1.4, "n": 12 if quick else 40},
        "x_sim": [0.2, 0.7] if quick else [0.2, 0.5, 0.7, 0.9, 1.2],
        "sigma": 0.75,
        "size": 400 if quick else 1400,
        "trials": 2 if quick else 4,
        "t_max": 5.0 if quick else 30.0,
        "seed": 0,
    }


def compute(quick: bool) -> xr.Dataset:
    P = params(quick)
    xt = P["x_theory"]
    xs = np.linspace(xt["lo"], xt["hi"], xt["n"])
    xsim = np.asarray(P["x_sim"], dtype=float)
    bs = np.asarray(P["b"], dtype=float)
    th = np.full((bs.size, xs.size), np.nan)
    sim = np.full((bs.size, xsim.size), np.nan)
    sem = np.full((bs.size, xsim.size), np.nan)
    for i, b in enumerate(bs):
        for j, x in enumerate(xs):
            r = meanfield.solve("predictive_coding", dict(b=b, x=x, sigma=P["sigma"]))
            if r["bias"] is not None:
                th[i, j] = x - r["bias"]
        for j, x in enumerate(xsim):
            r = meanfield.simulate(
                "predictive_coding", dict(b=b, x=x, sigma=P["sigma"], n=P["size"]),
                trials=P["trials"], seed=P["seed"] + 100 * i + j, t_max=P["t_max"], t_burn=1.0,
            )
            if r["status"] == "ok":
                sim[i, j], sem[i, j] = x - r["bias"], r["bias_sem"]
    return xr.Dataset(
        {"xhat_theory": (("b", "x"), th), "xhat_sim": (("b", "x_sim"), sim),
         "xhat_sem": (("b", "x_sim"), sem)},
        coords={"b": bs, "x": xs, "x_sim": xsim},
    )


def plot(ds: xr.Dataset):
    fig, ax = new_figure(fig_kw={"figsize": (5.2, 4.2), "layout": "constrained"})
    x = ds["x"].values
    ax.plot(x, x, color="0.7", lw=1)
    for i, b in enumerate(ds["b"].values):
        (line,) = ax.plot(x, ds["xhat_theory"].values[i], label=f"b = {b:g}")
        ax.errorbar(ds["x_sim"].values, ds["xhat_sim"].values[i], yerr=ds["xhat_sem"].values[i],
                    fmt="o", color=line.get_color(), ms=4)
    ax.axhline(np.sqrt(2 / np.pi), color="0.5", ls=":", lw=1)
    ax.set_xlabel("input x")
    ax.set_ylabel(r"$\langle \hat x \rangle$")
    ax.legend(frameon=False)
    return fig


def summary(ds: xr.Dataset) -> str:
    d = np.nanmax(np.abs(ds["xhat_sim"].values - np.array(
        [np.interp(ds["x_sim"].values, ds["x"].values, row) for row in ds["xhat_theory"].values]
    )))
    return f"max |sim - theory| of <xhat>: {d:.3g}"
