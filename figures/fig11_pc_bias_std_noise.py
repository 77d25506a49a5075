"""Balanced predictive coding: bias and std of the decoder against the balance b, noise case
(Kadmon, Timcheck & Ganguli 2020, Fig. 1D blue: sigma = 0.75, g = 0, d = 0, x = 0.2).

Mean-field curves (``meanfield.solve``: bias ``y/b``, std by linear response with the full
spectrum) and rate-network points (``meanfield.simulate``, means +- standard errors over
trials) on log-log axes; the dotted line is the large-b law ``var ~ 1/b`` (exponent -1).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

import meanfield

from ._io import new_figure

NAME = "fig11_pc_bias_std_noise"
IN_DEMO = False
REGIME = {"sigma": 0.75, "g": 0.0, "x": 0.2, "d": 0.0}


def params(quick: bool) -> dict:
    return {
        "model": "predictive_coding", **REGIME,
        "b_theory": {"lo": 1.0, "hi": 1000.0, "n": 6 if quick else 25},
        "b_sim": [1.0, 10.0] if quick else [1.0, 3.0, 10.0, 30.0, 100.0],
        "size": 300 if quick else 1400,
        "trials": 2 if quick else 4,
        "t_max": 4.0 if quick else 60.0,
        "seed": 0,
    }


def compute_regime(P: dict) -> xr.Dataset:
    bt = P["b_theory"]
    bs = np.geomspace(bt["lo"], bt["hi"], bt["n"])
    bsim = np.asarray(P["b_sim"], dtype=float)
    fixed = {k: P[k] for k in ("sigma", "g", "x", "d")}
    th = {k: np.full(bs.size, np.nan) for k in ("bias", "std")}
    for i, b in enumerate(bs):
        r = meanfield.solve("predictive_coding", dict(fixed, b=b, n=P["size"]))
        for k in th:
            if r.get(k) is not None:
                th[k][i] = r[k]
    sim = {k: np.full(bsim.size, np.nan) for k in ("bias", "std", "bias_sem", "std_sem")}
    names = {"bias": "bias_sim", "std": "std_sim", "bias_sem": "bias_sim_sem",
             "std_sem": "std_sim_sem"}
    for j, b in enumerate(bsim):
        r = meanfield.simulate("predictive_coding", dict(fixed, b=b, n=P["size"]),
                               trials=P["trials"], seed=P["seed"] + j, t_max=P["t_max"],
                               t_burn=2.0)
        if r["status"] == "ok":
            for k in sim:
                sim[k][j] = r[k] if r[k] is not None else np.nan
    return xr.Dataset(
        {"bias_theory": ("b", th["bias"]), "std_theory": ("b", th["std"]),
         **{names[k]: ("b_sim", v) for k, v in sim.items()}},
        coords={"b": bs, "b_sim": bsim}, attrs={k: float(v) for k, v in fixed.items()},
    )


def compute(quick: bool) -> xr.Dataset:
    return compute_regime(params(quick))


def plot(ds: xr.Dataset, slope: float = -0.5):
    fig, axes = new_figure(2, 1, sharex=True,
                           fig_kw={"figsize": (4.8, 5.6), "layout": "constrained"})
    b = ds["b"].values
    for ax, k in zip(axes, ("bias", "std"), strict=True):
        ax.loglog(b, ds[f"{k}_theory"].values, label="mean-field theory")
        ax.errorbar(ds["b_sim"].values, ds[f"{k}_sim"].values, yerr=ds[f"{k}_sim_sem"].values,
                    fmt="o", ms=4, label="rate network")
        ax.set_ylabel(k)
    ref = ds["std_theory"].values
    ok = np.isfinite(ref)
    if ok.any():
        b0, s0 = b[ok][-1], ref[ok][-1]
        axes[1].loglog(b, s0 * (b / b0) ** slope, ":", color="0.5",
                       label=f"std ~ b^{slope:g}")
    axes[1].set_xlabel("balance b")
    axes[0].legend(frameon=False)
    axes[1].legend(frameon=False)
    axes[0].set_title(", ".join(f"{k} = {ds.attrs[k]:g}" for k in ("sigma", "g", "x")))
    return fig


def summary(ds: xr.Dataset) -> str:
    out = []
    for k in ("bias", "std"):
        th = np.interp(np.log(ds["b_sim"].values), np.log(ds["b"].values),
                       ds[f"{k}_theory"].values)
        dev = np.nanmax(np.abs(ds[f"{k}_sim"].values / th - 1))
        out.append(f"max |sim/theory - 1| {k}: {dev:.3g}")
    return "; ".join(out)
