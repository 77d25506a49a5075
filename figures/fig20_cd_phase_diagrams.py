"""Curl descent: theoretical phase diagrams of the solution manifold (digest Fig. 2).

Hidden-layer flips (``alpha_h``, flips on W1) and readout flips (``alpha_r``, flips on w2)
against the compression ratio ``c = N/K`` in [1e-3, 1e2]: the large-N lower edge of
``A/s^2`` at a random balanced point is positive (stable, filled) below the boundary and
negative (hatched) above it. Boundaries traced as curves by
:func:`meanfield.solvers.bifurcation.trace_crossing` on the free-probability edge
(:func:`meanfield.models.curl_descent.lambda_min_theory`); the shading is the batched
edge-polynomial grid (:func:`~meanfield.models.curl_descent.boundary_grid`).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ._io import new_figure

NAME = "fig20_cd_phase_diagrams"
IN_DEMO = True


def params(quick: bool) -> dict:
    return {"model": "curl_descent", "c": {"lo": 1e-3, "hi": 1e2, "n": 24 if quick else 120},
            "grid": 60 if quick else 300}


def compute(quick: bool) -> xr.Dataset:
    from meanfield.models.curl_descent import boundary_grid, lambda_min_theory
    from meanfield.solvers.bifurcation import trace_crossing

    P = params(quick)
    cs = np.geomspace(P["c"]["lo"], P["c"]["hi"], P["c"]["n"])
    out = {}
    for layer, key in (("hidden", "alpha_h"), ("readout", "alpha_r")):
        def test(a, c, key=key):
            return lambda_min_theory(c, **{key: a})

        roots, status = trace_crossing(test, cs, 1e-9, 1.0, param=key, kind="stability",
                                       points=25, log=True)
        lam0 = np.array([test(1e-9, c) for c in cs])
        lam1 = np.array([test(1.0, c) for c in cs])
        roots = np.where(np.isnan(roots) & (lam0 < 0), 0.0, roots)  # unstable for any flip
        roots = np.where(np.isnan(roots) & (lam1 >= 0), 1.0, roots)  # stable for all
        out[f"{key}_star"] = ("c", roots)
        gc = np.geomspace(P["c"]["lo"], P["c"]["hi"], P["grid"])
        ga = np.linspace(0, 1, P["grid"])
        out[f"lambda_{layer}"] = (("c_grid", "alpha"), boundary_grid(gc[:, None], ga[None, :],
                                                                     layer))
    return xr.Dataset(out, coords={"c": cs, "c_grid": np.geomspace(P["c"]["lo"], P["c"]["hi"],
                                                                   P["grid"]),
                                   "alpha": np.linspace(0, 1, P["grid"])})


def plot(ds: xr.Dataset):
    fig, axes = new_figure(1, 2, fig_kw={"figsize": (9.5, 3.8), "layout": "constrained"})
    for ax, layer, key, col, title in (
        (axes[0], "hidden", "alpha_h", "#669BBC", "Phase diagram - Hidden layer"),
        (axes[1], "readout", "alpha_r", "#C1121F", "Phase diagram - Readout layer"),
    ):
        c, a = ds["c_grid"].values, ds["alpha"].values
        stable = (ds[f"lambda_{layer}"].values > 0).T.astype(float)
        ax.contourf(c, a, stable, levels=[0.5, 1.5], colors=[col], alpha=0.8)
        ax.contourf(c, a, stable, levels=[-0.5, 0.5], colors="none", hatches=["//"])
        ax.plot(ds["c"].values, ds[f"{key}_star"].values, "k-", lw=1.5)
        ax.set_xscale("log")
        ax.set_xlabel("compression ratio c = N/K")
        ax.set_ylabel(rf"$\alpha_{{{key[-1]}}}$")
        ax.set_ylim(0, 1)
        ax.set_title(title)
    return fig


def summary(ds: xr.Dataset) -> str:
    c = ds["c"].values
    i = int(np.argmin(np.abs(c - 0.4)))
    j = int(np.argmin(np.abs(c - 1.0)))
    return (f"alpha_h*(c={c[i]:.3g}) = {ds['alpha_h_star'].values[i]:.4f}; "
            f"alpha_r*(c={c[j]:.3g}) = {ds['alpha_r_star'].values[j]:.4f}")
