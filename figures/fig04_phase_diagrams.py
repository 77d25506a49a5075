"""Phase diagrams of the tensor model: easy / hard / impossible regions.

Kadmon & Ganguli 2018 (arXiv:1810.10065), §1: two transitions separate an
easy, a hard and an impossible regime; the hard region is widest for cubic
shapes; zero-mean modes remove the easy phase at p >= 3. Panels (regions from
:func:`meanfield.solvers.phase.phase_diagram`, lines: the algorithmic,
information and dynamic thresholds in ``delta``):

a, b. ``delta`` x prior mean ``mu``, Gaussian N(mu, 1), cubic, p = 3 and 4.
c, d. ``delta`` x shape ``a`` with ``n = (a, 1/a, 1)`` (p = 3) or
      ``(a, 1/a, 1, 1)`` (p = 4), product of ratios one, N(0.2, 1) (p = 3) /
      N(0.45, 1) (p = 4).
e.    ``delta`` x sparsity ``rho``, Gauss-Bernoulli (zero mean), p = 3: no easy phase.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

import meanfield
from meanfield.solvers.phase import phase_diagram

from ._io import new_figure

NAME = "fig04_phase_diagrams"
#: rough quick-mode cost (s, one core): the demo starts the longest figures first
QUICK_SECONDS = 25

PANELS = {
    "p3_mean": dict(base=dict(order=3), x="mean", xs=(0.0, 0.4), ys=(0.005, 1.0)),
    "p4_mean": dict(base=dict(order=4), x="mean", xs=(0.0, 0.65), ys=(0.005, 1.5)),
    "p3_shape": dict(base=dict(order=3, mean=0.2), x="a", xs=(0.4, 2.5), ys=(0.01, 1.0)),
    "p4_shape": dict(base=dict(order=4, mean=0.45), x="a", xs=(0.4, 2.5), ys=(0.01, 2.0)),
    "p3_sparsity": dict(
        base=dict(order=3, prior="gauss_bernoulli"), x="rho", xs=(0.1, 1.0), ys=(1e-4, 0.5)
    ),
}


def _transform(name: str, order: int):
    if name.endswith("shape"):
        rest = [1.0] * (order - 2)
        return lambda a: {"shape": tuple([a, 1.0 / a] + rest)}
    return None


def params(quick: bool) -> dict:
    nx, ny = (8, 20) if quick else (48, 160)
    return {
        "model": "tensor",
        "panels": {k: {**v, "base": v["base"]} for k, v in PANELS.items()},
        "nx": nx,
        "ny": ny,
    }


def compute(quick: bool) -> xr.Dataset:
    p = params(quick)
    out = {}
    for name, spec in PANELS.items():
        model = meanfield.get_model("tensor")(**spec["base"])
        xs = np.linspace(*spec["xs"], p["nx"])
        ys = np.geomspace(*spec["ys"], p["ny"])
        ds = phase_diagram(model, spec["x"], xs, ys=ys, transform=_transform(name, model.order))
        for var in ("region", "algorithmic", "information", "dynamic"):
            names = {spec["x"]: f"{name}_x"}
            if "delta" in ds[var].dims:
                names["delta"] = f"{name}_delta"
            da = ds[var].rename(names)
            out[f"{name}_{var}"] = da
    ds = xr.Dataset(out)
    ds.attrs["panels"] = ", ".join(PANELS)
    ds.attrs["regions"] = "0 easy, 1 hard, 2 impossible"
    return ds


def plot(ds: xr.Dataset):
    from matplotlib.colors import ListedColormap

    fig, axes = new_figure(
        1, len(PANELS), fig_kw={"figsize": (4.0 * len(PANELS), 3.6), "layout": "constrained"}
    )
    cmap = ListedColormap(["#b7e4b0", "#f6c28b", "#d0d0d0"])
    styles = {"algorithmic": ("C2", "-"), "information": ("C3", "--"), "dynamic": ("C0", ":")}
    for ax, name in zip(np.atleast_1d(axes), PANELS, strict=True):
        reg = ds[f"{name}_region"]
        x = reg[f"{name}_x"].values
        y = reg[f"{name}_delta"].values
        ax.pcolormesh(x, y, reg.values.T, cmap=cmap, vmin=0, vmax=2, shading="nearest")
        for k, (c, ls) in styles.items():
            ax.plot(x, ds[f"{name}_{k}"].values, color=c, ls=ls, lw=1.5, label=k)
        ax.set_yscale("log")
        ax.set_xlabel(
            {"mean": "prior mean $\\mu$", "a": "shape $a$", "rho": "sparsity $\\rho$"}[
                PANELS[name]["x"]
            ]
        )
        ax.set_ylabel("noise $\\Delta$")
        ax.set_title(name.replace("_", ", "))
    np.atleast_1d(axes)[0].legend(fontsize=7, loc="lower right")
    fig.suptitle("easy (green) / hard (orange) / impossible (grey)")
    return fig


def summary(ds: xr.Dataset) -> str:
    """Thresholds at a few points of each panel (plain text)."""
    lines = ["  panel        x       algorithmic  information  dynamic"]
    for name in PANELS:
        x = ds[f"{name}_algorithmic"][f"{name}_x"].values
        for i in np.linspace(0, len(x) - 1, 3).astype(int):
            vals = [
                float(ds[f"{name}_{k}"].values[i])
                for k in ("algorithmic", "information", "dynamic")
            ]
            cells = "  ".join(f"{v:11.4g}" if np.isfinite(v) else f"{'-':>11}" for v in vals)
            lines.append(f"  {name:<11} {x[i]:7.3g}  {cells}")
    return "\n".join(lines)
