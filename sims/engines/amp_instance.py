"""Per-instance state evolution of rank-one tensor AMP with Gaussian priors (the AMP family).

At finite ``N`` with a non-zero prior mean, each sampled instance has its own
empirical moments ``mu_hat_a = mean(x_a)``, ``v_hat_a = var(x_a)`` per mode,
which differ from the prior's ``(mu, v)`` by ``O(1/sqrt(N))``. AMP's random
start ``xhat^0 = mu + 1e-3 z`` then has the overlap ``M^0_a = mu mu_hat_a``:
an instance whose empirical means are small (or of opposite sign) starts
closer to the uninformative fixed point. At order 3 with prior ``N(0.2, 1)``
and ``N = 150`` this decides, trial by trial, whether random-start AMP reaches
the informative branch well below ``delta_alg`` (``shared/papers/tensor.md``
§9, pitfall 5).

:func:`instance_state_evolution` is the mismatched-prior state evolution: the
denoiser is AMP's (the linear Gaussian posterior mean for ``N(mu, v)``), the
signal has the instance's moments. With ``mh_a = prod_{b != a} n_b M_b / delta``
and ``A_a = prod_{b != a} n_b Q_b / delta`` (AMP's own precision, from the
estimates' self-overlaps), the field is ``B = mh_a x + sqrt(A_a) z`` and
``xhat = c (B + mu / v)``, ``c = 1 / (A_a + 1 / v)``, so

.. math::

    M_a' = c (mh_a E[x^2] + \\mu \\hat\\mu_a / v), \\qquad
    Q_a' = c^2 (mh_a^2 E[x^2] + A_a + 2 mh_a \\hat\\mu_a \\mu / v + \\mu^2 / v^2),

with ``E[x^2] = mu_hat^2 + v_hat``, damped like AMP (``M`` exactly, ``Q``
linearly: an approximation of the transient only).

Finding (does not hold up as a per-trial predictor): order 3, prior
``N(0.2, 1)``, ``N = 150``, ``delta = 0.08``, random start, seeds 0-5 with 8
trials each: random-start AMP reached the informative branch on 37 of 48
trials; this per-instance SE put 38 of 48 on the right branch (8 predicted
failures that succeeded, 2 the other way), against 37 of 48 for the ordinary
SE, which predicts success everywhere. One seed (7) happened to match 8/8
with overlaps within 0.02. The empirical means alone do not decide a trial:
the noise tensor's projection on the initial direction (an ``O(1/sqrt(N))``
term of the first fields, of the same size as the means' fluctuations) does
too. Kept for further study; with matched moments it reduces to the
ordinary state evolution (tested).
"""

from __future__ import annotations

import numpy as np

__all__ = ["instance_state_evolution"]


def instance_state_evolution(
    model, instance, *, init: str | None = None, iterations: int = 3000, eta: float | None = None
) -> np.ndarray:
    """Predicted final overlap per trial and mode, shape ``(T, p)``.

    Parameters
    ----------
    model : meanfield.models.tensor.Tensor
        Rank one, a Gaussian prior on every mode.
    instance : meanfield.sims.engines.amp.Instance
        The sampled instance (its signals and initial noise set the moments).
    init : {'random', 'informed'}, optional
        Default: the model's ``init``.
    iterations : int
    eta : float, optional
        Damping; default the model's (0.5 above order 2, 0.8 at order 2).
    """
    priors = model.modes
    for pr in priors:
        if pr.name != "gaussian":
            raise ValueError(f"instance_state_evolution needs Gaussian priors; got {pr.name!r}")
    if instance.rank != 1:
        raise ValueError("instance_state_evolution is for rank one")
    init = init or model["init"]
    if eta is None:
        eta = model["damping"] if model["damping"] is not None else (
            0.8 if model.order == 2 else 0.5)
    delta = float(model["delta"])
    p = model.order
    n = np.array(instance.dims, dtype=float) / instance.size
    mu = np.array([pr.mean for pr in priors])
    v = np.array([pr.var for pr in priors])
    T = instance.signals[0].shape[0]
    out = np.empty((T, p))
    for t in range(T):
        x = [s[t] for s in instance.signals]
        muh = np.array([xi.mean() for xi in x])
        ex2 = np.array([np.mean(xi * xi) for xi in x])
        if init == "informed":
            M, Q = ex2.copy(), ex2.copy()
        else:
            x0 = [m + 1e-3 * z[t] for m, z in zip(mu, instance.init_noise, strict=True)]
            M = np.array([np.mean(a * b) for a, b in zip(x0, x, strict=True)])
            Q = np.array([np.mean(a * a) for a in x0])
        for _ in range(iterations):
            Mn, Qn = np.empty(p), np.empty(p)
            for a in range(p):
                o = [b for b in range(p) if b != a]
                mh = np.prod(n[o] * M[o]) / delta
                A = np.prod(n[o] * Q[o]) / delta
                c = 1.0 / (A + 1.0 / v[a])
                h = mu[a] / v[a]
                Mn[a] = c * (mh * ex2[a] + h * muh[a])
                Qn[a] = c * c * (mh * mh * ex2[a] + A + 2.0 * mh * muh[a] * h + h * h)
            M = eta * Mn + (1.0 - eta) * M
            Q = eta * Qn + (1.0 - eta) * Q
        out[t] = M
    return out
