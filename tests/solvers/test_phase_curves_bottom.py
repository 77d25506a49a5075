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
