"""The one place tolerances come from.

Deterministic checks are stated in multiples of machine epsilon; stochastic
checks in standard errors.
"""

import numpy as np

EPS = float(np.finfo(np.float64).eps)


def ulps(k: float) -> float:
    """``k`` machine epsilons (relative tolerance)."""
    return k * EPS


def assert_close_eps(actual, expected, k: float, *, scale=None):
    """``|actual - expected| <= k * eps * max(1, |expected|)`` elementwise."""
    actual = np.asarray(actual, dtype=float)
    expected = np.asarray(expected, dtype=float)
    s = np.maximum(1.0, np.abs(expected)) if scale is None else scale
    err = np.abs(actual - expected) / s
    assert np.all(err <= k * EPS), f"max error {err.max() / EPS:.1f} eps > {k} eps"


def within_se(mean, sem, expected, n_se: float) -> bool:
    """``|mean - expected| <= n_se * sem``."""
    return bool(np.all(np.abs(np.asarray(mean) - np.asarray(expected)) <= n_se * np.asarray(sem)))


def extrapolate_1_over_n(sizes, means, sems) -> tuple[float, float]:
    """Weighted least squares of ``mean = c0 + c1 / N``: ``c0`` and its standard error
    (finite-size extrapolation of a simulated mean, weights ``1 / sem^2``)."""
    x = 1.0 / np.asarray(sizes, dtype=float)
    X = np.stack([np.ones_like(x), x], axis=1)
    W = 1.0 / np.asarray(sems) ** 2
    cov = np.linalg.inv(X.T @ (W[:, None] * X))
    coef = cov @ X.T @ (W * np.asarray(means))
    return float(coef[0]), float(np.sqrt(cov[0, 0]))
