"""Batched state evolution over one parameter: a thin wrapper on the solver API.

``meanfield.solvers.fixed_point.iterate`` solves many parameter values in one
compiled call, which is far cheaper than :func:`meanfield.solve` in a loop.
"""

from __future__ import annotations

import numpy as np

from meanfield.solvers.fixed_point import iterate

__all__ = ["se_curve"]


def se_curve(model, param: str, values, init: str = "random"):
    """Fixed points of ``model``'s state evolution at each ``param`` value.

    Returns
    -------
    state : array (n, dim)
        Order parameters (overlap per mode for the tensor model).
    status : array (n,) of str
        ``ok``, ``not_converged`` or ``diverged`` per value.
    """
    values = np.asarray(values, dtype=float)
    theta, s0, _ = model.vary(param, values)
    s0 = s0[:, list(model.inits).index(init)]
    state, _, status = iterate(model.system(), s0, theta, **model.solver_options())
    return state, status.astype(str)
