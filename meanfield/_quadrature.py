"""The one place where Gaussian expectations become Gauss-Hermite sums.

Every expectation over a Gaussian variable in the package, symbolic
(:class:`meanfield._symbols.GaussExpect`) or numeric, is evaluated with the
probabilists' Gauss-Hermite rule returned here:

.. math:: E_{z\\sim N(0,1)}[g(z)] \\approx \\sum_{i=1}^{K} w_i\\, g(z_i),

exact for polynomials of degree ``2K - 1``.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

DEFAULT_ORDER = 81
"""Default number of nodes. 61-101 nodes suffice for state evolution
(Kadmon & Ganguli 2018 digest, pitfall 8); the convergence test in
``tests/symbolic/test_quadrature.py`` checks it."""


@lru_cache(maxsize=32)
def gauss_hermite(order: int = DEFAULT_ORDER) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights for expectations over a standard normal variable.

    Parameters
    ----------
    order : int
        Number of nodes ``K >= 1``.

    Returns
    -------
    z, w : numpy.ndarray
        Read-only arrays of length ``K``; ``sum(w) == 1`` and
        ``sum(w * g(z))`` approximates ``E[g(z)]`` for ``z ~ N(0, 1)``.
    """
    if int(order) != order or order < 1:
        raise ValueError(f"order must be an integer in [1, inf); got {order!r}")
    z, w = np.polynomial.hermite_e.hermegauss(int(order))
    w = w / np.sqrt(2.0 * np.pi)
    z.setflags(write=False)
    w.setflags(write=False)
    return z, w


def expect(g, mean=0.0, var=1.0, order: int = DEFAULT_ORDER):
    """``E[g(B)]`` for ``B ~ N(mean, var)``, vectorised over broadcast inputs.

    Parameters
    ----------
    g : callable
        Vectorised function of one array argument.
    mean, var : array_like
        Mean and variance (``var >= 0``) of the Gaussian, broadcast together.
    order : int
        Number of Gauss-Hermite nodes.

    Returns
    -------
    numpy.ndarray
        The expectation with the broadcast shape of ``mean`` and ``var``.
    """
    z, w = gauss_hermite(order)
    mean = np.asarray(mean, dtype=float)
    var = np.asarray(var, dtype=float)
    b = mean[..., None] + np.sqrt(var)[..., None] * z
    return np.asarray(g(b)) @ w
