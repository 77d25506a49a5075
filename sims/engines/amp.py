"""Iterated-map engine: Bayesian AMP for rank-one order-p tensors, many trials at once.

Kadmon & Ganguli 2018 (arXiv:1810.10065), AMP with the Onsager reaction term
in the parallel schedule (``shared/papers/tensor.md`` §2):

.. math::

    B^{\\alpha,t}_i = \\frac{1}{\\Delta N^{(p-1)/2}} \\sum_{a: a_\\alpha = i} Y_a
        \\prod_{\\beta\\ne\\alpha} \\hat x^{\\beta,t}_{a_\\beta}
      - \\frac{1}{\\Delta}\\Big[\\sum_{\\beta\\ne\\alpha} n_\\beta \\Sigma^{\\beta,t}
        \\prod_{\\gamma\\ne\\alpha,\\beta} n_\\gamma Q^{\\gamma,t,t-1}\\Big]
        \\hat x^{\\alpha,t-1}_i,
    \\qquad A^{\\alpha,t} = \\frac{1}{\\Delta}\\prod_{\\beta\\ne\\alpha} n_\\beta Q^{\\beta,t},

``xhat^{t+1} = f(A, B)`` and ``sigma^{t+1} = df/dB`` from the sympy-derived
denoiser of each mode's prior (one scalar body for CPU and GPU).

The contraction is fused: viewing ``Y`` as ``(N_1, R, N_p)`` with ``R`` the
product of the middle modes, one pass over the tensor yields the fields of the
first and last modes and the partial contraction ``G`` from which the middle
modes' fields follow at ``O(R)`` cost.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from meanfield import _codegen
from meanfield.priors import A as A_SYM
from meanfield.priors import B as B_SYM
from meanfield.priors import Prior, sample

from .. import _targets
from .._rng import trial_generators

cuda = None  # numba.cuda, imported on first use

__all__ = [
    "Instance",
    "AMPResult",
    "Stopping",
    "sample_instance",
    "run_amp",
    "fused_fields",
    "uv_pass",
    "denoiser_for",
    "check_run_args",
    "summarise",
]


@dataclass
class Instance:
    """Planted signals and observed tensors for ``T`` trials.

    Attributes
    ----------
    signals : list of arrays (T, N_a), or (T, N_a, r) for rank ``r > 1``
    Y : array (T, N_1, R, N_p)
        The observed tensors, middle modes flattened into ``R``.
    init_noise : list of arrays shaped like ``signals``
        Standard normal draws for the random initialisation.
    size : int
        ``N``; mode sizes are ``N_a = round(n_a N)``.
    """

    signals: list
    Y: np.ndarray
    init_noise: list
    size: int

    @property
    def dims(self) -> tuple[int, ...]:
        return tuple(x.shape[1] for x in self.signals)

    @property
    def rank(self) -> int:
        return 1 if self.signals[0].ndim == 2 else self.signals[0].shape[2]


@dataclass
class AMPResult:
    """Per-trial outcome: overlaps, MSEs, iterations and convergence.

    ``overlap`` and ``mse`` are gauge-fixed (``signs`` per trial and mode, for
    the sign symmetry of pairs of zero-mean modes); ``estimates`` are the raw
    final estimates per mode.
    """

    overlap: np.ndarray
    mse: np.ndarray
    iterations: np.ndarray
    converged: np.ndarray
    history: list = field(default_factory=list)
    estimates: list = field(default_factory=list)
    signs: np.ndarray | None = None


def mode_sizes(shape, size: int) -> tuple[int, ...]:
    return tuple(max(1, int(round(s * size))) for s in shape)


def sample_instance(model, size: int, trials: int, seed: int, dtype=np.float64) -> Instance:
    """Draw planted signals, noise and initial noise, one ``SeedSequence`` child per trial.

    Per trial, in order: each mode's factor ``(N_a, r)``, the noise tensor,
    each mode's initial noise ``(N_a, r)``; ``Y = N^{-(p-1)/2} sum_s
    x^1_s ⊗ ... ⊗ x^p_s + sqrt(delta) W``. Rank one (``model.rank == 1``)
    stores ``(T, N_a)`` arrays; the numbers do not depend on the rank's layout.
    """
    p = model.order
    r = getattr(model, "rank", 1)
    dims = mode_sizes(model.shape, size)
    priors = model.modes
    R = int(np.prod(dims[1:-1])) if p > 2 else 1
    Y = np.empty((trials, dims[0], R, dims[-1]), dtype=dtype)
    tail = (r,) if r > 1 else ()
    signals = [np.empty((trials, d) + tail) for d in dims]
    noise0 = [np.empty((trials, d) + tail) for d in dims]
    scale = size ** (-(p - 1) / 2)
    sd = np.sqrt(model["delta"])
    letters = "abcdefgh"[:p]
    spec = ",".join(f"{c}z" for c in letters) + "->" + letters
    for t, rng in enumerate(trial_generators(seed, trials)):
        xs = [sample(pr, rng, (d, r)) for pr, d in zip(priors, dims, strict=True)]
        if r > 1:
            outer = np.einsum(spec, *xs)
        else:
            outer = xs[0][:, 0]
            for x in xs[1:]:
                outer = np.multiply.outer(outer, x[:, 0])
        W = rng.standard_normal(dims)
        Y[t] = (scale * outer + sd * W).reshape(dims[0], R, dims[-1])
        for a in range(p):
            signals[a][t] = xs[a].reshape(signals[a].shape[1:])
            noise0[a][t] = rng.standard_normal((dims[a], r)).reshape(noise0[a].shape[1:])
    return Instance(signals, Y, noise0, size)


# ---------------------------------------------------------------------------
# what every AMP driver shares: arguments, damping and stopping, the summary
# ---------------------------------------------------------------------------
def check_run_args(dtype, backend) -> None:
    """``dtype`` and ``backend`` of an AMP run, with the one-line errors of the CLI."""
    from meanfield._params import ParamError

    if str(dtype) not in ("float64", "float32"):
        raise ParamError("dtype", "one of float64, float32", dtype)
    if backend not in ("cpu", "cuda"):
        raise ParamError("backend", "one of cpu, cuda", backend)


class Stopping:
    """Per-trial damping and convergence bookkeeping of an AMP run.

    ``eta`` starts at the model's ``damping`` (auto: 0.8 at order 2, 0.5
    above). Both rules judge the undamped step ``|f(x) - x| = change / eta``
    (the residual of the AMP map), not the damped change, which shrinks with
    ``eta`` by itself. With ``damping_mode = adaptive`` a step whose residual
    grew is followed by a halved ``eta``, one whose residual shrank by a 2%
    larger one, up to the initial value (residual-based; LowRAMP adapts on the
    Bethe free entropy instead). A trial has converged at the first iteration
    whose residual, scaled by the initial ``eta``, is below ``tol``: with fixed
    damping that is ``change < tol``, and an adaptive run cannot stop early
    merely because its ``eta`` became small.

    Judging the growth on the damped change stalled adaptive runs: each 2%
    rise of ``eta`` raised the change by 2%, more than the residual fell in a
    step, so ``eta`` was halved again and pinned at its floor (order 3, N = 200:
    4 of 16 trials unconverged after 2000 iterations).
    """

    def __init__(self, model, trials: int, max_iter: int, tol: float):
        eta0 = model["damping"]
        self.eta0 = float(eta0) if eta0 is not None else (0.8 if model.order == 2 else 0.5)
        self.eta = np.full(trials, self.eta0)
        self.adaptive = model["damping_mode"] == "adaptive"
        self.last_residual = np.full(trials, np.inf)
        self.tol = tol
        self.converged = np.zeros(trials, dtype=bool)
        self.iterations = np.full(trials, max_iter)

    def step(self, it: int, change: np.ndarray) -> bool:
        """Record iteration ``it``'s change per trial; ``True`` when every trial converged.

        ``change`` is the mean ``|x_new - x_old|`` of the step just taken with
        the current ``eta``.
        """
        if self.adaptive:
            residual = change / self.eta
            grew = residual > self.last_residual
            self.last_residual = residual
            self.eta = np.where(
                grew, np.maximum(self.eta / 2, 0.02), np.minimum(self.eta * 1.02, self.eta0)
            )
            small = residual * self.eta0 < self.tol
        else:
            small = change < self.tol
        newly = (~self.converged) & small
        self.iterations[newly] = it
        self.converged |= newly
        return bool(self.converged.all())


def summarise(res) -> dict:
    """Means and standard errors over trials: the ``simulate`` JSON contract.

    ``overlap``/``mse`` keep their per-trial shape (per mode; per mode ``r x r``
    overlap matrices at rank ``r``); a single trial has NaN standard errors.
    """
    T = res.overlap.shape[0]

    def sem(x):
        if T > 1:
            return (x.std(axis=0, ddof=1) / np.sqrt(T)).tolist()
        return np.full(x.shape[1:], np.nan).tolist()

    return {
        "overlap": res.overlap.mean(axis=0).tolist(),
        "overlap_sem": sem(res.overlap),
        "mse": res.mse.mean(axis=0).tolist(),
        "mse_sem": sem(res.mse),
        "iterations": float(res.iterations.mean()),
        "converged": float(res.converged.mean()),
        "status": "ok" if res.converged.all() else "not_converged",
    }


# ---------------------------------------------------------------------------
# the fused contraction (CPU)
# ---------------------------------------------------------------------------
_FUSED = {}


def _fused_cpu():
    if "cpu" in _FUSED:
        return _FUSED["cpu"]
    import numba

    @numba.njit(fastmath=True, cache=False)
    def rows(Y, u, m, w, t, lo, hi, B1, gacc, bacc):
        """Rows ``(i, r)``, ``lo <= i < hi``, of trial ``t``: ``B1[t, i]``, and
        the job's partial sums of ``G[t]`` and ``B_p[t]`` in ``gacc`` and ``bacc``.

        The job's rows, flattened, are cut into four contiguous quarters that
        are walked side by side, one row of each per sweep of the last mode:
        each of the sweep's four loads follows one long contiguous stream, which
        the hardware prefetchers track (four adjacent rows per sweep break every
        stream at every row; measured on Zen 3, one core: 0.29 ns per entry
        against 0.57, and against 0.37 for a plain one-stream read), and one
        load/store of ``bacc`` serves four rows' updates.
        """
        T, N1, R, Np = Y.shape
        for i in range(lo, hi):
            B1[t, i] = 0.0
        for r in range(R):
            gacc[r] = 0.0
        for k in range(Np):
            bacc[k] = 0.0
        n = max(hi - lo, 0) * R
        L = n // 4
        i0, r0 = lo, 0
        i1, r1 = lo + L // R, L % R
        i2, r2 = lo + (2 * L) // R, (2 * L) % R
        i3, r3 = lo + (3 * L) // R, (3 * L) % R
        for _ in range(L):
            u0, u1, u2, u3 = u[t, i0], u[t, i1], u[t, i2], u[t, i3]
            m0, m1, m2, m3 = m[t, r0], m[t, r1], m[t, r2], m[t, r3]
            c0, c1, c2, c3 = u0 * m0, u1 * m1, u2 * m2, u3 * m3
            s0 = s1 = s2 = s3 = 0.0
            for k in range(Np):
                a0 = Y[t, i0, r0, k]
                a1 = Y[t, i1, r1, k]
                a2 = Y[t, i2, r2, k]
                a3 = Y[t, i3, r3, k]
                wk = w[t, k]
                s0 += a0 * wk
                s1 += a1 * wk
                s2 += a2 * wk
                s3 += a3 * wk
                bacc[k] += (a0 * c0 + a1 * c1) + (a2 * c2 + a3 * c3)
            B1[t, i0] += s0 * m0
            B1[t, i1] += s1 * m1
            B1[t, i2] += s2 * m2
            B1[t, i3] += s3 * m3
            gacc[r0] += s0 * u0
            gacc[r1] += s1 * u1
            gacc[r2] += s2 * u2
            gacc[r3] += s3 * u3
            # next row of each quarter
            r0 += 1
            if r0 == R:
                r0 = 0
                i0 += 1
            r1 += 1
            if r1 == R:
                r1 = 0
                i1 += 1
            r2 += 1
            if r2 == R:
                r2 = 0
                i2 += 1
            r3 += 1
            if r3 == R:
                r3 = 0
                i3 += 1
        # the n % 4 rows left at the end, one at a time
        for rho in range(lo * R + 4 * L, lo * R + n):
            i = rho // R
            r = rho - i * R
            ui = u[t, i]
            mr = m[t, r]
            cr = ui * mr
            s = 0.0
            for k in range(Np):
                a = Y[t, i, r, k]
                s += a * w[t, k]
                bacc[k] += a * cr
            B1[t, i] += s * mr
            gacc[r] += s * ui

    @numba.njit(parallel=True, fastmath=True, cache=False)
    def fused(Y, u, m, w, B1, G, Bp, chunks):
        T, N1, R, Np = Y.shape
        # np.empty, and a serial reduction: the one parallel region is the pass
        # (np.zeros and a second prange would each be a fork/join of their own)
        Gp = np.empty((T, chunks, R))
        Bpp = np.empty((T, chunks, Np))
        per = (N1 + chunks - 1) // chunks
        for job in numba.prange(T * chunks):
            t = job // chunks
            c = job - t * chunks
            rows(Y, u, m, w, t, c * per, min(N1, (c + 1) * per), B1, Gp[t, c], Bpp[t, c])
        for t in range(T):
            for r in range(R):
                g = 0.0
                for c in range(chunks):
                    g += Gp[t, c, r]
                G[t, r] = g
            for k in range(Np):
                b = 0.0
                for c in range(chunks):
                    b += Bpp[t, c, k]
                Bp[t, k] = b

    _FUSED["cpu"] = fused
    return fused


def _middle(xh: list) -> np.ndarray:
    """Kronecker product of the middle modes' estimates, shape (T, R)."""
    T = xh[0].shape[0]
    if len(xh) == 2:
        return np.ones((T, 1))
    m = xh[1]
    for x in xh[2:-1]:
        m = (m[:, :, None] * x[:, None, :]).reshape(T, -1)
    return np.ascontiguousarray(m)


def _middle_fields(G: np.ndarray, xh: list, dims) -> list:
    """Fields of the middle modes from ``G`` (T, R), an ``O(R)`` contraction."""
    p = len(dims)
    if p == 2:
        return []
    if p == 3:
        return [G]
    T = G.shape[0]
    Gt = G.reshape((T,) + tuple(dims[1:-1]))
    letters = "abcdefgh"[: p - 2]
    out = []
    for a in range(p - 2):
        ops = [Gt] + [xh[1 + b] for b in range(p - 2) if b != a]
        subs = ["t" + letters] + ["t" + letters[b] for b in range(p - 2) if b != a]
        out.append(np.einsum(",".join(subs) + "->t" + letters[a], *ops))
    return out


def fused_fields(Y: np.ndarray, xh: list, chunks: int | None = None) -> list:
    """Unnormalised fields ``sum_{a: a_alpha=i} Y_a prod_{beta != alpha} xhat^beta``, one pass."""
    T, N1, R, Np = Y.shape
    dims = tuple(x.shape[1] for x in xh)
    if chunks is None:
        # a fixed split of the first mode, independent of the number of trials
        # and threads, so each trial's sums are associated the same way
        chunks = max(1, min(N1, 8))
    B1 = np.empty((T, N1))
    G = np.empty((T, R))
    Bp = np.empty((T, Np))
    _fused_cpu()(
        Y, np.ascontiguousarray(xh[0]), _middle(xh), np.ascontiguousarray(xh[-1]), B1, G, Bp, chunks
    )
    return [B1, *_middle_fields(G, xh, dims), Bp]


# ---------------------------------------------------------------------------
# order 2 (CPU): the sequential (UV) half-step of both modes in one pass
# ---------------------------------------------------------------------------
#: rows of the first mode each job of :func:`uv_pass` takes at most (a fixed
#: split, independent of trials and threads: the sums associate the same way)
UV_CHUNKS = 8


def _uv_pass_cpu(entry: _codegen.ScalarFunction):
    """The compiled one-pass order-2 kernel around the mode-1 update ``entry``."""
    key = ("uv", entry.key)
    if key in _FUSED:
        return _FUSED[key]
    import numba

    body = _codegen.njit(entry)

    @numba.njit(fastmath=True, cache=False)
    def one_row(Y, w, A, ons, norm, th, X, S, eta, Bf, t, i, bacc):
        Np = Y.shape[3]
        s = 0.0
        for k in range(Np):
            s += Y[t, i, 0, k] * w[t, k]
        Bf[t, i] = s / norm - ons[t] * X[t, i]
        body(A, Bf, th, X, S, eta, t, i)
        xi = X[t, i]
        for k in range(Np):
            bacc[k] += Y[t, i, 0, k] * xi

    @numba.njit(fastmath=True, cache=False)
    def rows(Y, w, A, ons, norm, th, X, S, eta, Bf, t, lo, hi, bacc):
        """Rows ``lo <= i < hi`` of trial ``t``; the job's part of ``u_new^T Y`` in ``bacc``.

        As in the fused contraction, the rows are cut into four contiguous
        quarters walked side by side (four long streams for the prefetchers;
        one load of ``w`` serves four dot products, one load/store of
        ``bacc`` four updates). The four rows just read are then added into
        ``bacc`` from L1/L2 (64 KB at N_2 = 2048): one read from memory.
        """
        Np = Y.shape[3]
        for k in range(Np):
            bacc[k] = 0.0
        L = max(hi - lo, 0) // 4
        for j in range(L):
            i0 = lo + j
            i1 = i0 + L
            i2 = i1 + L
            i3 = i2 + L
            s0 = s1 = s2 = s3 = 0.0
            for k in range(Np):
                wk = w[t, k]
                s0 += Y[t, i0, 0, k] * wk
                s1 += Y[t, i1, 0, k] * wk
                s2 += Y[t, i2, 0, k] * wk
                s3 += Y[t, i3, 0, k] * wk
            Bf[t, i0] = s0 / norm - ons[t] * X[t, i0]
            Bf[t, i1] = s1 / norm - ons[t] * X[t, i1]
            Bf[t, i2] = s2 / norm - ons[t] * X[t, i2]
            Bf[t, i3] = s3 / norm - ons[t] * X[t, i3]
            body(A, Bf, th, X, S, eta, t, i0)
            body(A, Bf, th, X, S, eta, t, i1)
            body(A, Bf, th, X, S, eta, t, i2)
            body(A, Bf, th, X, S, eta, t, i3)
            x0, x1, x2, x3 = X[t, i0], X[t, i1], X[t, i2], X[t, i3]
            for k in range(Np):
                bacc[k] += (Y[t, i0, 0, k] * x0 + Y[t, i1, 0, k] * x1) + (
                    Y[t, i2, 0, k] * x2 + Y[t, i3, 0, k] * x3
                )
        for i in range(lo + 4 * L, hi):  # the (hi - lo) % 4 rows left
            one_row(Y, w, A, ons, norm, th, X, S, eta, Bf, t, i, bacc)

    @numba.njit(parallel=True, fastmath=True, cache=False)
    def uv(Y, w, A, ons, norm, th, X, S, eta, Bf, Bp, chunks):
        T, N1, _, Np = Y.shape
        per = (N1 + chunks - 1) // chunks
        parts = np.empty((T, chunks, Np))
        for job in numba.prange(T * chunks):
            t = job // chunks
            c = job - t * chunks
            rows(Y, w, A, ons, norm, th, X, S, eta, Bf, t, c * per, min(N1, (c + 1) * per),
                 parts[t, c])
        for t in range(T):
            for k in range(Np):
                b = 0.0
                for c in range(chunks):
                    b += parts[t, c, k]
                Bp[t, k] = b

    _FUSED[key] = uv
    return uv


def uv_pass(Y, w, A, ons, norm, th, X, S, eta, entry) -> np.ndarray:
    """Order 2, sequential schedule: update mode 1 and return mode 2's raw field, one pass.

    Row ``i`` of the matrix gives mode 1's field ``B_i = (Y w)_i / norm -
    ons x_i``; the damped update ``entry`` (:func:`meanfield.sims._targets.amp_entry`)
    then overwrites ``X[t, i]`` and ``S[t, i]``, and the same row, still in
    cache, is added into ``u_new^T Y`` at once. The two half-steps of the
    UV schedule (LowRAMP order: mode 2's field uses mode 1's new estimate)
    thus cost one read of ``Y`` from memory instead of two.

    Parameters
    ----------
    Y : array (T, N_1, 1, N_2)
    w : array (T, N_2)
        Mode 2's current estimate.
    A, ons, eta : arrays (T,)
        Mode 1's precision, Onsager coefficient and damping.
    norm : float
        ``delta N^{1/2}``.
    th : array
        Mode 1's prior parameters.
    X, S : arrays (T, N_1)
        Mode 1's estimate and variance, overwritten with the update.

    Returns
    -------
    array (T, N_2)
        ``sum_i Y_{i k} X_new[i]``, unnormalised.
    """
    T, N1, R, Np = Y.shape
    if R != 1:
        raise ValueError("uv_pass is the order-2 pass: Y must be (T, N_1, 1, N_2)")
    Bf = np.empty((T, N1))
    Bp = np.empty((T, Np))
    _uv_pass_cpu(entry)(
        Y, np.ascontiguousarray(w), np.ascontiguousarray(A, dtype=float),
        np.ascontiguousarray(ons, dtype=float), float(norm), th, X, S,
        np.ascontiguousarray(eta, dtype=float), Bf, Bp, max(1, min(N1, UV_CHUNKS)),
    )
    return Bp


# ---------------------------------------------------------------------------
# the same contraction on the GPU: one thread per output entry
# ---------------------------------------------------------------------------
def _cuda_kernels():
    global cuda  # a module global: the CUDA simulator swaps globals only
    if "cuda" in _FUSED:
        return _FUSED["cuda"]
    from numba import cuda

    @cuda.jit
    def first(Y, m, w, out):
        T, N1, R, Np = Y.shape
        start = cuda.grid(1)
        for j in range(start, T * N1, cuda.gridsize(1)):
            t = j // N1
            i = j - t * N1
            acc = 0.0
            for r in range(R):
                s = 0.0
                for k in range(Np):
                    s += Y[t, i, r, k] * w[t, k]
                acc += s * m[t, r]
            out[t, i] = acc

    @cuda.jit
    def last(Y, u, m, out):
        T, N1, R, Np = Y.shape
        start = cuda.grid(1)
        for j in range(start, T * Np, cuda.gridsize(1)):
            t = j // Np
            k = j - t * Np
            acc = 0.0
            for i in range(N1):
                for r in range(R):
                    acc += Y[t, i, r, k] * u[t, i] * m[t, r]
            out[t, k] = acc

    @cuda.jit
    def middle(Y, u, w, out):
        T, N1, R, Np = Y.shape
        start = cuda.grid(1)
        for j in range(start, T * R, cuda.gridsize(1)):
            t = j // R
            r = j - t * R
            acc = 0.0
            for i in range(N1):
                s = 0.0
                for k in range(Np):
                    s += Y[t, i, r, k] * w[t, k]
                acc += s * u[t, i]
            out[t, r] = acc

    _FUSED["cuda"] = (first, last, middle)
    return _FUSED["cuda"]


def cuda_fields(Yd, xh: list) -> list:
    """Fields on the GPU (``Yd`` a device array), returned to the host."""
    from numba import cuda

    first, last, middle = _cuda_kernels()
    T, N1, R, Np = Yd.shape
    dims = tuple(x.shape[1] for x in xh)
    u = cuda.to_device(np.ascontiguousarray(xh[0]))
    w = cuda.to_device(np.ascontiguousarray(xh[-1]))
    m = cuda.to_device(_middle(xh))
    B1 = cuda.device_array((T, N1))
    Bp = cuda.device_array((T, Np))
    G = cuda.device_array((T, R))
    cfg = _targets.CONFIG
    first[cfg.grid(T * N1)](Yd, m, w, B1)
    last[cfg.grid(T * Np)](Yd, u, m, Bp)
    middle[cfg.grid(T * R)](Yd, u, w, G)
    return [B1.copy_to_host(), *_middle_fields(G.copy_to_host(), xh, dims), Bp.copy_to_host()]


# ---------------------------------------------------------------------------
# the AMP loop
# ---------------------------------------------------------------------------
_DENOISERS: dict = {}


def denoiser_for(prior: Prior) -> _codegen.ScalarFunction:
    """The sympy-derived ``(f, df/dB)`` of ``prior`` as a scalar function of ``(A, B, *params)``.

    Cached by the prior's structure (its components and parameter symbols), so
    a new ``run_amp`` call does not re-print the expressions.
    """
    key = (prior.name, prior.components, prior.params)
    if key not in _DENOISERS:
        _DENOISERS[key] = _codegen.scalar_function(
            [prior.denoiser, prior.denoiser_variance], [A_SYM, B_SYM, *prior.params], name="den"
        )
    return _DENOISERS[key]


def _gauge_fix(overlap: np.ndarray, zero_mean: np.ndarray) -> np.ndarray:
    """Sign flips of an even number of zero-mean modes leave ``Y`` invariant."""
    signs = np.ones_like(overlap)
    idx = np.flatnonzero(zero_mean)
    if len(idx) >= 2:
        for t in range(overlap.shape[0]):
            neg = [a for a in idx if overlap[t, a] < 0]
            if len(neg) % 2 == 1:
                keep = min(neg, key=lambda a: abs(overlap[t, a]))
                neg = [a for a in neg if a != keep]
            for a in neg:
                signs[t, a] = -1.0
    return signs


def run_amp(
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
) -> AMPResult:
    """Run AMP on ``trials`` sampled instances of ``model`` at size ``N = size``.

    Parameters
    ----------
    model : meanfield.models.tensor.Tensor
    size : int
        ``N``; mode ``a`` has ``round(n_a N)`` entries.
    trials : int
    seed : int
        Root seed; trial ``t`` uses child ``t`` of ``SeedSequence(seed)``.
    backend : {'cpu', 'cuda'}
    max_iter : int
    tol : float
        A trial has converged when ``mean |xhat_{t+1} - xhat_t| < tol`` over all modes.
    instance : Instance, optional
        Pre-generated data (for parity tests).
    init : {'random', 'informed'}, optional
        Default: the model's ``init``.
    record : bool
        Keep the per-iteration overlaps in ``history``.
    dtype : {'float64', 'float32'}
        Storage of the observed tensor (the bandwidth-bound part); estimates
        and accumulations stay in float64.
    """
    check_run_args(dtype, backend)
    inst = instance or sample_instance(model, size, trials, seed, dtype=np.dtype(dtype))
    p = model.order
    T = inst.Y.shape[0]
    N = inst.size
    dims = inst.dims
    n = np.array(dims, dtype=float) / N
    delta = float(model["delta"])
    stop = Stopping(model, T, max_iter, tol)
    # order 2: the parallel schedule splits into two interleaved chains that can
    # settle on opposite signs; update the modes in turn instead (LowRAMP's UV
    # order), the reaction term then uses the estimate that entered the other
    # mode's last field, i.e. the current one.
    sequential = p == 2
    priors = model.modes
    init = init or model["init"]
    kernels, thetas, entries = [], [], []
    for pr in priors:
        entry = _targets.amp_entry(denoiser_for(pr))
        entries.append(entry)
        kernels.append(_targets.update_kernel(entry, backend))
        thetas.append(np.array(pr.values if pr.values else (0.0,), dtype=float))
    if init == "informed":
        xh = [x.copy() for x in inst.signals]
        sv = [np.zeros_like(x) for x in inst.signals]
    else:
        xh = [pr.mean + 1e-3 * z for pr, z in zip(priors, inst.init_noise, strict=True)]
        sv = [np.full_like(z, pr.var) for pr, z in zip(priors, inst.init_noise, strict=True)]
    xo = [np.zeros_like(x) for x in xh]
    norm = delta * N ** ((p - 1) / 2)
    if backend == "cuda":
        from numba import cuda

        Yd = cuda.to_device(inst.Y)
        ths = [cuda.to_device(th) for th in thetas]
    history = []

    def update(a, Bf, A):
        eta = stop.eta
        X = xh[a].copy()
        Sv = sv[a].copy()
        if backend == "cuda":
            Xd, Sd = cuda.to_device(X), cuda.to_device(Sv)
            kernels[a][_targets.CONFIG.grid(X.size)](
                cuda.to_device(np.ascontiguousarray(A)),
                cuda.to_device(np.ascontiguousarray(Bf)),
                ths[a],
                Xd,
                Sd,
                cuda.to_device(eta),
            )
            return Xd.copy_to_host(), Sd.copy_to_host()
        kernels[a](np.ascontiguousarray(A), np.ascontiguousarray(Bf), thetas[a], X, Sv, eta)
        return X, Sv

    def fields():
        return cuda_fields(Yd, xh) if backend == "cuda" else fused_fields(inst.Y, xh)

    for it in range(1, max_iter + 1):
        if sequential and backend == "cpu":
            # one pass: mode 1's update and mode 2's field from the new estimate
            # (uv_pass); then mode 2's update, an O(N) step
            X0, S0 = xh[0].copy(), sv[0].copy()
            A0 = n[1] * np.mean(xh[1] * xh[1], axis=1) / delta
            ons0 = n[1] * np.mean(sv[1], axis=1) / delta
            raw = uv_pass(inst.Y, xh[1], A0, ons0, norm, thetas[0], X0, S0, stop.eta, entries[0])
            A1 = n[0] * np.mean(X0 * X0, axis=1) / delta
            ons1 = n[0] * np.mean(S0, axis=1) / delta
            X1, S1 = update(1, raw / norm - ons1[:, None] * xh[1], A1)
            new_x, new_s = [X0, X1], [S0, S1]
        elif sequential:
            prev = [x.copy() for x in xh]
            for a in range(2):
                b = 1 - a
                raw = fields()[a]
                A = n[b] * np.mean(xh[b] * xh[b], axis=1) / delta
                ons = n[b] * np.mean(sv[b], axis=1) / delta
                Bf = raw / norm - ons[:, None] * xh[a]
                xh[a], sv[a] = update(a, Bf, A)
            new_x, new_s = xh, sv
            xh = prev
        else:
            raw = fields()
            Q = np.stack([np.mean(x * x, axis=1) for x in xh])  # (p, T)
            Qc = np.stack([np.mean(x * y, axis=1) for x, y in zip(xh, xo, strict=True)])
            S = np.stack([np.mean(s, axis=1) for s in sv])
            new_x, new_s = [], []
            for a in range(p):
                others = [b for b in range(p) if b != a]
                A = np.prod([n[b] * Q[b] for b in others], axis=0) / delta
                ons = np.zeros(T)
                for b in others:
                    term = n[b] * S[b]
                    for g in others:
                        if g != b:
                            term = term * n[g] * Qc[g]
                    ons = ons + term
                Bf = raw[a] / norm - (ons / delta)[:, None] * xo[a]
                X, Sv = update(a, Bf, A)
                new_x.append(X)
                new_s.append(Sv)
        change = np.mean(
            [np.mean(np.abs(x1 - x0), axis=1) for x1, x0 in zip(new_x, xh, strict=True)], axis=0
        )
        xo, xh, sv = xh, new_x, new_s
        if record:
            history.append(
                np.stack(
                    [np.mean(x * s, axis=1) for x, s in zip(xh, inst.signals, strict=True)], axis=1
                )
            )
        if stop.step(it, change):
            break
    overlap = np.stack(
        [np.mean(x * s, axis=1) for x, s in zip(xh, inst.signals, strict=True)], axis=1
    )
    zero_mean = np.array([abs(pr.mean) < 1e-15 for pr in priors])
    signs = _gauge_fix(overlap, zero_mean)
    mse = np.stack(
        [np.mean((signs[:, a : a + 1] * xh[a] - inst.signals[a]) ** 2, axis=1) for a in range(p)],
        axis=1,
    )
    return AMPResult(overlap * signs, mse, stop.iterations, stop.converged, history, xh, signs)


def simulate_tensor(
    model, *, size: int = 256, trials: int = 8, seed: int = 0, backend: str = "cpu", **kw
) -> dict:
    """Means and standard errors over trials (the ``simulate`` JSON contract).

    Rank ``r > 1`` runs the vector engine (:mod:`meanfield.sims.engines.amp_rank`).
    """
    if getattr(model, "rank", 1) > 1:
        from .amp_rank import simulate_tensor_rank

        return simulate_tensor_rank(
            model, size=size, trials=trials, seed=seed, backend=backend, **kw
        )
    return summarise(run_amp(model, size, trials=trials, seed=seed, backend=backend, **kw))
