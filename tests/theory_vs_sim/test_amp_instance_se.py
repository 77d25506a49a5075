"""Per-instance state evolution (sims.engines.amp_instance): implementation checks.

It is not a per-trial predictor (see the module docstring: 38/48 trials on the
right branch against 37/48 for the ordinary SE); tested here: with an
instance whose empirical moments equal the prior's, it is the ordinary state
evolution (the model's fixed point from ``meanfield.solve``, 1e-6), from the
informed start in the easy phase.
"""

import numpy as np
import pytest
from meanfield.sims.engines.amp import sample_instance
from meanfield.sims.engines.amp_instance import instance_state_evolution

import meanfield
from meanfield import get_model


@pytest.mark.parametrize("delta", [0.08, 0.2])
def test_matched_moments_give_the_ordinary_state_evolution(delta):
    p = {"order": 3, "prior": "gaussian", "mean": 0.2, "var": 1.0, "damping": 0.5,
         "delta": delta, "init": "informed"}
    m = get_model("tensor")(**p)
    inst = sample_instance(m, 40, 2, seed=1)
    inst.signals = [0.2 + (s - s.mean(axis=1, keepdims=True)) / s.std(axis=1, keepdims=True)
                    for s in inst.signals]
    got = instance_state_evolution(m, inst)
    want = meanfield.solve("tensor", p)["overlap"]
    np.testing.assert_allclose(got, np.broadcast_to(want, got.shape), rtol=1e-6)


def test_rejects_non_gaussian_priors():
    m = get_model("tensor")(order=3, prior="rademacher", delta=0.1)
    inst = sample_instance(m, 5, 1, seed=0)
    with pytest.raises(ValueError, match="Gaussian"):
        instance_state_evolution(m, inst)
