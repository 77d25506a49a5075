"""Balanced predictive coding: bias and std against b, chaos case (Kadmon, Timcheck &
Ganguli 2020, Fig. 1D orange: sigma = 0, g = 1.6, x = 0.2).

DMFT bias and linear-response std (``meanfield.solve``) against rate-network points; the
chaotic fluctuations are slow, so ``var ~ b^-2`` (dotted, exponent -1 for the std). At
N = 1400 the network is less chaotic than the DMFT near the input-induced boundary and the
linear-response std overestimates it 2-3x (digest §3.2, pitfall 6).
"""

from __future__ import annotations

import xarray as xr

from . import fig11_pc_bias_std_noise as base

NAME = "fig12_pc_bias_std_chaos"
IN_DEMO = False


def params(quick: bool) -> dict:
    p = base.params(quick)
    p.update(sigma=0.0, g=1.6, x=0.2, d=0.0, size=200 if quick else 1400,
             b_sim=[3.0, 10.0] if quick else [3.0, 10.0, 30.0, 100.0],
             t_max=4.0 if quick else 100.0)
    if quick:
        p["b_theory"] = {"lo": 3.0, "hi": 100.0, "n": 4}
    return p


def compute(quick: bool) -> xr.Dataset:
    return base.compute_regime(params(quick))


def plot(ds: xr.Dataset):
    return base.plot(ds, slope=-1.0)


def summary(ds: xr.Dataset) -> str:
    return base.summary(ds)
