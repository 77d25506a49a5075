"""Alternating least squares (CP-ALS): the classical baseline AMP is compared with.

Kadmon & Ganguli (2018) report that AMP "significantly outperforms" ALS, the
standard CP algorithm (Carroll & Chang 1970; Harshman 1970), once the data
are noisy (``shared/papers/tensor.md`` §6). ALS is least squares, i.e. maximum
likelihood for Gaussian noise with a flat prior: it cannot use the priors, so
it is the natural prior-free baseline.

:func:`cp_als` is a plain rank-``r`` CP-ALS for order-``p`` tensors of any
shape (rank one is the case used against AMP). Each sweep updates the modes in
turn by the normal equations,

    ``A_a <- Y_(a) KR_{b != a}(A_b)  [Hadamard_{b != a} A_b^T A_b]^{-1}``,

``Y_(a)`` the mode-``a`` unfolding (C order) and ``KR`` the Khatri-Rao
product of the other factors, in mode order. After each update the columns of
``A_a`` are normalised and their norms kept as the weights (the update of a
mode does not depend on the scale of the others, so this changes nothing but
the bookkeeping). After every sweep the relative residual
``e = ||Y - Yhat|| / ||Y||`` is computed from the norm expansion
``||Y||^2 - 2 <Y, Yhat> + ||Yhat||^2`` (no extra pass over the data), and
directly from the data once ``e^2 < 1e-6``, where the expansion would lose
the digits to cancellation; a run stops when ``e`` changes by at most
``tol * e`` in a sweep, or when it reaches rounding level (``EXACT_FIT``).
The best of ``restarts`` runs (smallest ``e``) is returned.

:func:`als_on_instance` runs it on the planted instances of
:func:`sims.engines.amp.sample_instance` and scores it like AMP.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["ALSResult", "cp_als", "cp_to_tensor", "khatri_rao", "als_on_instance"]

#: a relative residual below this is an exact fit (rounding level); the run stops
EXACT_FIT = 1e-13


@dataclass
class ALSResult:
    """The outcome of :func:`cp_als` (the restart with the smallest residual).

    Attributes
    ----------
    factors : list of arrays (N_a, r)
        Unit-norm columns (a column that collapsed to zero is left as it is,
        with weight 0).
    weights : array (r,)
        The tensor is ``sum_k weights[k] * outer(factors[0][:, k], ..., factors[-1][:, k])``.
    residual : float
        Relative residual ``||Y - Yhat||_F / ||Y||_F`` (0 for ``Y = 0``).
    iterations : int
        Sweeps (each updates every mode once) of the returned restart.
    converged : bool
        Whether the returned restart met the stopping rule before ``n_iter_max``.
    restart : int
        Index of the returned restart.
    residuals : array (restarts,)
        Final relative residual of every restart.
    """

    factors: list
    weights: np.ndarray
    residual: float
    iterations: int
    converged: bool
    restart: int = 0
    residuals: np.ndarray | None = None

    def to_tensor(self) -> np.ndarray:
        """The reconstruction ``Yhat``."""
        return cp_to_tensor(self.weights, self.factors)


def khatri_rao(mats: Sequence[np.ndarray]) -> np.ndarray:
    """Column-wise Kronecker product, the first matrix varying slowest.

    For ``mats = [B_1 (n_1, r), ..., B_m (n_m, r)]`` the result has shape
    ``(n_1 ... n_m, r)`` with column ``k`` equal to ``kron(B_1[:, k], ..., B_m[:, k])``,
    which matches a C-order unfolding.
    """
    out = np.asarray(mats[0])
    r = out.shape[1]
    for m in mats[1:]:
        out = (out[:, None, :] * np.asarray(m)[None, :, :]).reshape(-1, r)
    return out


def cp_to_tensor(weights, factors: Sequence[np.ndarray]) -> np.ndarray:
    """``sum_k weights[k] * outer(factors[0][:, k], ..., factors[-1][:, k])``."""
    dims = tuple(f.shape[0] for f in factors)
    first = np.asarray(factors[0]) * np.asarray(weights)[None, :]
    if len(factors) == 1:
        return first.sum(axis=1)
    return (first @ khatri_rao(factors[1:]).T).reshape(dims)


def _unfold(Y: np.ndarray, a: int) -> np.ndarray:
    """Mode-``a`` unfolding ``(N_a, prod others)``, the other modes in order, C order."""
    return np.ascontiguousarray(np.moveaxis(Y, a, 0)).reshape(Y.shape[a], -1)


# The passes over the data use einsum's own (single-threaded) loops rather than
# BLAS: on a shared machine with more busy processes than cores a threaded BLAS
# makes these memory-bound matrix-vector products tens of times slower.


def _sumsq(A: np.ndarray) -> float:
    A = A.reshape(-1)
    return float(np.einsum("i,i->", A, A))


def _mttkrp(U: np.ndarray, kr: np.ndarray) -> np.ndarray:
    """``U @ kr`` one column at a time: ``(N_a, r)``."""
    cols = np.ascontiguousarray(kr.T)
    return np.stack([np.einsum("ij,j->i", U, c) for c in cols], axis=1)


def _explicit_residual(U: np.ndarray, A: np.ndarray, kr: np.ndarray) -> float:
    """``||U - A kr^T||_F^2`` (``A`` carries the weights)."""
    D = U.copy()
    for k in range(A.shape[1]):
        D -= np.multiply.outer(A[:, k], kr[:, k])
    return _sumsq(D)


def _solve_psd(V: np.ndarray, M: np.ndarray) -> np.ndarray:
    """``M V^{-1}`` for a symmetric positive semi-definite ``V`` (least squares if singular)."""
    try:
        if np.linalg.cond(V) < 1e14:
            return np.linalg.solve(V, M.T).T
    except np.linalg.LinAlgError:
        pass
    return np.linalg.lstsq(V, M.T, rcond=None)[0].T


def _leading_left_singular(U: np.ndarray, rank: int) -> np.ndarray:
    """The ``rank`` leading left singular vectors of ``U`` (eigenvectors of ``U U^T``)."""
    G = np.einsum("ij,kj->ik", U, U)
    w, V = np.linalg.eigh(G)
    return V[:, np.argsort(w)[::-1][: min(rank, U.shape[0])]]


def _init_factors(Y, unfoldings, rank, kind, rng):
    dims = Y.shape
    if kind == "random":
        return [rng.standard_normal((d, rank)) for d in dims]
    if kind == "svd":
        out = []
        for a, d in enumerate(dims):
            U = _leading_left_singular(unfoldings[a], rank)
            if U.shape[1] < rank:  # a mode shorter than the rank: pad with random columns
                U = np.concatenate([U, rng.standard_normal((d, rank - U.shape[1]))], axis=1)
            out.append(U)
        return out
    raise ValueError(f"init must be 'random', 'svd' or a list of factor matrices, got {kind!r}")


def _explicit_init(init, dims, rank):
    """``init`` as ``p`` factor arrays ``(N_a, r)``, or ``(weights, factors)`` (e.g. a tensorly
    ``CPTensor``); the weights are folded into the last factor."""
    weights = None
    if hasattr(init, "weights") and hasattr(init, "factors"):
        weights, factors = init.weights, init.factors
    elif len(init) == 2 and isinstance(init[1], list | tuple):
        weights, factors = init
    else:
        factors = init
    if len(factors) != len(dims):
        raise ValueError(f"init has {len(factors)} factors, the tensor has order {len(dims)}")
    factors = [np.array(f, dtype=float).reshape(d, -1) for f, d in zip(factors, dims, strict=True)]
    if any(f.shape[1] != rank for f in factors):
        raise ValueError(f"initial factors must have {rank} columns")
    if weights is not None:
        factors[-1] = factors[-1] * np.asarray(weights, dtype=float).reshape(1, -1)
    return factors


#: below this squared relative residual the norm expansion has lost too many
#: digits to cancellation; the residual is then computed from the data
_EXPLICIT_BELOW = 1e-6


def _als_run(unfoldings, normY2, factors, n_iter_max, tol):
    """One ALS run from ``factors`` (modified in place).

    Returns ``(factors, weights, residual, sweeps, converged)``.
    """
    p = len(unfoldings)
    rank = factors[0].shape[1]
    weights = np.ones(rank)
    # normalise the start so that the weights carry the scale
    for a in range(p):
        nrm = np.sqrt(np.sum(factors[a] ** 2, axis=0))
        factors[a] = factors[a] / np.where(nrm > 0, nrm, 1.0)
    grams = [f.T @ f for f in factors]
    prev = np.inf
    res = np.inf
    converged = False
    sweeps = 0
    while sweeps < n_iter_max:
        sweeps += 1
        for a in range(p):
            others = [b for b in range(p) if b != a]
            V = np.ones((rank, rank))
            for b in others:
                V = V * grams[b]
            kr = khatri_rao([factors[b] for b in others])
            M = _mttkrp(unfoldings[a], kr)
            A = _solve_psd(V, M)
            nrm = np.sqrt(np.sum(A**2, axis=0))
            weights = nrm
            factors[a] = A / np.where(nrm > 0, nrm, 1.0)
            grams[a] = factors[a].T @ factors[a]
        # residual of the last mode's update: ||Y||^2 - 2 <Y, Yhat> + ||Yhat||^2,
        # with <Y, Yhat> = sum_k w_k <M_k, A_k> and ||Yhat||^2 = w^T (V * G) w
        A = factors[p - 1] * weights[None, :]
        r2 = normY2 - 2.0 * float(np.sum(M * A)) + float(weights @ (V * grams[p - 1]) @ weights)
        if r2 < _EXPLICIT_BELOW * normY2:
            r2 = _explicit_residual(unfoldings[p - 1], A, kr)
        res = float(np.sqrt(max(r2, 0.0) / normY2))
        if res <= EXACT_FIT or (tol > 0 and np.isfinite(prev) and abs(prev - res) <= tol * prev):
            converged = True
            break
        prev = res
    return factors, weights, res, sweeps, converged


def cp_als(
    Y,
    rank: int = 1,
    *,
    n_iter_max: int = 500,
    tol: float = 1e-8,
    init="random",
    rng=None,
    restarts: int = 1,
) -> ALSResult:
    """Rank-``rank`` CP decomposition of ``Y`` by alternating least squares.

    Parameters
    ----------
    Y : array, order ``p >= 2``, any shape
    rank : int
        Number of components ``r``.
    n_iter_max : int
        Maximum sweeps per restart.
    tol : float
        Stop when the relative residual ``e = ||Y - Yhat|| / ||Y||`` changes by
        at most ``tol * e_previous`` in a sweep (or falls below ``EXACT_FIT``).
        ``tol = 0`` runs exactly ``n_iter_max`` sweeps unless the fit is exact
        (as tensorly's ``parafac(..., tol=0)``).
    init : {'random', 'svd'} or sequence of arrays
        ``'random'``: standard normal factors. ``'svd'``: the leading ``r``
        left singular vectors of each unfolding (first restart only; later
        restarts are random). A sequence of ``p`` arrays ``(N_a, r)``, or a
        ``(weights, factors)`` pair, starts the first restart there.
    rng : None, int or numpy Generator
        Source of the random starts.
    restarts : int
        Independent runs; the one with the smallest final residual is returned.

    Returns
    -------
    ALSResult
    """
    Y = np.asarray(Y, dtype=float)
    if Y.ndim < 2:
        raise ValueError("Y must have order >= 2")
    rank = int(rank)
    if rank < 1:
        raise ValueError("rank must be >= 1")
    if int(restarts) < 1:
        raise ValueError("restarts must be >= 1")
    if int(n_iter_max) < 1:
        raise ValueError("n_iter_max must be >= 1")
    if tol < 0:
        raise ValueError("tol must be >= 0")
    rng = np.random.default_rng(rng)
    unfoldings = [_unfold(Y, a) for a in range(Y.ndim)]
    normY2 = _sumsq(unfoldings[0])
    if normY2 == 0.0:
        factors = [np.zeros((d, rank)) for d in Y.shape]
        return ALSResult(factors, np.zeros(rank), 0.0, 0, True, 0, np.zeros(int(restarts)))

    best = None
    residuals = np.empty(int(restarts))
    for k in range(int(restarts)):
        if k == 0 and not isinstance(init, str):
            start = _explicit_init(init, Y.shape, rank)
        else:
            start = _init_factors(Y, unfoldings, rank, init if k == 0 else "random", rng)
        factors, weights, res, it, conv = _als_run(unfoldings, normY2, start, int(n_iter_max),
                                                   float(tol))
        residuals[k] = res
        if best is None or res < best.residual:
            best = ALSResult(factors, weights, res, it, conv, k)
    best.residuals = residuals
    return best


# ---------------------------------------------------------------------------
# scoring on the planted model
# ---------------------------------------------------------------------------


def als_on_instance(model, instance, *, seed: int = 0, **kw) -> dict:
    """Rank-one ALS on each trial of ``instance``, scored like AMP.

    For trial ``t``, ALS fits ``Yhat = lambda u_1 (x) ... (x) u_p`` (unit
    ``u_a``) to ``Y[t]``. In the model's normalisation,
    ``Yhat = N^{-(p-1)/2} xhat_1 (x) ... (x) xhat_p`` with the split
    ``xhat_a = g sqrt(N_a) u_a``, ``g^p = lambda N^{(p-1)/2} / prod_a sqrt(N_a)``
    (every mode the same per-entry scale; signs as ALS left them): these are
    the ``estimates``. Scores per mode ``a``:

    * ``mse``: ``mean((c_a u_a - x_a)^2)`` with the scalar ``c_a`` that
      minimises it, ``c_a = <u_a, x_a> / |u_a|^2``, which also fixes the sign;
    * ``overlap``: ``|<u_a, x_a>| / (|u_a| |x_a|)``, the normalised overlap
      (NOT the AMP ``overlap`` ``M_a = <xhat_a, x_a>/N_a``);
    * ``mse_plugin``: ``mean((s_a xhat_a - x_a)^2)``, ALS's own scale (the
      split above) with only the sign ``s_a`` taken from the truth;

    and per trial the gauge-free ``tensor_mse``, ``mean((Yhat - X)^2)`` with
    ``X = N^{-(p-1)/2} x_1 (x) ... (x) x_p``, and ``tensor_error``,
    ``||Yhat - X|| / ||X||``.

    .. note::
       The best scaling uses the planted signal, which ALS cannot know, and
       ALS cannot use the priors at all: the per-mode ``mse`` (and
       ``overlap``) is therefore an **upper bound on ALS's performance**
       (a lower bound on its error), favouring ALS in any comparison with
       AMP's Bayesian estimate. ``tensor_mse`` and ``tensor_error`` involve
       no such choice.

    Parameters
    ----------
    model : meanfield.models.tensor.Tensor
        Only its order is used (the data are in ``instance``).
    instance : sims.engines.amp.Instance
    seed : int
        Root seed of the random starts; trial ``t`` uses child ``t``.
    **kw
        Passed to :func:`cp_als` (``n_iter_max``, ``tol``, ``init``,
        ``restarts``); the rank is one.

    Returns
    -------
    dict of arrays: ``mse``, ``mse_plugin``, ``overlap``, ``scale`` (``c_a``), ``(T, p)``;
    ``tensor_mse``, ``tensor_error``, ``residual``, ``iterations``,
    ``converged``, ``(T,)``; ``estimates``, a list of ``(T, N_a)``.
    """
    from ._rng import trial_generators

    if kw.pop("rank", 1) != 1:
        raise ValueError("als_on_instance scores rank-one fits of the rank-one model")
    p = model.order
    dims = instance.dims
    if len(dims) != p:
        raise ValueError(f"instance has {len(dims)} modes, model order is {p}")
    T = instance.Y.shape[0]
    N = instance.size
    pref = N ** (-(p - 1) / 2)
    out = {k: np.zeros((T, p)) for k in ("mse", "mse_plugin", "overlap", "scale")}
    for k in ("tensor_mse", "tensor_error", "residual", "iterations"):
        out[k] = np.zeros(T)
    out["converged"] = np.zeros(T, dtype=bool)
    est = [np.zeros((T, d)) for d in dims]
    for t, rng in enumerate(trial_generators(seed, T)):
        Yt = np.asarray(instance.Y[t], dtype=float).reshape(dims)
        r = cp_als(Yt, 1, rng=rng, **kw)
        lam = float(r.weights[0])
        us = [f[:, 0] for f in r.factors]
        xs = [np.asarray(s[t], dtype=float) for s in instance.signals]
        g = (lam / pref / np.prod(np.sqrt(np.asarray(dims, dtype=float)))) ** (1.0 / p)
        for a in range(p):
            u, x = us[a], xs[a]
            uu, xx, ux = float(u @ u), float(x @ x), float(u @ x)
            c = ux / uu if uu > 0 else 0.0
            out["scale"][t, a] = c
            out["mse"][t, a] = float(np.mean((c * u - x) ** 2))
            out["overlap"][t, a] = abs(ux) / np.sqrt(uu * xx) if uu > 0 and xx > 0 else 0.0
            est[a][t] = g * np.sqrt(dims[a]) * u
            sgn = 1.0 if ux >= 0 else -1.0
            out["mse_plugin"][t, a] = float(np.mean((sgn * est[a][t] - x) ** 2))
        X = pref * cp_to_tensor(np.ones(1), [x[:, None] for x in xs])
        D = cp_to_tensor(r.weights, r.factors) - X
        out["tensor_mse"][t] = float(np.mean(D**2))
        nX = float(np.linalg.norm(X))
        out["tensor_error"][t] = float(np.linalg.norm(D)) / nX if nX > 0 else np.nan
        out["residual"][t] = r.residual
        out["iterations"][t] = r.iterations
        out["converged"][t] = r.converged
    out["estimates"] = est
    return out
