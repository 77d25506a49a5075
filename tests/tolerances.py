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


class PowerError(AssertionError):
    """A theory-against-simulation check that cannot resolve its required precision."""


def assert_powered(
    predicted,
    mean,
    sem,
    *,
    n_sigma: float = 3.0,
    precision: float = 0.03,
    bias: float = 0.0,
    what: str = "",
) -> float:
    """Theory against simulation, with the power of the check stated and enforced.

    The check passes when ``|mean - predicted| <= n_sigma * sem + bias *
    |predicted|`` for every entry. Its pass band, as a fraction of the
    prediction, is ``band = n_sigma * sem / |predicted| + bias`` (the relative
    precision the run resolves); when ``band > precision`` for any entry the run is too small to
    tell a theory that is wrong by ``precision`` from a right one, and the
    check fails with :class:`PowerError` instead of passing silently.

    Parameters
    ----------
    predicted, mean, sem : array_like, broadcast together
        Theory, simulated mean and its standard error.
    n_sigma : float
        Width of the pass band in standard errors.
    precision : float
        The largest relative pass band accepted (``0.03``: a 3% error of the
        theory is resolved).
    bias : float
        A stated allowance for a known finite-size bias, relative to the
        prediction (it counts against ``precision``).
    what : str
        Label for the failure messages.

    Returns
    -------
    float
        The largest relative band (the precision this check resolved).
    """
    predicted = np.asarray(predicted, dtype=float)
    mean = np.asarray(mean, dtype=float)
    sem = np.asarray(sem, dtype=float)
    band = n_sigma * sem / np.abs(predicted) + bias
    if not np.all(np.isfinite(band)):
        raise PowerError(f"{what}: no usable standard error (sem={sem}, predicted={predicted})")
    if np.any(band > precision):
        raise PowerError(
            f"{what}: underpowered, pass band {n_sigma:g} sem = {np.max(band):.2%} of the "
            f"prediction > required {precision:.2%} (sem={sem}, predicted={predicted}); "
            "use more trials or a larger size"
        )
    z = (np.abs(mean - predicted) - bias * np.abs(predicted)) / sem
    assert np.all(z <= n_sigma), (
        f"{what}: simulation {mean} vs theory {predicted}: {np.max(z):.1f} sem beyond the "
        f"{bias:.2%} bias allowance > {n_sigma:g} (pass band {np.max(band):.2%} of the "
        "prediction)"
    )
    return float(np.max(band))


def pooled_mean(means, sems) -> tuple[float, float]:
    """Inverse-variance weighted mean of independent estimates and its standard error."""
    w = 1.0 / np.asarray(sems, dtype=float) ** 2
    m = float(np.sum(w * np.asarray(means, dtype=float)) / np.sum(w))
    return m, float(1.0 / np.sqrt(np.sum(w)))


def control_variate_mean(y, controls) -> tuple[float, float]:
    """Mean of ``y`` over trials with control variates, and its standard error.

    ``controls`` (trials, k) are per-trial statistics whose expectations are
    known and already subtracted (for instance each mode's empirical
    ``|x|^2 / N_a - E[x^2]`` and ``mean(x) - E[x]`` of the planted signal).
    The estimate is the intercept of the least-squares fit ``y = m + c . beta``
    (an unbiased estimate of ``E[y]`` up to ``O(1/trials)``); its standard
    error is the fit's, with ``trials - k - 1`` degrees of freedom. Columns
    with no variance (a Rademacher signal's norm) are dropped. With ``k = 0``
    this is the plain mean and standard error.
    """
    y = np.asarray(y, dtype=float)
    c = np.asarray(controls, dtype=float).reshape(len(y), -1)
    c = c[:, c.std(axis=0) > 1e-12 * (1 + np.abs(c).max(initial=0))]
    X = np.column_stack([np.ones(len(y)), c])
    dof = len(y) - X.shape[1]
    if dof < 3:
        raise ValueError(
            f"{len(y)} trials leave {dof} degrees of freedom for {c.shape[1]} controls"
        )
    beta, *_ = np.linalg.lstsq(X, y, rcond=None)
    r = y - X @ beta
    cov = (r @ r / dof) * np.linalg.inv(X.T @ X)
    return float(beta[0]), float(np.sqrt(cov[0, 0]))
