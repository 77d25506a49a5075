"""Phase diagram of the cubic (``p = 3``) tensor with a Gaussian prior ``N(mu, 1)``.

The algorithmic, information and dynamic thresholds in ``delta`` (from
:func:`meanfield.threshold`) against the prior mean ``mu``. Below the
algorithmic line AMP recovers the signal (easy); between it and the information
line recovery is possible but AMP from a random start fails (hard); above the
information line the informative fixed point is not the Bayes-optimal one
(impossible), and above the dynamic line it does not exist. The three lines
merge at the tricritical point ``mu_c = 1/(2 sqrt 2)``, ``delta_c = 27/64``
(Kadmon & Ganguli 2018), beyond which the transition is a smooth crossover.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

import meanfield

from ._io import new_figure

NAME = "fig02_phase_p3_mean"

BASE = {"order": 3, "shape": "1,1,1", "prior": "gaussian", "var": 1.0}
KINDS = ("algorithmic", "information", "dynamic")
MU_C = 1.0 / (2.0 * np.sqrt(2.0))
DELTA_C = 27.0 / 64.0


def params(quick: bool) -> dict:
    return {
        "model": "tensor",
        "base": BASE,
        "mean": {"lo": 0.0, "hi": 0.34, "n": 6 if quick else 16},
        "param": "delta",
        "kinds": list(KINDS),
        "tricritical": {"mean": MU_C, "delta": DELTA_C},
    }


def compute(quick: bool) -> xr.Dataset:
    P = params(quick)
    mu = np.linspace(P["mean"]["lo"], P["mean"]["hi"], P["mean"]["n"])
    val = np.full((mu.size, len(KINDS)), np.nan)
    st = np.empty((mu.size, len(KINDS)), dtype=object)
    for i, m in enumerate(mu):
        for k, kind in enumerate(KINDS):
            r = meanfield.threshold("tensor", {**BASE, "mean": float(m)}, param="delta", kind=kind)
            val[i, k] = np.nan if r["value"] is None else r["value"]
            st[i, k] = r["status"]
    return xr.Dataset(
        {
            "threshold": (("mean", "kind"), val, {"long_name": "threshold in delta"}),
            "status": (("mean", "kind"), st.astype(str)),
            "tricritical_mean": MU_C,
            "tricritical_delta": DELTA_C,
        },
        coords={"mean": mu, "kind": list(KINDS)},
    )


def plot(ds: xr.Dataset):
    fig, ax = new_figure(fig_kw={"figsize": (6.4, 4.4), "layout": "constrained"})
    mu = ds["mean"].values
    alg, inf, dyn = (ds.threshold.sel(kind=k).values for k in KINDS)
    top = max(0.5, float(np.nanmax(ds.threshold.values)) * 1.15)
    ok = np.isfinite(alg) & np.isfinite(inf) & np.isfinite(dyn)
    x = mu[ok]
    ax.fill_between(x, 0, alg[ok], color="tab:green", alpha=0.25, lw=0, label="easy")
    ax.fill_between(x, alg[ok], inf[ok], color="tab:orange", alpha=0.35, lw=0, label="hard")
    ax.fill_between(x, inf[ok], top, color="tab:red", alpha=0.18, lw=0, label="impossible")
    ax.plot(mu, alg, "o-", color="tab:green", ms=3.5, label=r"algorithmic $\Delta_{\rm alg}$")
    ax.plot(mu, inf, "s--", color="tab:orange", ms=3.5, label=r"information $\Delta_{\rm IT}$")
    ax.plot(mu, dyn, "^:", color="tab:red", ms=3.5, label=r"dynamic $\Delta_{\rm dyn}$")
    mc, dc = float(ds.tricritical_mean), float(ds.tricritical_delta)
    ax.plot([mc], [dc], "*", color="k", ms=13, zorder=5,
            label=r"tricritical $(\mu_c,\Delta_c)=(1/2\sqrt{2},\,27/64)$")
    ax.set_xlim(0, max(mc * 1.08, float(mu.max())))
    ax.set_ylim(0, top)
    ax.set_xlabel(r"prior mean $\mu$  (prior $\mathcal{N}(\mu, 1)$)")
    ax.set_ylabel(r"noise $\Delta$")
    ax.set_title(r"Cubic tensor $p=3$: phase diagram")
    ax.legend(fontsize=8, loc="upper left", frameon=True, framealpha=0.85)
    return fig


def summary(ds: xr.Dataset) -> str:
    """Plain-text table of the three thresholds against the prior mean."""
    lines = ["  " + f"{'mu':>6}" + "".join(f"{k:>14}" for k in ds.kind.values)]
    for m in ds["mean"].values:
        cells = []
        for k in ds.kind.values:
            v = float(ds.threshold.sel(mean=m, kind=k))
            cells.append(f"{v:14.4f}" if np.isfinite(v)
                         else f"{str(ds.status.sel(mean=m, kind=k).values):>14}")
        lines.append(f"  {m:6.3f}" + "".join(cells))
    lines.append(f"  tricritical point: mu_c = {float(ds.tricritical_mean):.4f}, "
                 f"delta_c = {float(ds.tricritical_delta):.4f}")
    return "\n".join(lines)
