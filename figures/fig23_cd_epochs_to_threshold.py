"""Curl descent: epochs to reach test error 1e-3 for gradient descent and curl descent
against the number of rule-flipped readout neurons (digest Fig. 5f analogue: tanh
100-10-1, P = 2000, student scale s = 2, normalised, minibatch 10).

Every (rule, seed) is one configuration of one batched run; runs that never reach the
threshold are censored at the last epoch (as in the published analysis, pitfall 8).
Published (1e5 epochs): GD ~2540-2912 for every n2; curl 1215, 1635, 1451, 2262, 2627,
... never at n2 = 10. Quick: a smaller network and data set, few epochs.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ._io import new_figure

NAME = "fig23_cd_epochs_to_threshold"
IN_DEMO = False


def params(quick: bool) -> dict:
    return {"model": "curl_descent", "n": 30 if quick else 100, "k": 5 if quick else 10,
            "samples": 300 if quick else 2000, "s": 2.0, "seeds": 2 if quick else 10,
            "epochs": 300 if quick else 20000, "n2": [0, 1, 2] if quick else list(range(11)),
            "threshold": -3.0}


def compute(quick: bool) -> xr.Dataset:
    from meanfield.sims.engines.learning import student_teacher as st

    P = params(quick)
    n2 = np.asarray(P["n2"])
    seeds = np.arange(P["seeds"])
    ar = np.repeat(n2 / P["k"], seeds.size)
    b = st.make_batch(P["n"], P["k"], 0.0, ar, np.tile(seeds, n2.size), s=P["s"],
                      samples=P["samples"])
    r = st.train(b, phi="tanh", epochs=P["epochs"], batch_size=10, record=100,
                 threshold=P["threshold"])
    ep = r["epochs_to_threshold"].reshape(n2.size, seeds.size)
    return xr.Dataset({"epochs": (("n2",), ep.mean(1)),
                       "epochs_sem": (("n2",), ep.std(1, ddof=1) / np.sqrt(seeds.size)),
                       "reached": (("n2",), (ep < P["epochs"]).mean(1))},
                      coords={"n2": n2})


def plot(ds: xr.Dataset):
    fig, ax = new_figure(fig_kw={"figsize": (5.2, 4.0), "layout": "constrained"})
    n2 = ds["n2"].values
    ax.axhline(ds["epochs"].values[0], color="0.3", ls="--", label="GD (n2 = 0)")
    ax.errorbar(n2[1:], ds["epochs"].values[1:], yerr=ds["epochs_sem"].values[1:], fmt="o-",
                color="#C1121F", label="curl descent")
    ax.set_yscale("log")
    ax.set_xlabel("rule-flipped readout neurons n2")
    ax.set_ylabel("epochs to 1e-3 test error")
    ax.legend(frameon=False)
    return fig


def summary(ds: xr.Dataset) -> str:
    return "epochs to threshold: " + ", ".join(
        f"n2={n}: {e:.0f}" for n, e in zip(ds["n2"].values, ds["epochs"].values, strict=True))
