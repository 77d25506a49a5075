"""Iterated-map engine: Bayesian AMP for rank-``r`` order-``p`` tensors, many trials at once.

Kadmon & Ganguli 2018 (arXiv:1810.10065) and Lesieur et al. 2017 (rank-``r``
low-rank AMP, arXiv:1701.00858): the model is

.. math:: Y = N^{-(p-1)/2} \\sum_{s=1}^r x^1_s \\otimes \\cdots \\otimes x^p_s + \\sqrt{\\Delta} W,

with factor matrices ``X^a`` of shape ``(N_a, r)`` whose entries are i.i.d.
from the mode's scalar prior. Each row has an ``r``-vector field and an
``r x r`` precision; with ``Q^b = Xh^{bT} Xh^b / N_b``, the cross-time
``Qc^b = Xh^b(t)^T Xh^b(t-1) / N_b`` and ``Sig^b`` the mean over rows of the
posterior covariance matrices (``∘``: Hadamard product),

.. math::

    B^a_i = \\frac{1}{\\Delta N^{(p-1)/2}} \\Big[\\sum Y \\prod_{b\\ne a} \\hat x^b\\Big]_i
            - O^a \\hat x^a_i(t-1), \\quad
    O^a = \\frac{1}{\\Delta}\\sum_{b\\ne a} (n_b \\Sigma^b) \\circ
          \\mathop{\\circ}_{g\\ne a,b} (n_g Qc^g), \\quad
    A^a = \\frac{1}{\\Delta}\\mathop{\\circ}_{b\\ne a} (n_b Q^b),

``xhat^a_i = f_a(B^a_i, A^a)`` and ``C^a_i = df_a/dB`` from the sympy-derived
vector denoiser of :mod:`meanfield.vector_prior`. The reaction term acts as
``(O^a xhat_i)_s = sum_u O^a[s, u] xhat_{i,u}``: component ``s`` of the
field of mode ``a`` reacts through ``d xhat^b_{j,s} / d B^b_{j,u}`` to the
``u``-th component of the previous estimate (``Qc^g[s, u]`` pairs the current
``s``-th with the previous ``u``-th column). For ``r = 1`` this is
:func:`sims.engines.amp.run_amp` (parallel schedule at ``p >= 3``,
sequential UV schedule at ``p = 2``), damping and starts included.

The contraction of component ``s`` is the rank-one fused contraction with the
``s``-th columns (``r`` passes over ``Y``; CUDA: :func:`~sims.engines.amp.cuda_fields`
per component).

Scoring: columns are identified only up to a permutation (and, for pairs of
zero-mean modes, signs). Overlap matrices ``Xh^{aT} X^a / N_a`` are matched
by the permutation maximising ``sum_a sum_s |O^a[s, pi(s)]|``
(:func:`scipy.optimize.linear_sum_assignment`), then each component is
gauge-fixed like the rank-one engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from meanfield import _codegen
from meanfield.priors import Prior
from meanfield.vector_prior import from_upper, upper_pairs, vector_prior

from .. import _targets
from .amp import (
    Instance,
    Stopping,
    _gauge_fix,
    check_run_args,
    cuda_fields,
    fused_fields,
    sample_instance,
    summarise,
)

__all__ = [
    "RankAMPResult",
    "run_amp_rank",
    "simulate_tensor_rank",
    "vector_denoiser_for",
    "match_components",
]


@dataclass
class RankAMPResult:
    """Per-trial outcome.

    ``overlap`` (T, p, r, r): matched and gauge-fixed ``Xh^{aT} X^a / N_a``
    (row: estimated component after matching, column: true component);
    ``mse`` (T, p): per-entry MSE after matching; ``permutation`` (T, r):
    estimated column ``permutation[t, s]`` is matched to true column ``s``;
    ``signs`` (T, p, r); ``estimates``: raw final estimates per mode
    (T, N_a, r); ``history``: raw (unmatched) overlap matrices per iteration
    (T, p, r, r) when ``record``.
    """

    overlap: np.ndarray
    mse: np.ndarray
    iterations: np.ndarray
    converged: np.ndarray
    history: list = field(default_factory=list)
    estimates: list = field(default_factory=list)
    permutation: np.ndarray | None = None
    signs: np.ndarray | None = None


_VDEN: dict = {}


def vector_denoiser_for(prior: Prior, rank: int) -> _codegen.ScalarFunction:
    """The sympy-derived vector denoiser of ``rank`` i.i.d. copies of ``prior``.

    ``den(B_1..B_r, A_11, A_12, .., A_rr, *prior.params) -> (f_1..f_r, C_11, .., C_rr)``
    (upper triangles row by row, :func:`meanfield.vector_prior.upper_pairs`).
    Cached by the prior's structure and the rank.
    """
    key = (prior.name, prior.components, prior.params, int(rank))
    if key not in _VDEN:
        vp = vector_prior(prior, rank)
        _VDEN[key] = _codegen.scalar_function(
            [*vp.denoiser, *vp.covariance], [*vp.B, *vp.A_entries, *prior.params], name="vden"
        )
    return _VDEN[key]


def _upper(M: np.ndarray, r: int) -> np.ndarray:
    return np.stack([M[..., s, t] for s, t in upper_pairs(r)], axis=-1)


def _gram(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``x^T y / N`` per trial: ``(T, N, r), (T, N, r) -> (T, r, r)``."""
    return np.einsum("tis,tiu->tsu", x, y) / x.shape[1]


def match_components(overlap_raw: np.ndarray, zero_mean: np.ndarray):
    """Permutation and signs that align estimated with true components.

    Parameters
    ----------
    overlap_raw : (T, p, r, r)
        ``Xh^{aT} X^a / N_a`` (row: estimated, column: true component).
    zero_mean : (p,) bool

    Returns
    -------
    perm : (T, r) int
        ``perm[t, s]``: the estimated column matched to true column ``s``,
        maximising ``sum_a sum_s |overlap[t, a, perm[s], s]|``.
    signs : (T, p, r)
        Per component, :func:`sims.engines.amp._gauge_fix` on the matched
        diagonal overlaps.
    """
    from scipy.optimize import linear_sum_assignment

    T, p, r, _ = overlap_raw.shape
    perm = np.empty((T, r), dtype=int)
    for t in range(T):
        score = np.abs(overlap_raw[t]).sum(axis=0)  # (r est, r true)
        rows, cols = linear_sum_assignment(score, maximize=True)
        perm[t, cols] = rows
    diag = np.stack(
        [overlap_raw[np.arange(T), :, perm[:, s], s] for s in range(r)], axis=-1
    )  # (T, p, r)
    signs = np.stack([_gauge_fix(diag[:, :, s], zero_mean) for s in range(r)], axis=-1)
    return perm, signs


def run_amp_rank(
    model,
    size: int,
    *,
    trials: int = 8,
    seed: int = 0,
    backend: str = "cpu",
    max_iter: int = 500,
    tol: float = 1e-8,
    instance: Instance | None = None,
    init: str | None = None,
    record: bool = False,
    dtype: str = "float64",
) -> RankAMPResult:
    """Run rank-``r`` AMP (``r = model.rank``) on ``trials`` sampled instances at size ``N = size``.

    Arguments as :func:`sims.engines.amp.run_amp`; ``instance`` comes from
    :func:`sims.engines.amp.sample_instance` (factors ``(T, N_a, r)``). A trial
    has converged when the mean over modes of ``mean |xhat_{t+1} - xhat_t|``
    (over rows and components) is below ``tol``.
    """
    from meanfield._params import ParamError

    check_run_args(dtype, backend)
    inst = instance or sample_instance(model, size, trials, seed, dtype=np.dtype(dtype))
    if inst.signals[0].ndim == 2:  # rank one: (T, N_a) -> (T, N_a, 1) views
        inst = Instance(
            [x[..., None] for x in inst.signals],
            inst.Y,
            [z[..., None] for z in inst.init_noise],
            inst.size,
        )
    p = model.order
    r = inst.rank
    if r != model.rank:
        raise ParamError("instance", f"an instance of rank {model.rank}", r)
    nu = r * (r + 1) // 2
    T = inst.Y.shape[0]
    N = inst.size
    dims = inst.dims
    n = np.array(dims, dtype=float) / N
    delta = float(model["delta"])
    stop = Stopping(model, T, max_iter, tol)
    sequential = p == 2  # the UV order of run_amp (see there)
    priors = model.modes
    init = init or model["init"]
    kernels, thetas = [], []
    for pr in priors:
        entry = _targets.vector_amp_entry(vector_denoiser_for(pr, r), r)
        kernels.append(_targets.update_kernel(entry, backend))
        thetas.append(np.array(pr.values if pr.values else (0.0,), dtype=float))
    eye = _upper(np.eye(r), r)
    if init == "informed":
        xh = [x.copy() for x in inst.signals]
        sv = [np.zeros(x.shape[:2] + (nu,)) for x in inst.signals]
    else:
        xh = [pr.mean + 1e-3 * z for pr, z in zip(priors, inst.init_noise, strict=True)]
        sv = [
            np.broadcast_to(pr.var * eye, z.shape[:2] + (nu,)).copy()
            for pr, z in zip(priors, inst.init_noise, strict=True)
        ]
    xo = [np.zeros_like(x) for x in xh]
    norm = delta * N ** ((p - 1) / 2)
    if backend == "cuda":
        from numba import cuda

        Yd = cuda.to_device(inst.Y)
        ths = [cuda.to_device(th) for th in thetas]
    history = []

    def update(a, Bf, A):
        """Damped denoiser step of mode ``a``: ``Bf (T, N_a, r)``, ``A (T, r, r)``."""
        eta = stop.eta
        X = xh[a].copy()
        Sv = sv[a].copy()
        Au = np.ascontiguousarray(_upper(A, r))
        if backend == "cuda":
            Xd, Sd = cuda.to_device(X), cuda.to_device(Sv)
            kernels[a][_targets.CONFIG.grid(T * dims[a])](
                cuda.to_device(Au),
                cuda.to_device(np.ascontiguousarray(Bf)),
                ths[a],
                Xd,
                Sd,
                cuda.to_device(eta),
            )
            return Xd.copy_to_host(), Sd.copy_to_host()
        kernels[a](Au, np.ascontiguousarray(Bf), thetas[a], X, Sv, eta)
        return X, Sv

    def fields():
        """Unnormalised fields per mode, ``(T, N_a, r)``: one contraction per component."""
        per = []
        for s in range(r):
            cols = [np.ascontiguousarray(x[:, :, s]) for x in xh]
            per.append(cuda_fields(Yd, cols) if backend == "cuda" else fused_fields(inst.Y, cols))
        return [np.stack([f[a] for f in per], axis=-1) for a in range(p)]

    def react(O, x):
        """``(O x_i)_s = sum_u O[s, u] x_{i,u}`` per trial: ``(T, r, r), (T, N, r)``."""
        return np.einsum("tsu,tiu->tis", O, x)

    for it in range(1, max_iter + 1):
        if sequential:
            prev = [x.copy() for x in xh]
            for a in range(2):
                b = 1 - a
                raw = fields()[a]
                A = n[b] * _gram(xh[b], xh[b]) / delta
                ons = n[b] * from_upper(sv[b].mean(axis=1), r) / delta
                Bf = raw / norm - react(ons, xh[a])
                xh[a], sv[a] = update(a, Bf, A)
            new_x, new_s = xh, sv
            xh = prev
        else:
            raw = fields()
            Q = [n[b] * _gram(x, x) for b, x in enumerate(xh)]
            Qc = [n[b] * _gram(x, y) for b, (x, y) in enumerate(zip(xh, xo, strict=True))]
            S = [n[b] * from_upper(s.mean(axis=1), r) for b, s in enumerate(sv)]
            new_x, new_s = [], []
            for a in range(p):
                others = [b for b in range(p) if b != a]
                A = np.prod([Q[b] for b in others], axis=0) / delta
                ons = np.zeros((T, r, r))
                for b in others:
                    term = S[b]
                    for g in others:
                        if g != b:
                            term = term * Qc[g]
                    ons = ons + term
                Bf = raw[a] / norm - react(ons / delta, xo[a])
                X, Sv = update(a, Bf, A)
                new_x.append(X)
                new_s.append(Sv)
        change = np.mean(
            [np.mean(np.abs(x1 - x0), axis=(1, 2)) for x1, x0 in zip(new_x, xh, strict=True)],
            axis=0,
        )
        xo, xh, sv = xh, new_x, new_s
        if record:
            history.append(
                np.stack([_gram(x, s) for x, s in zip(xh, inst.signals, strict=True)], axis=1)
            )
        if stop.step(it, change):
            break
    raw_overlap = np.stack([_gram(x, s) for x, s in zip(xh, inst.signals, strict=True)], axis=1)
    zero_mean = np.array([abs(pr.mean) < 1e-15 for pr in priors])
    perm, signs = match_components(raw_overlap, zero_mean)
    overlap = np.empty_like(raw_overlap)
    mse = np.empty((T, p))
    for a in range(p):
        matched = np.take_along_axis(xh[a], perm[:, None, :], axis=2) * signs[:, None, a, :]
        overlap[:, a] = _gram(matched, inst.signals[a])
        mse[:, a] = np.mean((matched - inst.signals[a]) ** 2, axis=(1, 2))
    return RankAMPResult(overlap, mse, stop.iterations, stop.converged, history, xh, perm, signs)


def simulate_tensor_rank(
    model, *, size: int = 256, trials: int = 8, seed: int = 0, backend: str = "cpu", **kw
) -> dict:
    """Means and standard errors over trials: the ``simulate`` JSON contract for rank ``r``.

    ``overlap``/``overlap_sem``: per mode, the matched ``r x r`` overlap matrix
    (nested lists); ``mse``/``mse_sem``: per mode.
    """
    return summarise(run_amp_rank(model, size, trials=trials, seed=seed, backend=backend, **kw))
