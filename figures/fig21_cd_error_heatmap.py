"""Curl descent: simulated final test error against (c, alpha_h) with the theory contour
(digest Fig. 3a analogue; linear network, N + K = 219 as published, smaller under quick).

Every c is one batched run of all its (alpha_h, seed) configurations
(:func:`meanfield.sims.engines.learning.student_teacher.train`, published discrete mode:
minibatch 10 of P = 250, Frobenius renormalisation). Colour: mean over seeds of
log10 final test error; black: the large-N boundary ``alpha_h*(c)``. The published run is
1e5 epochs; here ``epochs`` is far shorter, so below the boundary the error is still
falling (the contrast is in how far it falls, not its floor).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ._io import new_figure

NAME = "fig21_cd_error_heatmap"
IN_DEMO = False


def params(quick: bool) -> dict:
    return {"model": "curl_descent", "total": 60 if quick else 219,
            "c": {"lo": 0.1, "hi": 100.0, "n": 5 if quick else 20},
            "alpha_h": {"n": 6 if quick else 21}, "seeds": 2 if quick else 10,
            "epochs": 60 if quick else 2000, "samples": 250, "batch": 10, "seed": 0}


def compute(quick: bool) -> xr.Dataset:
    from meanfield.sims.engines.learning import student_teacher as st

    import meanfield

    P = params(quick)
    cs_req = np.geomspace(P["c"]["lo"], P["c"]["hi"], P["c"]["n"])
    al = np.linspace(0, 1, P["alpha_h"]["n"])
    seeds = np.arange(P["seeds"])
    err = np.full((cs_req.size, al.size), np.nan)
    cs = np.empty(cs_req.size)
    for i, c in enumerate(cs_req):
        n = max(1, int(round(P["total"] * c / (1 + c))))
        k = max(1, P["total"] - n)
        cs[i] = n / k
        b = st.make_batch(n, k, np.repeat(al, seeds.size), 0.0,
                          np.tile(seeds, al.size) + 1000 * i, samples=P["samples"],
                          data_seed=P["seed"] + i)
        r = st.train(b, epochs=P["epochs"], batch_size=P["batch"], record=10,
                     shuffle_seed=P["seed"] + i)
        with np.errstate(divide="ignore"):
            e = np.log10(np.maximum(r["final_error"], 1e-32)).reshape(al.size, seeds.size)
        err[i] = e.mean(axis=1)
    cth = np.geomspace(P["c"]["lo"], P["c"]["hi"], 60)
    ath = []
    for c in cth:
        t = meanfield.threshold("curl_descent", {"c": c}, param="alpha_h")
        ath.append(1.0 if t["value"] is None else t["value"])
    return xr.Dataset({"log10_error": (("c", "alpha_h"), err), "alpha_star": ("c_th", ath)},
                      coords={"c": cs, "alpha_h": al, "c_th": cth})


def plot(ds: xr.Dataset):
    fig, ax = new_figure(fig_kw={"figsize": (5.6, 4.2), "layout": "constrained"})
    m = ax.pcolormesh(ds["c"].values, ds["alpha_h"].values, ds["log10_error"].values.T,
                      shading="nearest", cmap="viridis")
    ax.plot(ds["c_th"].values, ds["alpha_star"].values, "k-", lw=2)
    ax.set_xscale("log")
    ax.set_xlabel("compression ratio c = N/K")
    ax.set_ylabel(r"$\alpha_h$")
    fig.colorbar(m, ax=ax, label="log10 final test error")
    return fig


def summary(ds: xr.Dataset) -> str:
    e = ds["log10_error"].values
    return f"log10 error: min {np.nanmin(e):.1f}, max {np.nanmax(e):.1f}"
