"""The Newton driver's LAPACK-free stability check against numpy's eigenvalues."""

from __future__ import annotations

import math

import numpy as np
import pytest

from meanfield.solvers._newton_kernels import _log_radius

EPS = np.finfo(float).eps


def _cases():
    rng = np.random.default_rng(7)
    for t in range(400):
        d = int(rng.integers(2, 10))
        M = rng.normal(size=(d, d)) * rng.choice([1e-3, 1.0, 30.0])
        if t % 3 == 0:
            M = np.triu(M)  # non-normal
        if t % 4 == 0:  # spectral radius within 1e-7 of one: the stability boundary
            M = M / np.abs(np.linalg.eigvals(M)).max() * (1.0 + 1e-7 * rng.normal())
        yield np.ascontiguousarray(M)


def test_log_radius_matches_eigvals():
    # Gelfand's formula after 56 squarings against LAPACK's geev; observed
    # worst ~30 eps, allowed 1000 eps relative
    worst = 0.0
    for M in _cases():
        ref = float(np.abs(np.linalg.eigvals(M)).max())
        got = math.exp(_log_radius(M, M.shape[0]))
        worst = max(worst, abs(got - ref) / ref)
    assert worst <= 1000 * EPS, worst


@pytest.mark.parametrize(
    ("M", "rho"),
    [
        (np.array([[1.0, 1.0], [0.0, 1.0]]), 1.0),  # Jordan block: ||M^N|| grows like N
        (np.array([[0.0, -0.999], [0.999, 0.0]]), 0.999),  # complex pair
        (np.array([[0.0, 1.0], [0.0, 0.0]]), 0.0),  # nilpotent
        (np.diag([0.5, -1.25, 0.1]), 1.25),
    ],
)
def test_log_radius_special_matrices(M, rho):
    lr = _log_radius(np.ascontiguousarray(M), M.shape[0])
    if rho == 0.0:
        assert lr == -np.inf
    else:
        assert abs(math.exp(lr) - rho) <= 8 * EPS * rho
