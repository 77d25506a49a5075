"""Balanced predictive coding: coding error against N in each scaling regime, with fitted
exponents (Kadmon, Timcheck & Ganguli 2020; digest §2.4).

Rate network (sigma = 0.75, g = d = 0, x = 0.2): ``b = N/14`` gives RMSE ~ 1/N
(superclassical), fixed ``b = 10`` gives std ~ N^-1/2 (classical; the bias y/b does not
fall with N). Spiking Boerlin-Machens-Deneve network (``engine=spiking``, w = +-1,
``Gamma = 2 w / b``) with ``b = N/4``: RMSE ~ 1/N. Exponents from
:func:`meanfield.scaling.fit_exponent` (weighted least squares, standard error).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

import meanfield
from meanfield.scaling import fit_exponent

from ._io import new_figure

NAME = "fig13_pc_error_vs_n"
IN_DEMO = False
SERIES = {
    "rate b=N/14 (error)": ("error", dict(sigma=0.75, x=0.2), lambda n: n / 14, -1.0),
    "rate b=10 (std)": ("std", dict(sigma=0.75, x=0.2, b=10.0), None, -0.5),
    "spiking b=N/4 (error)": ("error", dict(engine="spiking", weights="binary", sigma=0.2,
                                            x=0.2), lambda n: n / 4, -1.0),
}


def params(quick: bool) -> dict:
    return {"model": "predictive_coding", "series": list(SERIES),
            "sizes": [100, 200, 400] if quick else [200, 400, 800, 1600, 3200],
            "trials": 2 if quick else 4, "t_max": 2.0 if quick else 15.0, "seed": 0}


def compute(quick: bool) -> xr.Dataset:
    P = params(quick)
    ns = np.asarray(P["sizes"])
    val = np.full((len(SERIES), ns.size), np.nan)
    sem = np.full_like(val, np.nan)
    expo = np.full(len(SERIES), np.nan)
    expo_se = np.full(len(SERIES), np.nan)
    for i, (key, base, bfun, _) in enumerate(SERIES.values()):
        for j, n in enumerate(ns):
            p = dict(base, n=int(n))
            if bfun is not None:
                p["b"] = bfun(n)
            r = meanfield.simulate("predictive_coding", p, trials=P["trials"], seed=P["seed"] + j,
                                   t_max=P["t_max"], t_burn=1.0)
            if r["status"] == "ok":
                val[i, j], sem[i, j] = r[key], r[key + "_sem"]
        ok = np.isfinite(val[i]) & np.isfinite(sem[i]) & (sem[i] > 0)
        if ok.sum() >= 2:
            fit = fit_exponent(ns[ok], val[i, ok], sem[i, ok])
            expo[i], expo_se[i] = fit.exponent, fit.stderr
    return xr.Dataset(
        {"value": (("series", "n"), val), "sem": (("series", "n"), sem),
         "exponent": ("series", expo), "exponent_se": ("series", expo_se),
         "expected": ("series", np.array([s[3] for s in SERIES.values()]))},
        coords={"series": list(SERIES), "n": ns},
    )


def plot(ds: xr.Dataset):
    fig, ax = new_figure(fig_kw={"figsize": (5.2, 4.2), "layout": "constrained"})
    n = ds["n"].values
    for i, s in enumerate(ds["series"].values):
        lab = (f"{s}: slope {ds['exponent'].values[i]:.2f} ± {ds['exponent_se'].values[i]:.2f}"
               f" (expected {ds['expected'].values[i]:g})")
        ax.errorbar(n, ds["value"].values[i], yerr=ds["sem"].values[i], fmt="o-", ms=4,
                    label=lab)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("network size N")
    ax.set_ylabel("coding error")
    ax.legend(frameon=False, fontsize=7)
    return fig


def summary(ds: xr.Dataset) -> str:
    return "; ".join(f"{s}: {e:.3f} ± {se:.3f}" for s, e, se in zip(
        ds["series"].values, ds["exponent"].values, ds["exponent_se"].values, strict=True))
