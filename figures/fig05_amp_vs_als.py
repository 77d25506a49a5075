"""AMP against ALS (``p = 3``, prior ``N(0.5, 1)``, damping 0.5): MSE per mode against noise.

Kadmon & Ganguli (2018) state that AMP "significantly outperforms" alternating
least squares once the data are noisy (``shared/papers/tensor.md`` §6). On
the same planted instances, for a cubic and a non-cubic shape: AMP from the
random start, rank-one CP-ALS (:mod:`sims.als`; SVD start plus random
restarts, best residual kept) and the state-evolution prediction from the
random start (``MSE_a = rho_a - M_a``). Mean ± sem over trials.

The ALS MSE (filled squares) uses the best scaling of each mode's factor
against the planted signal (which also fixes the sign), information ALS does
not have: it is an upper bound on ALS's performance. Hollow squares: ALS at
its own scale (the rank-one fit split evenly over the modes, only the sign
from the truth). The last column is gauge-free: the relative error
``||Xhat - X|| / ||X||`` of the reconstructed signal tensor
``X = N^{-(p-1)/2} x_1 (x) x_2 (x) x_3`` (AMP: the product of its posterior
means; theory: ``sqrt(1 - prod_a M_a / rho_a)``). Vertical lines: the
algorithmic and information thresholds from :func:`meanfield.threshold`
(none here).

The prior mean 0.5 lies beyond the tricritical point (``mu_c = 0.354``): no
hard phase, so AMP from the random start is Bayes-optimal at every noise and
the comparison is not dominated by finite-N failures. Sizes N = 100 (quick,
8 AMP trials, ALS on the first 4) and 200 (12 trials). With 4 trials at N = 100 AMP's MSE at
``delta = 0.425`` (where the SE branch bends down steeply) was 0.474 ± 0.074
against SE 0.338 (1.8 standard errors; the per-trial MSE is skewed on the
crossover, so 4 trials do not resolve it). Over 16 trials
the same point gives 0.331 ± 0.026 (N = 60) and 0.359 ± 0.027 (N = 100), and
fig07 panel (c) follows it over N = 60-300 with the 1/N extrapolation.
With mean 0.2 at these sizes AMP's random start often stays on the low
branch below ``delta_alg``: the modes' empirical means fluctuate by
``~1/sqrt(N)``, comparable to 0.2 (compare fig03).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import xarray as xr
from meanfield.sims.als import als_on_instance
from meanfield.sims.engines.amp import run_amp, sample_instance

import meanfield

from ._io import new_figure
from ._theory import se_curve

NAME = "fig05_amp_vs_als"
QUICK_SECONDS = 35

BASE = {"order": 3, "prior": "gaussian", "mean": 0.5, "var": 1.0, "damping": 0.5}
SHAPES = ("1,1,1", "2,1,0.5")
KINDS = ("algorithmic", "information")
METHODS = ("amp", "als")


def params(quick: bool) -> dict:
    return {
        "model": "tensor",
        "base": BASE,
        "shapes": list(SHAPES),
        "theory_delta": {"lo": 0.05, "hi": 1.5, "n": 120 if quick else 300},
        "sim_delta": {"lo": 0.1, "hi": 1.4, "n": 5 if quick else 10},
        "size": 100 if quick else 200,
        "trials": 8 if quick else 12,
        "als_trials": 4 if quick else 12,
        "seed": 0,
        "amp": {"init": "random", "max_iter": 1000, "tol": 1e-8},
        "als": {"rank": 1, "init": "svd", "restarts": 2 if quick else 10, "n_iter_max": 500,
                "tol": 1e-8},
    }


def _tensor_error(estimates, signals, t: int) -> float:
    """``||Xhat - X|| / ||X||`` for rank-one tensors, from the factors (no tensor built)."""
    xh = [np.asarray(e[t], dtype=float) for e in estimates]
    x = [np.asarray(s[t], dtype=float) for s in signals]
    hh = np.prod([a @ a for a in xh])
    hx = np.prod([a @ b for a, b in zip(xh, x, strict=True)])
    xx = np.prod([b @ b for b in x])
    return float(np.sqrt(max(hh - 2 * hx + xx, 0.0) / xx))


def compute(quick: bool) -> xr.Dataset:
    P = params(quick)
    td, sd = P["theory_delta"], P["sim_delta"]
    delta = np.linspace(td["lo"], td["hi"], td["n"])
    dsim = np.linspace(sd["lo"], sd["hi"], sd["n"])
    S, D, T, p = len(SHAPES), dsim.size, P["trials"], BASE["order"]
    als_kw = {k: v for k, v in P["als"].items() if k != "rank"}

    se_mse = np.empty((S, delta.size, p))
    se_terr = np.empty((S, delta.size))
    se_status = np.empty((S, delta.size), dtype=object)
    thr = np.full((S, len(KINDS)), np.nan)
    thr_st = np.full((S, len(KINDS)), "", dtype=object)
    mse = np.full((len(METHODS), S, D, T, p), np.nan)
    terr = np.full((len(METHODS), S, D, T), np.nan)
    conv = np.full((len(METHODS), S, D, T), np.nan)
    als_overlap = np.full((S, D, T, p), np.nan)
    als_plugin = np.full((S, D, T, p), np.nan)
    for s, shape in enumerate(SHAPES):
        base = {**BASE, "shape": shape}
        model = meanfield.get_model("tensor")(**base)
        rho = np.array([pr.mean**2 + pr.var for pr in model.modes])
        M, st = se_curve(model, "delta", delta, init="random")
        se_mse[s] = rho[None, :] - M
        se_terr[s] = np.sqrt(np.clip(1.0 - np.prod(M / rho[None, :], axis=1), 0.0, None))
        se_status[s] = st
        for k, kind in enumerate(KINDS):
            r = meanfield.threshold("tensor", base, param="delta", kind=kind)
            thr[s, k] = np.nan if r["value"] is None else r["value"]
            thr_st[s, k] = r["status"]
        for j, d in enumerate(dsim):
            m = model.replace(delta=float(d))
            inst = sample_instance(m, P["size"], T, P["seed"] + j)
            a = run_amp(m, P["size"], trials=T, instance=inst, **P["amp"])
            mse[0, s, j] = a.mse
            conv[0, s, j] = a.converged
            terr[0, s, j] = [_tensor_error(a.estimates, inst.signals, t) for t in range(T)]
            k = P["als_trials"]  # ALS (the baseline, costlier) on the first k instances
            sub = dataclasses.replace(inst, signals=[x[:k] for x in inst.signals], Y=inst.Y[:k],
                                      init_noise=[z[:k] for z in inst.init_noise])
            b = als_on_instance(m, sub, seed=P["seed"] + j, **als_kw)
            mse[1, s, j, :k] = b["mse"]
            conv[1, s, j, :k] = b["converged"]
            terr[1, s, j, :k] = b["tensor_error"]
            als_overlap[s, j, :k] = b["overlap"]
            als_plugin[s, j, :k] = b["mse_plugin"]

    def sem(x, axis):
        n = np.sum(np.isfinite(x), axis=axis)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.nanstd(x, axis=axis, ddof=1) / np.sqrt(n)

    dm, ds_ = ("algo", "shape", "delta_sim", "mode"), ("algo", "shape", "delta_sim")
    with np.errstate(invalid="ignore"):
        mse_mean, terr_mean = np.nanmean(mse, axis=3), np.nanmean(terr, axis=3)
    return xr.Dataset(
        {
            "se_mse": (("shape", "delta", "mode"), se_mse,
                       {"long_name": "state evolution (random start): rho_a - M_a"}),
            "se_tensor_error": (("shape", "delta"), se_terr,
                                {"long_name": "sqrt(1 - prod_a M_a / rho_a)"}),
            "se_status": (("shape", "delta"), se_status.astype(str)),
            "mse": (dm, mse_mean, {"long_name": "MSE per mode, mean over trials (ALS: best "
                                                "scaling against the truth)"}),
            "mse_sem": (dm, sem(mse, 3)),
            "mse_trials": (("algo", "shape", "delta_sim", "trial", "mode"), mse),
            "tensor_error": (ds_, terr_mean, {"long_name": "||Xhat - X|| / ||X||, mean over "
                                                           "trials"}),
            "tensor_error_sem": (ds_, sem(terr, 3)),
            "converged": (ds_, np.nanmean(conv, axis=3),
                          {"long_name": "fraction of trials converged"}),
            "als_mse_plugin": (("shape", "delta_sim", "mode"), np.nanmean(als_plugin, axis=2),
                               {"long_name": "ALS MSE at its own scale (sign from the truth)"}),
            "als_mse_plugin_sem": (("shape", "delta_sim", "mode"), sem(als_plugin, 2)),
            "als_overlap": (("shape", "delta_sim", "mode"), np.nanmean(als_overlap, axis=2),
                            {"long_name": "ALS normalised overlap |<u,x>|/(|u||x|)"}),
            "threshold": (("shape", "kind"), thr, {"long_name": "threshold in delta"}),
            "threshold_status": (("shape", "kind"), thr_st.astype(str)),
        },
        coords={"algo": list(METHODS), "shape": list(SHAPES), "delta": delta,
                "delta_sim": dsim, "mode": np.arange(1, p + 1), "trial": np.arange(T),
                "kind": list(KINDS)},
        attrs={"size": P["size"], "trials": T, "als_restarts": P["als"]["restarts"]},
    )


def plot(ds: xr.Dataset):
    p = ds.sizes["mode"]
    S = ds.sizes["shape"]
    fig, axes = new_figure(S, p + 1, sharex=True, squeeze=False,
                           fig_kw={"figsize": (3.0 * (p + 1), 2.7 * S + 0.6),
                                   "layout": "constrained"})
    d, x = ds.delta.values, ds.delta_sim.values
    style = {"amp": ("C0", "o", "AMP"), "als": ("C3", "s", "ALS (best scaling)")}
    thr_style = {"algorithmic": (":", r"$\Delta_{\rm alg}$"),
                 "information": ("-.", r"$\Delta_{\rm IT}$")}
    for s, shape in enumerate(ds.shape.values):
        row = axes[s]
        for c in range(p + 1):
            ax = row[c]
            if c < p:
                th = ds.se_mse.sel(shape=shape).isel(mode=c).values
                ys = {m: (ds.mse.sel(algo=m, shape=shape).isel(mode=c).values,
                          ds.mse_sem.sel(algo=m, shape=shape).isel(mode=c).values)
                      for m in ds.algo.values}
                ax.set_title(f"shape ({shape}), mode {c + 1}: MSE", fontsize=9)
            else:
                th = ds.se_tensor_error.sel(shape=shape).values
                ys = {m: (ds.tensor_error.sel(algo=m, shape=shape).values,
                          ds.tensor_error_sem.sel(algo=m, shape=shape).values)
                      for m in ds.algo.values}
                ax.set_title(rf"shape ({shape}): $\|\hat X - X\|/\|X\|$", fontsize=9)
            ax.plot(d, th, color="k", lw=1.5, label="state evolution")
            if c < p:
                y = ds.als_mse_plugin.sel(shape=shape).isel(mode=c).values
                e = ds.als_mse_plugin_sem.sel(shape=shape).isel(mode=c).values
                ax.errorbar(x + 0.006, y, yerr=e, fmt="s", color="C3", mfc="white", ms=4.5,
                            capsize=2, lw=0.8, label="ALS (own scale)")
            for k, (m, (y, e)) in enumerate(ys.items()):
                col, mk, lab = style.get(m, ("C2", "^", m))
                off = (k - 0.5) * 0.004  # side by side
                ax.errorbar(x + off, y, yerr=e, fmt=mk, color=col, ms=4.5, capsize=2, lw=1,
                            label=lab)
            for kind in ds.kind.values:
                v = float(ds.threshold.sel(shape=shape, kind=kind))
                if np.isfinite(v):
                    ls, lab = thr_style.get(kind, ("--", kind))
                    ax.axvline(v, color="0.45", ls=ls, lw=1, label=f"{lab}")
            ax.set_ylim(0, min(ax.get_ylim()[1], 2.6))
            if s == S - 1:
                ax.set_xlabel(r"noise $\Delta$")
    axes[0][0].legend(fontsize=7, frameon=False, loc="upper left")
    fig.suptitle(rf"$p=3$, prior $\mathcal{{N}}(0.5,1)$: AMP vs ALS "
                 rf"(N={ds.attrs['size']}, {ds.attrs['trials']} trials, "
                 rf"ALS: SVD start + {int(ds.attrs['als_restarts']) - 1} random restarts)",
                 fontsize=10)
    return fig


def summary(ds: xr.Dataset) -> str:
    """Plain-text table: mode-averaged MSE of SE, AMP and ALS, and the tensor error."""
    lines = []
    for shape in ds.shape.values:
        st = (ds.threshold_status.sel(shape=shape).values if "threshold_status" in ds
              else ["-"] * ds.kind.size)
        thr = ", ".join(f"{k} {float(v):.3f}" if np.isfinite(v) else f"{k} none ({s})"
                        for k, v, s in zip(ds.kind.values, ds.threshold.sel(shape=shape).values,
                                           st, strict=True))
        lines.append(f"  shape ({shape}); thresholds in delta: {thr}")
        if not np.isfinite(ds.threshold.sel(shape=shape).values).any():
            lines.append("  (prior mean beyond the tricritical point: no transition in delta,"
                         " a smooth crossover)")
        lines.append(f"  {'delta':>6}{'SE mse':>9}{'AMP mse':>17}{'ALS mse':>17}"
                     f"{'AMP terr':>11}{'ALS terr':>11}")
        for dv in ds.delta_sim.values:
            se = float(ds.se_mse.sel(shape=shape).interp(delta=dv).mean("mode"))
            row = f"  {dv:6.3f}{se:9.3f}"
            for m in ds.algo.values:
                per = ds.mse_trials.sel(algo=m, shape=shape, delta_sim=dv).mean("mode").values
                per = per[np.isfinite(per)]
                e = per.std(ddof=1) / np.sqrt(per.size) if per.size > 1 else np.nan
                row += f"{per.mean() if per.size else np.nan:9.3f} ± {e:<5.3f}"
            for m in ds.algo.values:
                row += f"{float(ds.tensor_error.sel(algo=m, shape=shape, delta_sim=dv)):11.3f}"
            lines.append(row)
    return "\n".join(lines)
