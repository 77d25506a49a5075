"""AMP's first iterations against state evolution's M_t, t = 1..5 (issue 8, item 3).

The transient from the random start is the part of the dynamics most
sensitive to the Onsager reaction term (tensor.md §9.3: without it AMP still
converges at moderate noise, but no longer along the SE trajectory). AMP runs
undamped (``damping = 1``: state evolution describes the undamped parallel
iteration; damping changes the transient, not the fixed points, §9.4) for
exactly five iterations from ``xhat^0 = E[x] + 1e-3 z``; the SE iterates
``M_{t+1} = F(M_t)`` from ``M_0 = E[x]^2`` (the model's random start with its
``eps``). Per iteration, the control-variate estimate of AMP's mean overlap
(averaged over the modes) must agree with ``M_t`` within ``N_SIGMA`` standard
errors plus a stated finite-size lag ``TRAJ_BIAS``, the pass band at most
``TRAJ_PRECISION`` of ``M_t`` (:func:`tolerances.assert_powered`).

Power: the transient's fluctuations are the O(N^{-1/2}) sampling noise of
each iteration (control variates remove little of it: measured 3-7% bands per
mode at N = 200 with 16 trials), so the mode average over 48 trials at
N = 200. Smaller N with more trials is not an option: at N = 100 AMP lags the
SE trajectory by up to 7% at t = 3 (96 trials, 6 SE).

Order 2 is not tested here: its AMP uses the sequential (UV) schedule, whose
trajectory is not the parallel SE's.
"""

from __future__ import annotations

import numpy as np
import pytest
from meanfield.sims.engines.amp import run_amp, sample_instance
from test_tensor_theory_vs_amp import N_SIGMA, signal_controls
from tolerances import assert_powered, control_variate_mean

from meanfield import get_model

STEPS = 5


def se_trajectory(model, steps: int) -> np.ndarray:
    """State-evolution iterates ``M_1..M_steps`` from the random start, (steps, p)."""
    system = model.system()
    theta = model.theta()
    s = model.initial_state("random")
    out = []
    for _ in range(steps):
        s = np.asarray(system.evaluate("rhs", s, theta), dtype=float)
        out.append(s)
    return np.array(out)


def amp_trajectory(model, n: int, trials: int, seed: int, batch: int = 16):
    """Control-variate means and SEMs of AMP's mode-averaged overlap after
    1..STEPS iterations, (STEPS,) each; trials run ``batch`` at a time (seeds
    ``seed, seed + 1, ...``) to bound the memory of the sampled tensors."""
    hists, ctrls = [], []
    for k in range(0, trials, batch):
        inst = sample_instance(model, n, min(batch, trials - k), seed + k // batch)
        res = run_amp(model, n, instance=inst, max_iter=STEPS, tol=0.0, record=True)
        hists.append(np.stack(res.history, axis=1).mean(axis=2))  # (T, steps)
        ctrls.append(signal_controls(model, inst))
    hist, c = np.concatenate(hists), np.concatenate(ctrls)
    est = np.array([control_variate_mean(hist[:, t], c) for t in range(STEPS)])
    return est[:, 0], est[:, 1]


CASES = {
    # beyond the tricritical mean (0.354): the overlap climbs from 0.25 to ~1.2
    "gaussian_mean": dict(order=3, prior="gaussian", mean=0.5, delta=0.2),
    "mixed": dict(order=3, prior="rademacher,gaussian,gaussian", mean="0.5,0.5,0.5",
                  delta=0.2),
}


#: finite-size lag of AMP behind SE at t = 3..5 (measured at N = 200, 48
#: trials: -2.6% at t = 3, -3.1% at t = 5; at N = 100: up to -7%), and the
#: band it leaves: this check resolves 6% of M_t, not the fixed points' 3%
TRAJ_BIAS = 0.03
TRAJ_PRECISION = 0.06


def _check(params, n, trials, seed):
    model = get_model("tensor")(**params, init="random", damping=1.0)
    want = se_trajectory(model, STEPS).mean(axis=1)
    mean, sem = amp_trajectory(model, n, trials, seed)
    return assert_powered(want, mean, sem, n_sigma=N_SIGMA, precision=TRAJ_PRECISION,
                          bias=TRAJ_BIAS, what=f"trajectory {params} N={n}")


def test_amp_trajectory_follows_state_evolution():
    _check(CASES["gaussian_mean"], 200, 48, seed=5)


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_amp_trajectory_follows_state_evolution_large(case):
    # 48 trials resolved 6.2% for gaussian_mean at N = 300 (seed 15); 64 resolve ~5.4%
    _check(CASES[case], 300, 64, seed=15)
