"""Spiked matrix (order-2 tensor, shape 1,1): overlap of mode 1 against the noise ``delta``.

Three priors (Gaussian, Rademacher, sparse Rademacher with ``rho = 0.2``):
state-evolution curves on a dense ``delta`` grid, AMP simulations with error
bars (standard errors over trials), and the BBP threshold from
:func:`meanfield.threshold` (``delta = 1`` for unit-variance priors and square
shape).

Sizes: N = 1024 (quick) and 2048, 8 trials. At N = 256 the Gaussian prior at
``delta = 0.5`` gave 0.43 ± 0.02 against SE 0.50 (and 0 at ``delta = 0.8``):
AMP's random start (mean + 1e-3 noise) must first grow out of the unstable
trivial fixed point, which takes ~log N iterations and slows down towards the
BBP point; at small N and near the threshold the run stops on the stopping
rule before it has grown. Within ~0.25 of ``delta = 1`` the finite-N overlap
still lies below SE (the BBP window narrows as N^{-1/3}); hollow markers flag
unconverged points.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

import meanfield

from ._io import new_figure
from ._theory import se_curve

NAME = "fig01_overlap_vs_delta"
#: rough quick-mode cost (s, one core, cold): the demo starts the longest figures first
QUICK_SECONDS = 30

BASE = {"order": 2, "shape": "1,1"}
PRIORS: dict[str, dict] = {
    "gaussian": {"prior": "gaussian"},
    "rademacher": {"prior": "rademacher"},
    "sparse_rademacher": {"prior": "sparse_rademacher", "rho": 0.2},
}
LABELS = {
    "gaussian": "Gaussian",
    "rademacher": "Rademacher",
    "sparse_rademacher": r"sparse Rademacher, $\rho=0.2$",
}


def params(quick: bool) -> dict:
    """Everything the figure depends on (recorded in ``NAME.json``)."""
    return {
        "model": "tensor",
        "base": BASE,
        "priors": PRIORS,
        "theory_delta": {"lo": 0.01, "hi": 1.6, "n": 80 if quick else 200},
        "sim_delta": [0.2, 0.35, 0.5] if quick
        else [0.1, 0.3, 0.5, 0.7, 0.85, 1.0, 1.2, 1.5],
        "size": 1024 if quick else 2048,
        "trials": 8,
        "seed": 0,
        "backend": "cpu",
        "threshold": {"param": "delta", "kind": "algorithmic"},
    }


def compute(quick: bool) -> xr.Dataset:
    P = params(quick)
    td = P["theory_delta"]
    delta = np.linspace(td["lo"], td["hi"], td["n"])
    dsim = np.asarray(P["sim_delta"], dtype=float)
    names = list(PRIORS)
    n_modes = BASE["order"]

    th_ov = np.empty((len(names), delta.size, n_modes))
    th_st = np.empty((len(names), delta.size), dtype=object)
    at_sim = np.empty((len(names), dsim.size, n_modes))
    sim = {k: np.full((len(names), dsim.size, n_modes), np.nan)
           for k in ("overlap", "overlap_sem", "mse", "mse_sem")}
    sim_it = np.full((len(names), dsim.size), np.nan)
    sim_conv = np.full((len(names), dsim.size), np.nan)
    sim_st = np.empty((len(names), dsim.size), dtype=object)
    thr = np.full(len(names), np.nan)
    thr_st = np.empty(len(names), dtype=object)

    for i, name in enumerate(names):
        p = {**BASE, **PRIORS[name]}
        model = meanfield.get_model("tensor")(**p)
        s, st = se_curve(model, "delta", np.concatenate([delta, dsim]))
        th_ov[i], th_st[i] = s[: delta.size], st[: delta.size]
        at_sim[i] = s[delta.size :]
        t = meanfield.threshold("tensor", p, **P["threshold"])
        thr[i] = np.nan if t["value"] is None else t["value"]
        thr_st[i] = t["status"]
        for j, d in enumerate(dsim):
            r = meanfield.simulate(
                "tensor", {**p, "delta": float(d)}, size=P["size"], trials=P["trials"],
                seed=P["seed"] + 1000 * i + j, backend=P["backend"],
            )
            for k in sim:
                sim[k][i, j] = r[k]
            sim_it[i, j] = r["iterations"]
            sim_conv[i, j] = r["converged"]
            sim_st[i, j] = r["status"]

    dims3, dims3s = ("prior", "delta", "mode"), ("prior", "delta_sim", "mode")
    ds = xr.Dataset(
        {
            "theory_overlap": (dims3, th_ov, {"long_name": "state-evolution overlap M_a"}),
            "theory_status": (("prior", "delta"), th_st.astype(str)),
            "theory_overlap_at_sim": (dims3s, at_sim),
            "sim_overlap": (dims3s, sim["overlap"], {"long_name": "AMP overlap, mean over trials"}),
            "sim_overlap_sem": (dims3s, sim["overlap_sem"]),
            "sim_mse": (dims3s, sim["mse"]),
            "sim_mse_sem": (dims3s, sim["mse_sem"]),
            "sim_iterations": (("prior", "delta_sim"), sim_it),
            "sim_converged": (("prior", "delta_sim"), sim_conv,
                              {"long_name": "fraction of converged trials"}),
            "sim_status": (("prior", "delta_sim"), sim_st.astype(str)),
            "threshold": (("prior",), thr, {"long_name": "algorithmic (BBP) threshold in delta"}),
            "threshold_status": (("prior",), thr_st.astype(str)),
        },
        coords={
            "prior": names,
            "delta": delta,
            "delta_sim": dsim,
            "mode": np.arange(1, n_modes + 1),
        },
        attrs={"size": P["size"], "trials": P["trials"]},
    )
    return ds


def plot(ds: xr.Dataset):
    fig, ax = new_figure(fig_kw={"figsize": (6.4, 4.4), "layout": "constrained"})
    colors = dict(zip(ds.prior.values, ("C0", "C1", "C2"), strict=False))
    for name in ds.prior.values:
        c = colors[name]
        th = ds.theory_overlap.sel(prior=name, mode=1)
        ax.plot(ds.delta, th, color=c, lw=1.8, label=f"{LABELS.get(name, name)} (SE)")
        so = ds.sim_overlap.sel(prior=name, mode=1).values
        se = ds.sim_overlap_sem.sel(prior=name, mode=1).values
        ok = ds.sim_status.sel(prior=name).values == "ok"
        for mask, face in ((ok, c), (~ok, "white")):
            if mask.any():
                ax.errorbar(ds.delta_sim.values[mask], so[mask], yerr=se[mask], fmt="o",
                            color=c, mfc=face, ms=5, capsize=2.5, lw=1)
    thr = ds.threshold.values
    if np.all(np.isfinite(thr)) and np.ptp(thr) < 1e-6:
        ax.axvline(thr[0], color="k", ls=":", lw=1.2,
                   label=rf"BBP threshold $\Delta_c={thr[0]:.3f}$ (all priors)")
    else:
        for name, v in zip(ds.prior.values, thr, strict=True):
            if np.isfinite(v):
                ax.axvline(v, color=colors[name], ls=":", lw=1.2)
    ax.errorbar([], [], yerr=[], fmt="o", color="0.3", capsize=2.5,
                label=f"AMP, N={ds.attrs['size']}, {ds.attrs['trials']} trials (±sem)")
    ax.plot([], [], "o", color="0.3", mfc="white", label="AMP, some trials not converged")
    ax.set_xlabel(r"noise $\Delta$")
    ax.set_ylabel(r"overlap $M_1 = \mathbb{E}[x_1 \hat x_1]$")
    ax.set_title(r"Spiked matrix ($p=2$, $n_1=n_2=1$): theory vs AMP")
    ax.set_xlim(0, float(ds.delta.max()))
    ax.set_ylim(-0.03, 1.03)
    ax.legend(fontsize=8, frameon=False)
    return fig


def summary(ds: xr.Dataset) -> str:
    """Plain-text table: theory vs AMP overlap (mode 1) per prior, and the thresholds."""
    lines = [f"  {'prior':<20}{'delta':>7}{'theory':>9}   {'AMP ± sem':<17}{'status'}"]
    for name in ds.prior.values:
        for d in ds.delta_sim.values:
            pt = ds.sel(prior=name, delta_sim=d, mode=1)
            lines.append(
                f"  {name:<20}{d:7.2f}{float(pt.theory_overlap_at_sim):9.3f}   "
                f"{float(pt.sim_overlap):6.3f} ± {float(pt.sim_overlap_sem):<8.3f}"
                f"{str(ds.sim_status.sel(prior=name, delta_sim=d).values)}"
            )
    thr = ", ".join(
        f"{n} {float(v):.4f}" if np.isfinite(v) else f"{n} ({s})"
        for n, v, s in zip(ds.prior.values, ds.threshold.values, ds.threshold_status.values,
                           strict=True)
    )
    lines.append(f"  algorithmic (BBP) threshold in delta: {thr}")
    return "\n".join(lines)
