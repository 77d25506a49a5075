"""Finite-size scaling: exponents and 1/N extrapolations of simulated means.

Reusable by every model: a simulated observable measured at several sizes
``N`` with standard errors becomes an exponent with its interval
(:func:`fit_exponent`: ``value ~ c N^alpha``), or an infinite-size limit
(:func:`extrapolate_1_over_n`: ``value = c0 + c1 / N``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ExponentFit", "fit_exponent", "extrapolate_1_over_n"]


@dataclass(frozen=True)
class ExponentFit:
    """``value ~ prefactor * N^exponent``: the fit, its standard error and a
    bootstrap percentile interval."""

    exponent: float
    stderr: float
    prefactor: float
    interval: tuple[float, float]
    chi2_dof: float

    def contains(self, alpha: float, n_se: float = 3.0) -> bool:
        """Whether ``alpha`` is within ``n_se`` standard errors of the fitted exponent."""
        return abs(self.exponent - alpha) <= n_se * self.stderr

    def to_dict(self) -> dict:
        return {"exponent": self.exponent, "stderr": self.stderr, "prefactor": self.prefactor,
                "interval": list(self.interval), "chi2_dof": self.chi2_dof}


def _wls(x, y, wt):
    X = np.stack([np.ones_like(x), x], axis=1)
    cov = np.linalg.inv(X.T @ (wt[:, None] * X))
    coef = cov @ X.T @ (wt * y)
    return coef, cov


def fit_exponent(sizes, values, sems=None, *, n_boot: int = 2000, level: float = 0.95,
                 seed: int = 0) -> ExponentFit:
    """Fit ``log value = log c + alpha log N`` by weighted least squares.

    Parameters
    ----------
    sizes : array_like
        System sizes ``N`` (at least two distinct).
    values : array_like
        Positive means at each size.
    sems : array_like, optional
        Their standard errors; the log-space weights are ``(value / sem)^2``
        (delta method). Without them, equal weights and the residual scatter.
    n_boot : int
        Parametric bootstrap resamples (values redrawn from ``N(value, sem)``)
        for the percentile interval.
    level : float
        Coverage of the interval.

    Returns
    -------
    ExponentFit
        ``stderr`` is the WLS standard error (scaled by ``sqrt(chi2/dof)`` when that
        exceeds one, so an imperfect power law widens rather than narrows it).
    """
    n = np.asarray(sizes, dtype=float)
    v = np.asarray(values, dtype=float)
    if n.shape != v.shape or n.size < 2 or np.unique(n).size < 2:
        raise ValueError("fit_exponent needs values at two or more distinct sizes")
    if np.any(v <= 0) or np.any(n <= 0):
        raise ValueError("fit_exponent needs positive sizes and values")
    x, y = np.log(n), np.log(v)
    if sems is None:
        s = np.full(v.shape, np.nan)
        wt = np.ones_like(v)
    else:
        s = np.asarray(sems, dtype=float)
        wt = (v / s) ** 2
    coef, cov = _wls(x, y, wt)
    dof = max(n.size - 2, 1)
    resid = y - (coef[0] + coef[1] * x)
    chi2 = float(np.sum(wt * resid**2) / dof)
    scale = np.sqrt(chi2) if sems is None else np.sqrt(max(chi2, 1.0))
    se = float(np.sqrt(cov[1, 1]) * scale)
    rng = np.random.default_rng(seed)
    if sems is not None and np.all(np.isfinite(s)) and n_boot > 0:
        draws = v[None, :] + s[None, :] * rng.standard_normal((n_boot, v.size))
        draws = np.clip(draws, 1e-300, None)
        X = np.stack([np.ones_like(x), x], axis=1)
        A = np.linalg.inv(X.T @ (wt[:, None] * X)) @ X.T @ np.diag(wt)
        boots = (np.log(draws) @ A.T)[:, 1]
    else:
        boots = coef[1] + se * rng.standard_normal(max(n_boot, 1))
    q = (1 - level) / 2
    lo, hi = np.quantile(boots, [q, 1 - q])
    return ExponentFit(float(coef[1]), se, float(np.exp(coef[0])), (float(lo), float(hi)), chi2)


def extrapolate_1_over_n(sizes, means, sems) -> tuple[float, float]:
    """Weighted least squares of ``mean = c0 + c1 / N``: ``c0`` and its standard error
    (finite-size extrapolation of a simulated mean, weights ``1 / sem^2``)."""
    x = 1.0 / np.asarray(sizes, dtype=float)
    coef, cov = _wls(x, np.asarray(means, dtype=float), 1.0 / np.asarray(sems, dtype=float) ** 2)
    return float(coef[0]), float(np.sqrt(cov[0, 0]))
