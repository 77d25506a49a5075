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


ORDER_BY_DIM = {1: DEFAULT_ORDER, 2: 41, 3: 17, 4: 9}
"""Nodes per dimension of the tensor-product rule for ``d``-dimensional
expectations (rank-``r`` channels): ``41^2``, ``17^3``, ``9^4`` nodes keep one
state-evolution step at a few milliseconds; ``tests/symbolic`` checks the
precision they reach against a finer rule."""


def order_for(dim: int, order: int | None = None) -> int:
    """Nodes per dimension for a ``dim``-dimensional expectation.

    ``order`` (the one-dimensional request) is used for ``dim = 1``; larger
    dimensions use :data:`ORDER_BY_DIM`, scaled down in proportion when
    ``order`` is below the one-dimensional default.
    """
    if dim <= 1:
        return order or DEFAULT_ORDER
    base = ORDER_BY_DIM.get(dim, 5)
    if order and order != DEFAULT_ORDER:
        base = max(3, int(round(base * order / DEFAULT_ORDER)))
    return base


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
