"""Traced phase boundaries report the algorithmic threshold of columns whose
hard window reaches the bottom of the range (issue 9, item 4).

Order 3 with a mean-zero prior: the uninformative point is stable for every
``delta > 0`` from the random start, so ``threshold(kind="algorithmic")`` is
exactly 0 (no easy region). Columns continued from their neighbours (no
algorithmic fold to track) used to report NaN for it while the first, fully
continued, column reported 0.
"""

from __future__ import annotations

import numpy as np

import meanfield


def test_sparse_rademacher_columns_agree_with_threshold():
    xs = np.linspace(0.3, 1.0, 6)
    ys = np.linspace(0.005, 0.5, 16)
    ds = meanfield.api.phase("tensor", {"order": 3, "prior": "sparse_rademacher"},
                             x="rho", xs=xs, ys=ys)
    assert (ds.status.values == "first_order").all()
    np.testing.assert_array_equal(ds.algorithmic.values, np.zeros(xs.size))
    for rho, info in zip(xs[::5], ds.information.values[::5], strict=True):
        t = meanfield.threshold("tensor", {"order": 3, "prior": "sparse_rademacher",
                                           "rho": float(rho)}, param="delta", kind="information")
        assert t["value"] is not None
        # both are Newton-converged roots of the free-energy difference: 1e-8 relative
        assert abs(info - t["value"]) <= 1e-8 * t["value"], (rho, info, t["value"])


def test_small_mean_columns_below_the_range_are_nan_like_threshold():
    # Rademacher N(mu) at small mu: the algorithmic fold lies below the range's
    # bottom (threshold() says out_of_range), at mu = 0 it is exactly 0
    xs = np.array([0.0, 0.002, 0.004, 0.006])
    ys = np.linspace(0.005, 0.5, 16)
    base = {"order": 3, "prior": "rademacher"}
    ds = meanfield.api.phase("tensor", base, x="mean", xs=xs, ys=ys)
    for mu, alg in zip(xs, ds.algorithmic.values, strict=True):
        t = meanfield.threshold("tensor", {**base, "mean": float(mu), "delta": 0.1},
                                param="delta", kind="algorithmic", lo=0.005, hi=0.5)
        if t["value"] is None:
            assert t["status"] == "out_of_range" and np.isnan(alg), (mu, alg, t)
        else:
            assert alg == t["value"], (mu, alg, t)
    assert ds.algorithmic.values[0] == 0.0 and np.isnan(ds.algorithmic.values[1:]).all()


def test_a_fold_newton_that_leaves_the_domain_reports_failure():
    """``refine_fold`` from a state where the map is not finite returns
    ``converged=False`` (it raised ``LinAlgError: SVD did not converge`` from a
    tracked column of the 64 x 64 Rademacher benchmark, linear delta axis), and
    that benchmark's diagram completes."""
    from meanfield import get_model
    from meanfield.solvers.continuation import _Eval, refine_fold
    from meanfield.solvers.continuation_threshold import cached_continuation

    m = get_model("tensor")(order=3, prior="rademacher", mean=0.2)
    ev = _Eval(cached_continuation(m, "delta", 0.005, 0.5, False).path)
    for v in (1e300, np.nan):
        assert not refine_fold(ev, np.full(ev.d, v), 0.5)[2]
    ds = meanfield.api.phase(
        "tensor", {"order": 3, "prior": "rademacher"}, x="mean",
        xs=np.linspace(0, 0.4, 64), ys=np.linspace(0.005, 0.5, 64),
    )
    assert ds.attrs["grid_columns"] == 0
    assert set(ds.status.values.tolist()) <= {"first_order", "none", "continuous"}
