"""Curl descent: the chaos order parameter q and the maximal Lyapunov exponent against
alpha_h (digest Fig. 3b analogue; linear network started at the renormalised teacher,
full batch, normalised).

``q = <var_t theta_i>_i / var_i <theta_i>_t`` over the last ``tail`` epochs (published
definition) and the two-trajectory exponent of the simulated map; dashed lines: the
large-N ``alpha_h*`` at each c. The published runs are 1e5 epochs at (50, 169),
(62, 157), (73, 146); quick uses smaller networks and far fewer epochs.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ._io import new_figure

NAME = "fig22_cd_q_vs_alpha"
IN_DEMO = False


def params(quick: bool) -> dict:
    return {"model": "curl_descent",
            "shapes": [[15, 50], [20, 50]] if quick else [[50, 169], [62, 157], [73, 146]],
            "alpha_h": {"n": 5 if quick else 13}, "seeds": 2 if quick else 5,
            "epochs": 300 if quick else 5000, "tail": 100 if quick else 1000,
            "lyap_epochs": 100 if quick else 1000}


def compute(quick: bool) -> xr.Dataset:
    from meanfield.sims.engines.learning import student_teacher as st

    import meanfield

    P = params(quick)
    al = np.linspace(0, 1, P["alpha_h"]["n"])
    seeds = np.arange(P["seeds"])
    cs, q, qs, ly, lys, star = [], [], [], [], [], []
    for i, (n, k) in enumerate(P["shapes"]):
        b = st.make_batch(n, k, np.repeat(al, seeds.size), 0.0, np.tile(seeds, al.size) + 77 * i,
                          init="teacher", data_seed=i)
        r = st.train(b, epochs=P["epochs"], batch_size=250, tail=P["tail"], lyapunov=True,
                     lyap_epochs=P["lyap_epochs"], record=5)
        with np.errstate(divide="ignore"):
            lq = np.log10(np.maximum(r["q"], 1e-40)).reshape(al.size, seeds.size)
        lv = r["lyapunov"].reshape(al.size, seeds.size)
        q.append(lq.mean(1))
        qs.append(lq.std(1, ddof=1) / np.sqrt(seeds.size))
        ly.append(lv.mean(1))
        lys.append(lv.std(1, ddof=1) / np.sqrt(seeds.size))
        cs.append(n / k)
        t = meanfield.threshold("curl_descent", {"c": n / k}, param="alpha_h")
        star.append(1.0 if t["value"] is None else t["value"])
    return xr.Dataset(
        {"log10_q": (("c", "alpha_h"), np.array(q)),
         "log10_q_sem": (("c", "alpha_h"), np.array(qs)),
         "lyapunov": (("c", "alpha_h"), np.array(ly)),
         "lyapunov_sem": (("c", "alpha_h"), np.array(lys)), "alpha_star": ("c", star)},
        coords={"c": cs, "alpha_h": al})


def plot(ds: xr.Dataset):
    fig, axes = new_figure(1, 2, fig_kw={"figsize": (9.5, 3.8), "layout": "constrained"})
    a = ds["alpha_h"].values
    for i, c in enumerate(ds["c"].values):
        (l,) = axes[0].plot(a, ds["log10_q"].values[i], lw=3, label=f"c = {c:.2f}")
        axes[0].axvline(ds["alpha_star"].values[i], color=l.get_color(), ls="--")
        axes[1].errorbar(a, ds["lyapunov"].values[i], yerr=ds["lyapunov_sem"].values[i],
                         color=l.get_color(), marker="o", ms=3)
        axes[1].axvline(ds["alpha_star"].values[i], color=l.get_color(), ls="--")
    axes[0].set_ylabel("log10 q")
    axes[1].set_ylabel("max Lyapunov exponent (per epoch)")
    axes[1].axhline(0, color="0.5", lw=1)
    for ax in axes:
        ax.set_xlabel(r"$\alpha_h$")
    axes[0].legend(frameon=False)
    return fig


def summary(ds: xr.Dataset) -> str:
    return "log10 q at alpha_h = 0 / 1: " + ", ".join(
        f"c={c:.2f}: {q[0]:.0f} / {q[-1]:.0f}" for c, q in zip(ds["c"].values,
                                                              ds["log10_q"].values, strict=True))
