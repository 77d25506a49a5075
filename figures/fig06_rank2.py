"""Rank-2 decompositions: ``r x r`` state evolution against rank-2 AMP.

Kadmon & Ganguli 2018 (arXiv:1810.10065) §1, rank ``r`` factor matrices; the
rank-``r`` SE of :func:`meanfield.models.tensor._build_system_rank` (overlap
matrices ``M_a``, Hadamard-product signal-to-noise ``Lam_a``). Columns of the
AMP estimates are matched to the planted ones (Hungarian assignment, then
sign gauge) before overlaps are averaged.

a. Order 2, Rademacher entries, informed start: the diagonal overlap ``M_ss``
   (equal to the rank-1 overlap: zero-mean columns decouple) and the
   off-diagonal ``M_12 = 0``.
b. Order 2, Gaussian ``N(0.5, 1)`` entries, random start: the prior mean
   couples the columns, ``M_12 > 0`` (``E[x_1] E[x_2]`` without data). Near
   ``Delta = 1`` the fixed point stops specialising (``M_11 = M_12``: both
   estimated columns along the mean direction); close to it finite-N AMP
   trials already sit on the non-specialised branch.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

import meanfield

from ._io import new_figure
from ._theory import se_curve

NAME = "fig06_rank2"
QUICK_SECONDS = 20

CASES: dict[str, dict] = {
    "rademacher": {"order": 2, "rank": 2, "prior": "rademacher", "init": "informed"},
    "gauss_mean": {"order": 2, "rank": 2, "prior": "gaussian", "mean": 0.5, "init": "random"},
}
LABELS = {"rademacher": "Rademacher, informed start", "gauss_mean": r"$N(0.5,1)$, random start"}


def params(quick: bool) -> dict:
    """Everything the figure depends on (recorded in ``NAME.json``)."""
    return {
        "model": "tensor",
        "cases": CASES,
        "theory_delta": {"lo": 0.05, "hi": 1.5, "n": 20 if quick else 120},
        "sim_delta": [0.3, 0.6, 0.9] if quick else [0.2, 0.4, 0.6, 0.8, 1.0, 1.2],
        "size": 300 if quick else 800,
        "trials": 4 if quick else 8,
        "seed": 0,
        "backend": "cpu",
    }


def compute(quick: bool) -> xr.Dataset:
    P = params(quick)
    td = P["theory_delta"]
    delta = np.linspace(td["lo"], td["hi"], td["n"])
    dsim = np.asarray(P["sim_delta"], dtype=float)
    names = list(CASES)
    th = np.full((len(names), delta.size, 2), np.nan)  # diagonal (mode 1, comp 1), off-diagonal
    th_st = np.empty((len(names), delta.size), dtype=object)
    sim = np.full((len(names), dsim.size, 2), np.nan)
    sem = np.full((len(names), dsim.size, 2), np.nan)
    sim_st = np.empty((len(names), dsim.size), dtype=object)
    for i, name in enumerate(names):
        model = meanfield.get_model("tensor")(**CASES[name])
        state, st = se_curve(model, "delta", delta, init=CASES[name]["init"])
        mats = model.overlap_matrices(state)  # (n, p, r, r)
        th[i, :, 0], th[i, :, 1], th_st[i] = mats[:, 0, 0, 0], mats[:, 0, 0, 1], st
        for j, d in enumerate(dsim):
            r = meanfield.simulate(
                "tensor", {**CASES[name], "delta": float(d)}, size=P["size"],
                trials=P["trials"], seed=P["seed"] + 1000 * i + j, backend=P["backend"],
            )
            ov, ose = np.array(r["overlap"]), np.array(r["overlap_sem"])
            # mode 1: mean of the two diagonal entries, and the off-diagonal
            sim[i, j] = (np.mean(np.diag(ov[0])), 0.5 * (ov[0, 0, 1] + ov[0, 1, 0]))
            sem[i, j] = (np.mean(np.diag(ose[0])), 0.5 * (ose[0, 0, 1] + ose[0, 1, 0]))
            sim_st[i, j] = r["status"]
    dims, dims_s = ("case", "delta", "entry"), ("case", "delta_sim", "entry")
    return xr.Dataset(
        {
            "theory_overlap": (dims, th, {"long_name": "SE overlap of mode 1 (diagonal, off)"}),
            "theory_status": (("case", "delta"), th_st.astype(str)),
            "sim_overlap": (dims_s, sim, {"long_name": "AMP matched overlap, mean over trials"}),
            "sim_overlap_sem": (dims_s, sem),
            "sim_status": (("case", "delta_sim"), sim_st.astype(str)),
        },
        coords={"case": names, "delta": delta, "delta_sim": dsim, "entry": ["diag", "off"]},
        attrs={"size": P["size"], "trials": P["trials"]},
    )


def plot(ds: xr.Dataset):
    fig, axes = new_figure(1, 2, fig_kw={"figsize": (10, 4.2), "layout": "constrained"})
    for ax, name in zip(axes, ds.case.values, strict=True):
        for entry, c, lab in (("diag", "C0", r"$M_{ss}$"), ("off", "C3", r"$M_{12}$")):
            ax.plot(ds.delta, ds.theory_overlap.sel(case=name, entry=entry), color=c, lw=1.8,
                    label=f"{lab} (SE)")
            ax.errorbar(ds.delta_sim, ds.sim_overlap.sel(case=name, entry=entry),
                        yerr=ds.sim_overlap_sem.sel(case=name, entry=entry), fmt="o", color=c,
                        ms=5, capsize=2.5, lw=1,
                        label=f"{lab} AMP, N={ds.attrs['size']}, {ds.attrs['trials']} trials")
        ax.set_xlabel(r"noise $\Delta$")
        ax.set_ylabel("overlap of mode 1")
        ax.set_title(f"rank 2, order 2: {LABELS[name]}")
        ax.legend(fontsize=8, frameon=False)
    return fig


def summary(ds: xr.Dataset) -> str:
    lines = [f"  {'case':<12}{'delta':>7}{'SE diag':>9}{'AMP diag ± sem':>20}{'SE off':>9}"
             f"{'AMP off ± sem':>20}"]
    for name in ds.case.values:
        for d in ds.delta_sim.values:
            th = [float(np.interp(d, ds.delta, ds.theory_overlap.sel(case=name, entry=e)))
                  for e in ("diag", "off")]
            s = ds.sel(case=name, delta_sim=d)
            lines.append(
                f"  {name:<12}{d:7.2f}{th[0]:9.3f}{float(s.sim_overlap[0]):12.3f} ± "
                f"{float(s.sim_overlap_sem[0]):<5.3f}{th[1]:9.3f}"
                f"{float(s.sim_overlap[1]):12.3f} ± {float(s.sim_overlap_sem[1]):<5.3f}"
            )
    return "\n".join(lines)
