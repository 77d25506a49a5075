"""Compiled state evolution against sympy, beyond order 2 with a Gaussian prior (issue 8).

The map, its sympy-derived Jacobian and the replica-symmetric potential of
the tensor model, compiled (``System.evaluate``) against sympy's own
evaluation (Gaussian expectations by 121-point Gauss-Hermite,
``test_model_contract._sympy_value``), at a random interior state: discrete
and sparse priors, orders 3 and 4, and rank 2. All under ``slow``: sympy's
own evaluation of the Jacobian's Gaussian expectations takes minutes per case
on the shared cores (not measured idle).
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from test_model_contract import _sympy_value

from meanfield import get_model

CASES = {
    "order3-discrete": dict(order=3, prior="rademacher,sparse_rademacher,gauss_bernoulli",
                            mean="0.2,0,0", rho="0.5,0.3,0.4", shape="1,1.5,0.7", delta=0.2),
    "order4-mixed": dict(order=4, prior="gaussian,rademacher,gaussian,gauss_bernoulli",
                         mean="0.3,0,0,0", delta=0.1),
}
SLOW = {
    "order3-rank2": dict(order=3, rank=2, prior="rademacher", delta=0.2),
}


def _compare(params, what, seed=0):
    model = get_model("tensor")(**params)
    system = model.system()
    rng = np.random.default_rng(seed)
    theta = model.theta()
    state = rng.uniform(0.2, 0.8, size=system.dim)
    subs = dict(zip(system.state, state, strict=True))
    subs.update(zip(system.params, theta, strict=True))
    got = np.atleast_1d(system.evaluate(what, state, theta)).ravel()
    if what == "rhs":
        exprs = list(system.rhs)
    elif what == "jacobian":
        exprs = list(sp.Matrix(system.jacobian))
    else:
        exprs = [system.potential]
    exact = np.array([_sympy_value(e, subs) for e in exprs])
    # 121 vs the compiled rule's nodes on smooth integrands
    np.testing.assert_allclose(got, exact, rtol=1e-9, atol=1e-11)


@pytest.mark.slow
@pytest.mark.parametrize("what", ["rhs", "jacobian", "potential"])
@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_compiled_equals_sympy(case, what):
    _compare(CASES[case], what)


@pytest.mark.slow
@pytest.mark.parametrize("what", ["rhs", "jacobian", "potential"])
@pytest.mark.parametrize("case", list(SLOW), ids=list(SLOW))
def test_compiled_equals_sympy_rank2(case, what):
    _compare(SLOW[case], what)
