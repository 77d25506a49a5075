"""Spiking predictive coding: raster of a Boerlin-Machens-Deneve network and its decoded
``xhat(t)`` (digest §5; ``engine=spiking``, ``Gamma = 2 w / b``, w = +-1).

Top: spikes of every neuron (sorted by the sign of its decoding weight); bottom: the
readout ``xhat(t) = sum_i Gamma_i r_i(t)`` against the input x, staying within the band
``x +- |Gamma| / 2 = x +- 1/b``. One spike per step (the max-voltage rule).
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from meanfield.sims.engines.spiking import run_spiking_network

import meanfield

from ._io import new_figure

NAME = "fig16_pc_spiking_raster"
IN_DEMO = True


def params(quick: bool) -> dict:
    return {"model": "predictive_coding", "engine": "spiking", "weights": "binary",
            "b": 40.0, "n": 40 if quick else 100, "sigma": 0.2, "x": 0.3,
            "t": 3.0 if quick else 6.0, "dt": 1e-3, "seed": 0}


def compute(quick: bool) -> xr.Dataset:
    P = params(quick)
    m = meanfield.get_model("predictive_coding")(
        engine="spiking", weights=P["weights"], b=P["b"], n=P["n"], sigma=P["sigma"], x=P["x"])
    steps = int(round(P["t"] / P["dt"]))
    r = run_spiking_network(m, P["n"], 1, P["seed"], t_max=P["t"], t_burn=0.0, dt=P["dt"],
                            record=steps)
    order = np.argsort(r["gamma"], kind="stable")
    t = np.arange(r["trace"].size) * r["dt"]
    return xr.Dataset(
        {"raster": (("time", "neuron"), r["raster"][:, order]), "xhat": ("time", r["trace"]),
         "x": ("time", r["x"]), "gamma": ("neuron", r["gamma"][order])},
        coords={"time": t, "neuron": np.arange(P["n"])}, attrs={"b": P["b"], "rate": r["rate"]},
    )


def plot(ds: xr.Dataset):
    fig, (a, b) = new_figure(2, 1, sharex=True, height_ratios=[2, 1],
                             fig_kw={"figsize": (6, 5), "layout": "constrained"})
    k, i = np.nonzero(ds["raster"].values)
    t = ds["time"].values
    col = np.where(ds["gamma"].values[i] > 0, "C0", "C3")
    a.scatter(t[k], i, s=2, c=col, marker="|")
    a.set_ylabel("neuron (by sign of Gamma)")
    b.plot(t, ds["xhat"].values, lw=0.8, label=r"$\hat x(t)$")
    b.plot(t, ds["x"].values, color="k", lw=1, label="x")
    band = 1.0 / ds.attrs["b"]
    b.fill_between(t, ds["x"].values - band, ds["x"].values + band, color="0.8",
                   label=r"$x \pm |\Gamma|/2$")
    b.set_xlabel(r"time ($\tau$)")
    b.legend(frameon=False, fontsize=8, loc="lower right")
    return fig


def summary(ds: xr.Dataset) -> str:
    late = ds["time"].values > 1.0
    e = ds["xhat"].values[late] - ds["x"].values[late]
    return f"rms(xhat - x) after t=1: {np.sqrt(np.mean(e**2)):.3g} (band 1/b = " \
           f"{1 / ds.attrs['b']:.3g}); rate {ds.attrs['rate']:.3g} per neuron"
