"""Finite-size trends behind the two demo points where AMP and state evolution part (``p = 3``).

State evolution (SE) is exact as ``N -> inf``; the demo's cubic panels run at
``N = 100-200``, where two of their points sit visibly off the theory. This
figure follows both over ``N`` on the same planted-instance machinery, so the
gap is seen to close rather than asserted to:

(a) **Random start, prior ``N(0.2, 1)``** (fig03's setting, damping 0.5), at
    ``delta = 0.2`` inside the coexistence window ``delta_alg < delta <
    delta_dyn`` (SE from the random start stays on the low branch, ``M ~
    0.055``) and, in the full figure, at ``delta = 0.08`` below ``delta_alg``
    (SE reaches the high branch): the fraction of trials that end on the other
    branch, with a Wilson 68% interval. Measured (seed 7, 16 trials): 0.25,
    0.12, 0.00 at N = 50, 100, 200; an independent run with 32 trials gave
    0.25, 0.25, 0.28, 0.09 at N = 40, 70, 120, 200.
(b) **Why** (the same trials): AMP starts at ``xhat = mu`` (plus ``1e-3``
    noise), whose overlap with mode ``b`` is ``mu mu_hat_b``, with ``mu_hat_b``
    the instance's empirical mean, ``0.2 +- 1/sqrt(N)``. Mode ``a``'s first
    field carries the signal with the weight ``prod_{b != a} mu mu_hat_b``
    against SE's ``mu^(2(p-1))``; the start strength ``min_a prod_{b != a}
    mu_hat_b / mu^(p-1)`` (1 in SE) is plotted against the final overlap.
    Escapes in the window come mostly from strong starts (quick run: 1 of 27
    trials with strength below 0.5 reached the high branch, 5 of 21 above),
    and below ``delta_alg`` the failures are the weak starts; the spread of the strength shrinks as
    ``1/sqrt(N)``, hence (a). The strength alone does not decide every trial:
    the noise tensor's projection on the start enters the first fields at the
    same order, and the per-instance SE of
    :mod:`meanfield.sims.engines.amp_instance` (the instance's empirical prior
    moments, mismatched denoiser) put 38 of 48 trials on the right branch at
    ``delta = 0.08``, N = 150, against 37 for plain SE.
(c) **Steep crossover, no hard phase** (fig05's setting: prior ``N(0.5, 1)``,
    beyond the tricritical mean, ``delta = 0.425`` where the SE branch bends
    down steeply). AMP's MSE per mode against ``1/N`` with the weighted
    ``c0 + c1/N`` fit of :func:`meanfield.scaling.extrapolate_1_over_n`; its
    intercept is compared with SE's MSE (``rho - M``). The per-trial MSE here
    is heavy-tailed (a few trials end well above the rest), so the mean
    converges slowly: 16 trials gave 0.331 ± 0.026 (N = 60) and 0.359 ± 0.027
    (N = 100), a 12-trial run 0.334 ± 0.034, 0.411 ± 0.075 and
    0.391 ± 0.046 (N = 60, 100, 150) against SE 0.338, all within two standard
    errors, with an extrapolation 0.44 ± 0.08 that does not resolve the limit.

Sizes: quick ``N`` = 50/100/200 (a, b; ``delta = 0.2`` only, 16 trials) and 60/100
(c, 8 trials); full: 40-300, both ``delta``, 48 and 24 trials.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from meanfield.sims.engines.amp import run_amp, sample_instance

import meanfield
from meanfield.scaling import extrapolate_1_over_n

from ._io import new_figure

NAME = "fig07_finite_size"
IN_DEMO = True
QUICK_SECONDS = 45

HARD = {"order": 3, "shape": "1,1,1", "prior": "gaussian", "mean": 0.2, "var": 1.0,
        "damping": 0.5}
#: below delta_alg (SE: the random start succeeds) and inside the coexistence window (fails)
HARD_DELTAS = (0.08, 0.2)
STEEP = {"order": 3, "shape": "1,1,1", "prior": "gaussian", "mean": 0.5, "var": 1.0,
         "damping": 0.5, "delta": 0.425}
AMP_KW = {"init": "random", "max_iter": 1000, "tol": 1e-8}


def params(quick: bool) -> dict:
    return {
        "model": "tensor",
        "hard": HARD,
        "hard_deltas": [0.2] if quick else list(HARD_DELTAS),
        "steep": STEEP,
        "hard_sizes": [50, 100, 200] if quick else [40, 70, 120, 200, 300],
        "steep_sizes": [60, 100] if quick else [60, 100, 150, 200, 300],
        "hard_trials": 16 if quick else 48,
        "steep_trials": 8 if quick else 24,
        "batch": 8,
        "seed": 7,
        "amp": AMP_KW,
    }


def _trials(model, n: int, trials: int, batch: int, seed: int):
    """Per trial: mode-averaged overlap and MSE, and the start's strength.

    The strength is ``min_a prod_{b != a} mu_hat_b / mu^(p-1)``: AMP's first
    field on mode ``a`` carries the signal with the weight ``prod_{b != a}
    mu mu_hat_b`` (the start ``xhat = mu`` overlaps mode ``b`` by ``mu
    mu_hat_b``), against ``mu^(2(p-1))`` in state evolution; 1 on average.
    """
    ov, mse, strength, conv = [], [], [], []
    mu = float(model.modes[0].mean)
    for b, start in enumerate(range(0, trials, batch)):
        t = min(batch, trials - start)
        inst = sample_instance(model, n, t, seed * 100_000 + n * 100 + b)
        r = run_amp(model, n, trials=t, instance=inst, **AMP_KW)
        ov.append(np.asarray(r.overlap).mean(axis=1))
        mse.append(np.asarray(r.mse).mean(axis=1))
        conv.append(np.asarray(r.converged, dtype=bool))
        mh = np.array([[float(np.mean(sig[k])) for sig in inst.signals] for k in range(t)])
        p = mh.shape[1]
        pair = np.array([[np.prod(np.delete(row, a)) for a in range(p)] for row in mh])
        strength.append(pair.min(axis=1) / mu ** (p - 1) if mu else np.full(t, np.nan))
    return (np.concatenate(ov), np.concatenate(mse), np.concatenate(strength),
            np.concatenate(conv))


def _wilson(k: int, n: int, z: float = 1.0) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (``z = 1``: about 68%)."""
    p = k / n
    den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return mid - half, mid + half


def compute(quick: bool) -> xr.Dataset:
    P = params(quick)
    tensor = meanfield.get_model("tensor")

    hs = np.asarray(P["hard_sizes"])
    hd = np.asarray(P["hard_deltas"], dtype=float)
    T = P["hard_trials"]
    se_lo, se_hi = np.empty(hd.size), np.empty(hd.size)
    wrong, w_lo, w_hi = (np.empty((hd.size, hs.size)) for _ in range(3))
    h_ov = np.empty((hd.size, hs.size, T))
    h_str = np.empty((hd.size, hs.size, T))
    for j, d in enumerate(hd):
        pt = {**HARD, "delta": float(d)}
        se_lo[j] = float(np.mean(meanfield.solve("tensor", {**pt, "init": "random"})["overlap"]))
        se_hi[j] = float(np.mean(meanfield.solve("tensor", {**pt, "init": "informed"})["overlap"]))
        se_high = abs(se_lo[j] - se_hi[j]) < 1e-6  # random start reaches the high branch
        cut = 0.5 * (HARD["mean"] ** 2 + se_hi[j])
        for i, n in enumerate(hs):
            ov, _, st, _ = _trials(tensor(**pt), int(n), T, P["batch"], P["seed"] + j)
            h_ov[j, i], h_str[j, i] = ov, st
            k = int(np.sum((ov > cut) != se_high))
            wrong[j, i] = k / ov.size
            w_lo[j, i], w_hi[j, i] = _wilson(k, ov.size)

    steep = tensor(**STEEP)
    rho = STEEP["mean"] ** 2 + STEEP["var"]
    se_mse = rho - float(meanfield.solve("tensor", {**STEEP, "init": "random"})["overlap"][0])
    ss = np.asarray(P["steep_sizes"])
    s_mse, s_sem, s_nc = np.empty(ss.size), np.empty(ss.size), np.empty(ss.size, dtype=int)
    for i, n in enumerate(ss):
        _, mse, _, cv = _trials(steep, int(n), P["steep_trials"], P["batch"], P["seed"] + 10)
        s_nc[i] = int(np.sum(~cv))
        s_mse[i], s_sem[i] = mse.mean(), mse.std(ddof=1) / np.sqrt(mse.size)
    c0, c0_se = extrapolate_1_over_n(ss, s_mse, s_sem)

    return xr.Dataset(
        {
            "hard_wrong": (("hard_delta", "hard_size"), wrong,
                           {"long_name": "fraction of random-start trials not on SE's branch"}),
            "hard_wrong_lo": (("hard_delta", "hard_size"), w_lo),
            "hard_wrong_hi": (("hard_delta", "hard_size"), w_hi),
            "hard_overlap": (("hard_delta", "hard_size", "trial"), h_ov,
                             {"long_name": "AMP overlap (mode mean) per trial"}),
            "hard_strength": (("hard_delta", "hard_size", "trial"), h_str,
                              {"long_name": "start strength min_a prod_{b!=a} mu_hat_b / mu^2"}),
            "se_low": (("hard_delta",), se_lo),
            "se_high": (("hard_delta",), se_hi),
            "steep_mse": (("steep_size",), s_mse),
            "steep_mse_sem": (("steep_size",), s_sem),
            "steep_not_converged": (("steep_size",), s_nc,
                                    {"long_name": "trials not converged within max_iter"}),
        },
        coords={"hard_delta": hd, "hard_size": hs, "trial": np.arange(T), "steep_size": ss},
        attrs={"se_mse": se_mse,
               "extrapolated_mse": c0, "extrapolated_mse_se": c0_se,
               "hard_trials": P["hard_trials"], "steep_trials": P["steep_trials"]},
    )


def plot(ds: xr.Dataset):
    fig, (a, c, b) = new_figure(1, 3, fig_kw={"figsize": (14, 4.2), "layout": "constrained"})
    n = ds.hard_size.values
    for j, d in enumerate(ds.hard_delta.values):
        w = ds.hard_wrong.isel(hard_delta=j).values
        lo = ds.hard_wrong_lo.isel(hard_delta=j).values
        hi = ds.hard_wrong_hi.isel(hard_delta=j).values
        side = "SE: succeeds" if abs(ds.se_low.values[j] - ds.se_high.values[j]) < 1e-6 \
            else "SE: stays low"
        a.errorbar(n, w, yerr=[w - lo, hi - w], fmt="o-", color=f"C{j}", capsize=3,
                   label=rf"$\Delta={d:g}$ ({side})")
        st = ds.hard_strength.isel(hard_delta=j).values.ravel()
        ov = ds.hard_overlap.isel(hard_delta=j).values.ravel()
        c.plot(st, ov, "o", color=f"C{j}", ms=3.5, alpha=0.7, label=rf"$\Delta={d:g}$")
    a.axhline(0, color="k", lw=0.8, ls=":", label="SE (N → ∞): 0")
    a.set_xscale("log")
    a.set_xlabel("N")
    a.set_ylabel("fraction of trials off SE's branch")
    a.set_ylim(-0.02, 1.0)
    a.set_title(r"(a) random start, $\mathcal{N}(0.2,1)$"
                f" ({ds.attrs['hard_trials']} trials per point)", fontsize=9)
    a.legend(fontsize=7.5, frameon=False)
    c.axvline(1.0, color="0.5", lw=0.8, ls="--")
    c.set_xlabel(r"start strength $\min_a \prod_{b\neq a}\hat\mu_b/\mu^2$ (SE: 1)")
    c.set_ylabel("AMP overlap per trial (mode mean)")
    c.set_title("(b) which instances fail: small empirical means", fontsize=9)
    c.legend(fontsize=7.5, frameon=False)

    x = 1.0 / ds.steep_size.values
    b.errorbar(x, ds.steep_mse.values, yerr=ds.steep_mse_sem.values, fmt="o", color="C2",
               capsize=3, label="AMP MSE (mode mean) ± sem")
    c0, c0e = ds.attrs["extrapolated_mse"], ds.attrs["extrapolated_mse_se"]
    if np.isfinite(c0):
        w = 1.0 / np.maximum(ds.steep_mse_sem.values, 1e-12) ** 2
        c1 = np.sum(w * x * (ds.steep_mse.values - c0)) / np.sum(w * x * x)
        xs = np.linspace(0, x.max() * 1.05, 50)
        b.plot(xs, c0 + c1 * xs, color="C2", lw=1, ls="--",
               label=f"c0 + c1/N fit: c0 = {c0:.3f} ± {c0e:.3f}")
    b.plot([0], [ds.attrs["se_mse"]], "k*", ms=11, label=f"SE MSE = {ds.attrs['se_mse']:.3f}")
    b.set_xlim(left=0)
    b.set_xlabel("1/N")
    b.set_ylabel("MSE per mode")
    b.set_title(r"(c) steep crossover, $\mathcal{N}(0.5,1)$, $\Delta=0.425$"
                f" ({ds.attrs['steep_trials']} trials)", fontsize=9)
    b.legend(fontsize=7.5, frameon=False)
    return fig


def summary(ds: xr.Dataset) -> str:
    """Plain-text table of both trends."""
    lines = ["  (a) random start, N(0.2, 1): fraction of trials off SE's branch"]
    for j, d in enumerate(ds.hard_delta.values):
        row = f"      delta {d:.2f} (SE M {ds.se_low.values[j]:.3f}):"
        for i, n in enumerate(ds.hard_size.values):
            row += (f"  N={int(n)} {ds.hard_wrong.values[j, i]:.2f} "
                    f"[{ds.hard_wrong_lo.values[j, i]:.2f},{ds.hard_wrong_hi.values[j, i]:.2f}]")
        lines.append(row)
    for j, d in enumerate(ds.hard_delta.values):
        st = ds.hard_strength.isel(hard_delta=j).values.ravel()
        high = ds.hard_overlap.isel(hard_delta=j).values.ravel() > 0.3
        weak = st < 0.5
        lines.append(f"      delta {d:.2f}: on the high branch {int(high[weak].sum())} of "
                     f"{int(weak.sum())} trials with start strength < 0.5, "
                     f"{int(high[~weak].sum())} of {int((~weak).sum())} with >= 0.5")
    lines.append(f"  (c) steep crossover, N(0.5, 1), delta 0.425: SE MSE {ds.attrs['se_mse']:.4f}")
    for n, m, s, nc in zip(ds.steep_size.values, ds.steep_mse.values, ds.steep_mse_sem.values,
                           ds.steep_not_converged.values, strict=True):
        lines.append(f"      N = {int(n):4d}: {m:.4f} ± {s:.4f}  ({int(nc)} not converged)")
    lines.append(f"      1/N extrapolation: {ds.attrs['extrapolated_mse']:.4f} ± "
                 f"{ds.attrs['extrapolated_mse_se']:.4f}")
    return "\n".join(lines)
