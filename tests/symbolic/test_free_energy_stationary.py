"""The replica free entropy is stationary at every state-evolution fixed point.

Phi(M) = sum_a n_a psi_a(Mhat_a) - (p-1)/(2 Delta) prod_b n_b M_b with
dpsi/dlam = F/2 (I-MMSE) makes dPhi/dM_a = 0 exactly where M = F(Mhat(M))
(tensor.md §3). The gradient is derived by sympy from the declared potential
and compiled; fixed points come from the iteration and from Newton (unstable
branch included).
"""

import numpy as np
import pytest
import sympy as sp

from meanfield import _codegen, get_model
from meanfield.solvers.fixed_point import all_fixed_points

pytestmark = pytest.mark.symbolic


@pytest.mark.parametrize(
    "params,tol",
    [
        # tolerance: Gaussian priors integrate exactly, so the fixed points'
        # own accuracy (iteration tol 1e-12) sets 1e-10; discrete priors carry
        # the 81-node Gauss-Hermite error of the two different integrands
        # (~1e-6 at lam ~ 3-5, see test_priors_derived)
        (dict(order=2, prior="gaussian", shape="2,0.5", delta=0.4), 1e-10),
        (dict(order=2, prior="rademacher,gaussian", delta=0.5), 1e-5),
        (dict(order=3, prior="gaussian", mean=0.2, delta=0.2), 1e-10),
        (dict(order=3, prior="rademacher", delta=0.25, shape="1.2,1,0.8"), 1e-5),
        (dict(order=4, prior="gaussian", mean=0.3, delta=0.2), 1e-10),
    ],
)
def test_free_entropy_gradient_vanishes_at_fixed_points(params, tol):
    model = get_model("tensor")(**params)
    system = model.system()
    grad = [sp.diff(system.potential, m) for m in system.state]
    fn = _codegen.scalar_function(grad, [*system.state, *system.params], name="grad_phi")
    fps = all_fixed_points(model)
    assert fps
    for f in fps:
        g = np.array(fn(*f["state"], *model.theta()))
        assert np.max(np.abs(g)) < tol, (f["state"], g)
    # and the potential orders the stable branches: the global maximiser is
    # the Bayes-optimal one (tensor.md §3)
    stable = [f for f in fps if f["stable"]]
    best = max(stable, key=lambda f: f["free_energy"])
    assert best["free_energy"] >= max(f["free_energy"] for f in fps) - 1e-12
