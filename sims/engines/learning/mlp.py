"""Networks trained with rank-``r`` error feedback: linear two-layer nets and nonlinear MLPs.

Hanut & Kadmon, arXiv:2502.20580 (digest ``shared/papers/feedback_alignment.md``).
The error reaches layer ``l - 1`` through a feedback matrix ``B_l`` instead of
``W_l^T`` (§1.1): ``bp`` (``W_l^T``), ``fa`` (fixed random ``B_l``), ``dfa``
(the output error sent directly through fixed random matrices), ``fixed``
(``B_l = Q_l P_l``, fixed random rank ``r``), ``normative`` (``Q, P`` descend
``1/2 |W_l^T - Q P|^2``), ``local`` (the gradient a factorised copy
``W_l ~ (Q P)^T`` would get, Kolen--Pollack type, decay ``lam_b``) and
``oja`` (Oja's subspace rule for ``P`` on the error covariance, local ``Q``).

Two engines:

* :func:`simulate_feedback` / :func:`linear_trajectory` -- the sampled-data
  counterpart of :class:`meanfield.models.feedback_alignment.FeedbackAlignment`:
  ``x ~ N(0, I_n)``, ``y = Sigma_yx x + noise``, minibatch SGD (the Euler steps of
  the model's flow, ``t = steps * eta`` in units of ``tau = 1/eta``) or Adam, many
  trials at once. Every step is a few batched matrix products and one
  element-wise optimiser update per parameter.
* :func:`train_mlp` -- nonlinear MLPs (``tanh`` or ``relu``, softmax
  cross-entropy) with every rule, on arrays such as scikit-learn's digits
  (:func:`digits`), with the alignment metrics of digest §2.6.

One scalar body per inner loop, compiled for the CPU (``numba.njit``) and as a
CUDA device function (``numba.cuda.jit(device=True)``): the optimiser updates
:func:`sgd_entry` and :func:`adam_entry` (with decay) and, on the GPU, the batched
matrix-product entry :func:`gemm_entry` and the combination :func:`axpby_entry`
(the CPU uses BLAS for the products). The MLP's bias + activation, derivative,
softmax cross-entropy and bias gradient (:func:`bias_act_entry`, :func:`dact_entry`,
:func:`xent_row`, :func:`colsum_entry`) run on the GPU; the CPU uses numpy's
vectorised forms, which the tests check against the bodies compiled for the CPU.
Data are drawn (linear engine) or gathered (MLP minibatches) on the host, so both
backends see the same numbers.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from meanfield._params import ParamError

from ..._rng import trial_generators

__all__ = [
    "RULES",
    "sgd_entry",
    "adam_entry",
    "gemm_entry",
    "axpby_entry",
    "Ops",
    "linear_trajectory",
    "simulate_feedback",
    "train_mlp",
    "digits",
    "alignment",
    "MAX_STEPS",
    "flop_model",
    "backward_timing",
]

RULES = ("bp", "fa", "dfa", "fixed", "normative", "local", "oja")
LOW_RANK = ("fixed", "normative", "local", "oja")
ADAPTIVE = ("normative", "local", "oja")
#: Most SGD steps one linear simulation may take (``t / eta``).
MAX_STEPS = 200_000
#: Largest accepted ``eta * s_max * max(1, kappa)``: beyond it the Euler steps
#: are unstable or far from the flow the theory integrates (digest pitfall 10).
MAX_ETA_RATE = 0.5
#: hyper-parameter vector of :func:`sgd_entry` and :func:`adam_entry`
_HP = ("lr", "beta1", "beta2", "eps", "bc1", "bc2", "adam", "decay")


# -- scalar bodies (one source, two targets) --------------------------------------------------
def sgd_entry(W, G, M, V, hp, i):  # pragma: no cover (compiled)
    """SGD update of entry ``i``: ``W += lr (G - decay W)`` (``M, V`` unused).

    ``hp = (lr, beta1, beta2, eps, 1 - beta1^t, 1 - beta2^t, adam, decay)``.
    """
    W[i] = W[i] + hp[0] * (G[i] - hp[7] * W[i])


def adam_entry(W, G, M, V, hp, i):  # pragma: no cover (compiled)
    """Adam update of entry ``i`` along ``g = G - decay W``: moments ``M, V``,
    ``W += lr mhat / (sqrt(vhat) + eps)`` (``hp`` as in :func:`sgd_entry`)."""
    g = G[i] - hp[7] * W[i]
    m = hp[1] * M[i] + (1.0 - hp[1]) * g
    v = hp[2] * V[i] + (1.0 - hp[2]) * g * g
    M[i] = m
    V[i] = v
    W[i] = W[i] + hp[0] * (m / hp[4]) / (math.sqrt(v / hp[5]) + hp[3])


def gemm_entry(A, B, C, alpha, beta, ta, tb, t, i, j):  # pragma: no cover (compiled)
    """``C[t, i, j] = alpha (op(A_t) op(B_t))[i, j] + beta C[t, i, j]`` (op: transpose if set)."""
    if ta:
        K = A.shape[1]
    else:
        K = A.shape[2]
    s = 0.0
    for k in range(K):
        if ta:
            a = A[t, k, i]
        else:
            a = A[t, i, k]
        if tb:
            b = B[t, j, k]
        else:
            b = B[t, k, j]
        s += a * b
    if beta == 0.0:
        C[t, i, j] = alpha * s
    else:
        C[t, i, j] = alpha * s + beta * C[t, i, j]


def axpby_entry(X, Y, out, a, b, i):  # pragma: no cover (compiled)
    """``out[i] = a X[i] + b Y[i]``."""
    out[i] = a * X[i] + b * Y[i]


#: activation codes of :func:`bias_act_entry` and :func:`dact_entry`
ACT_CODES = {"tanh": 0, "relu": 1, "linear": 2}


def bias_act_entry(A, bias, Aout, H, kind, ncol, i):  # pragma: no cover (compiled)
    """Entry ``i`` of a row-major ``(rows, ncol)`` layer: ``a = A + bias[col]``, ``H = f(a)``.

    ``kind``: 0 ``tanh``, 1 ``relu``, 2 ``linear`` (:data:`ACT_CODES`).
    """
    a = A[i] + bias[i % ncol]
    Aout[i] = a
    if kind == 0:
        H[i] = math.tanh(a)
    elif kind == 1:
        H[i] = a if a > 0.0 else 0.0
    else:
        H[i] = a


def dact_entry(D, A, H, out, kind, i):  # pragma: no cover (compiled)
    """``out[i] = D[i] f'(a_i)`` from the pre-activation ``A`` and ``H = f(A)``."""
    if kind == 0:
        out[i] = D[i] * (1.0 - H[i] * H[i])
    elif kind == 1:
        out[i] = D[i] if A[i] > 0.0 else 0.0
    else:
        out[i] = D[i]


def xent_row(Z, Y, E, L, scale, ncol, r):  # pragma: no cover (compiled)
    """Softmax cross-entropy of row ``r`` of the logits ``Z`` against targets ``Y``.

    ``E = scale (softmax(z) - y)`` (``dL/dz`` of the mean loss for ``scale = 1/batch``)
    and ``L[r] = -sum_j y_j log max(p_j, 1e-300)`` (max-shifted exponentials).
    """
    base = r * ncol
    mx = Z[base]
    for j in range(1, ncol):
        if Z[base + j] > mx:
            mx = Z[base + j]
    tot = 0.0
    for j in range(ncol):
        tot += math.exp(Z[base + j] - mx)
    loss = 0.0
    for j in range(ncol):
        p = math.exp(Z[base + j] - mx) / tot
        E[base + j] = scale * (p - Y[base + j])
        if Y[base + j] != 0.0:
            loss -= Y[base + j] * math.log(max(p, 1e-300))
    L[r] = loss


def colsum_entry(D, out, alpha, nrow, ncol, j):  # pragma: no cover (compiled)
    """``out[j] = alpha sum_r D[r, j]`` of a row-major ``(nrow, ncol)`` array."""
    tot = 0.0
    for r in range(nrow):
        tot += D[r * ncol + j]
    out[j] = alpha * tot


_KERNELS: dict[tuple[str, str], Any] = {}
cuda = None  # numba.cuda, imported on first use


def _cpu_opt():
    """``opt(W, G, M, V, hp)``: SGD or Adam (``hp[6]``) over every entry (CPU)."""
    if ("opt", "cpu") not in _KERNELS:
        import numba

        sgd = numba.njit(cache=False, inline="always")(sgd_entry)
        adam = numba.njit(cache=False, inline="always", error_model="numpy")(adam_entry)

        @numba.njit(cache=False, error_model="numpy")
        def opt_kernel(W, G, M, V, hp):
            if hp[6] > 0.5:
                for i in range(W.size):
                    adam(W, G, M, V, hp, i)
            else:
                for i in range(W.size):
                    sgd(W, G, M, V, hp, i)

        _KERNELS[("opt", "cpu")] = opt_kernel
    return _KERNELS[("opt", "cpu")]


def _cpu_nn() -> dict[str, Any]:
    """The MLP's element-wise and row-wise scalar bodies compiled for the CPU.

    The GPU runs these bodies (:func:`cuda_kernels`); the CPU trainer uses numpy's
    vectorised forms (:class:`Ops`), and the tests check the two against each other.
    """
    if ("bias_act", "cpu") not in _KERNELS:
        import numba

        jit = numba.njit(cache=False, error_model="numpy")
        b_act = numba.njit(cache=False, inline="always")(bias_act_entry)
        d_act = numba.njit(cache=False, inline="always")(dact_entry)
        x_row = numba.njit(cache=False, inline="always", error_model="numpy")(xent_row)
        c_sum = numba.njit(cache=False, inline="always")(colsum_entry)

        @jit
        def bias_act_kernel(A, bias, Aout, H, kind, ncol):
            for i in range(A.size):
                b_act(A, bias, Aout, H, kind, ncol, i)

        @jit
        def dact_kernel(D, A, H, out, kind):
            for i in range(D.size):
                d_act(D, A, H, out, kind, i)

        @jit
        def xent_kernel(Z, Y, E, L, scale, ncol):
            for r in range(L.size):
                x_row(Z, Y, E, L, scale, ncol, r)

        @jit
        def colsum_kernel(D, out, alpha, nrow, ncol):
            for j in range(ncol):
                c_sum(D, out, alpha, nrow, ncol, j)

        for k, v in (
            ("bias_act", bias_act_kernel),
            ("dact", dact_kernel),
            ("xent", xent_kernel),
            ("colsum", colsum_kernel),
        ):
            _KERNELS[(k, "cpu")] = v
    return {k: _KERNELS[(k, "cpu")] for k in NN_KERNELS}


#: names of the MLP kernels (:func:`_cpu_nn`, :func:`cuda_kernels`)
NN_KERNELS = ("bias_act", "dact", "xent", "colsum")
#: every CUDA kernel of :func:`cuda_kernels`
CUDA_KERNELS = ("opt", "gemm", "axpby", *NN_KERNELS)


def cuda_kernels() -> dict[str, Any]:
    """The CUDA kernels (grid-stride loops around the scalar bodies)."""
    global cuda  # a module global: the CUDA simulator swaps globals only
    if ("opt", "cuda") in _KERNELS:
        return {k: _KERNELS[(k, "cuda")] for k in CUDA_KERNELS}
    from numba import cuda

    g_sgd = cuda.jit(device=True)(sgd_entry)
    g_adam = cuda.jit(device=True)(adam_entry)
    g_gemm = cuda.jit(device=True)(gemm_entry)
    g_axpby = cuda.jit(device=True)(axpby_entry)

    @cuda.jit
    def opt_kernel(W, G, M, V, hp):
        start = cuda.grid(1)
        stride = cuda.gridsize(1)
        adam = hp[6] > 0.5
        for i in range(start, W.size, stride):
            if adam:
                g_adam(W, G, M, V, hp, i)
            else:
                g_sgd(W, G, M, V, hp, i)

    @cuda.jit
    def gemm_kernel(A, B, C, alpha, beta, ta, tb):
        T = C.shape[0]
        n_i = C.shape[1]
        n_j = C.shape[2]
        start = cuda.grid(1)
        stride = cuda.gridsize(1)
        for idx in range(start, T * n_i * n_j, stride):
            t = idx // (n_i * n_j)
            rem = idx - t * n_i * n_j
            i = rem // n_j
            g_gemm(A, B, C, alpha, beta, ta, tb, t, i, rem - i * n_j)

    @cuda.jit
    def axpby_kernel(X, Y, out, a, b):
        start = cuda.grid(1)
        stride = cuda.gridsize(1)
        for i in range(start, out.size, stride):
            g_axpby(X, Y, out, a, b, i)

    g_bias_act = cuda.jit(device=True)(bias_act_entry)
    g_dact = cuda.jit(device=True)(dact_entry)
    g_xent = cuda.jit(device=True)(xent_row)
    g_colsum = cuda.jit(device=True)(colsum_entry)

    @cuda.jit
    def bias_act_kernel(A, bias, Aout, H, kind, ncol):
        start = cuda.grid(1)
        stride = cuda.gridsize(1)
        for i in range(start, A.size, stride):
            g_bias_act(A, bias, Aout, H, kind, ncol, i)

    @cuda.jit
    def dact_kernel(D, A, H, out, kind):
        start = cuda.grid(1)
        stride = cuda.gridsize(1)
        for i in range(start, D.size, stride):
            g_dact(D, A, H, out, kind, i)

    @cuda.jit
    def xent_kernel(Z, Y, E, L, scale, ncol):
        start = cuda.grid(1)
        stride = cuda.gridsize(1)
        for r in range(start, L.size, stride):
            g_xent(Z, Y, E, L, scale, ncol, r)

    @cuda.jit
    def colsum_kernel(D, out, alpha, nrow, ncol):
        start = cuda.grid(1)
        stride = cuda.gridsize(1)
        for j in range(start, ncol, stride):
            g_colsum(D, out, alpha, nrow, ncol, j)

    kernels = {
        "opt": opt_kernel,
        "gemm": gemm_kernel,
        "axpby": axpby_kernel,
        "bias_act": bias_act_kernel,
        "dact": dact_kernel,
        "xent": xent_kernel,
        "colsum": colsum_kernel,
    }
    for k, v in kernels.items():
        _KERNELS[(k, "cuda")] = v
    return kernels


class Ops:
    """The few array operations training needs, on the CPU (numpy + numba) or the GPU.

    All arrays are stacks over trials, ``(T, rows, cols)``, C-contiguous float64.
    """

    def __init__(self, backend: str = "cpu", threads_per_block: int = 128, max_blocks: int = 1024):
        if backend not in ("cpu", "cuda"):
            raise ParamError("backend", "one of cpu, cuda", backend)
        self.backend = backend
        self.tpb, self.max_blocks = threads_per_block, max_blocks
        if backend == "cpu":
            self._opt = _cpu_opt()
        else:
            from numba import cuda

            self._cuda = cuda
            self._k = cuda_kernels()

    def _grid(self, n: int) -> tuple[int, int]:
        return max(1, min(self.max_blocks, (n + self.tpb - 1) // self.tpb)), self.tpb

    def put(self, x: np.ndarray):
        x = np.ascontiguousarray(x, dtype=np.float64)
        return x if self.backend == "cpu" else self._cuda.to_device(x)

    def get(self, x) -> np.ndarray:
        return np.asarray(x) if self.backend == "cpu" else x.copy_to_host()

    def zeros_like(self, x):
        if self.backend == "cpu":
            return np.zeros_like(x)
        return self._cuda.to_device(np.zeros(x.shape))

    def mm(self, A, B, ta: bool = False, tb: bool = False, alpha: float = 1.0):
        """``alpha op(A) op(B)`` per trial."""
        if self.backend == "cpu":
            a = np.swapaxes(A, -1, -2) if ta else A
            b = np.swapaxes(B, -1, -2) if tb else B
            out = np.matmul(a, b)
            if alpha != 1.0:
                out *= alpha
            return np.ascontiguousarray(out)
        n_i = A.shape[2] if ta else A.shape[1]
        n_j = B.shape[1] if tb else B.shape[2]
        C = self._cuda.device_array((A.shape[0], n_i, n_j))
        self._k["gemm"][self._grid(C.size)](A, B, C, float(alpha), 0.0, bool(ta), bool(tb))
        return C

    def comb(self, a: float, X, b: float, Y):
        """``a X + b Y``."""
        if self.backend == "cpu":
            return a * X + b * Y
        out = self._cuda.device_array(X.shape)
        self._k["axpby"][self._grid(X.size)](
            X.reshape(X.size), Y.reshape(Y.size), out.reshape(out.size), float(a), float(b)
        )
        return out

    # The MLP's element-wise and row-wise steps. The GPU runs the scalar bodies
    # (bias_act_entry, dact_entry, xent_row, colsum_entry); the CPU uses numpy's vectorised
    # ufuncs (as it uses BLAS for the products: numba's scalar tanh is several times slower
    # than numpy's SIMD one). The bodies compiled for the CPU (_cpu_nn) are tested against
    # these numpy forms, and the GPU path against the CPU path under the CUDA simulator.
    def _launch(self, name: str, n: int, *args) -> None:
        self._k[name][self._grid(n)](*args)

    def bias_act(self, A, bias, act: str):
        """``(a, f(a))`` with ``a = A + bias`` (``bias`` broadcast over the rows of each stack)."""
        if self.backend == "cpu":
            a = A + bias
            if act == "tanh":
                return a, np.tanh(a)
            if act == "relu":
                return a, np.maximum(a, 0.0)
            return a, a
        Aout, H = self._cuda.device_array(A.shape), self._cuda.device_array(A.shape)
        n, ncol = int(np.prod(A.shape)), int(tuple(A.shape)[-1])
        self._launch(
            "bias_act", n, A.reshape(n), bias.reshape(ncol), Aout.reshape(n), H.reshape(n),
            ACT_CODES[act], ncol,
        )  # fmt: skip
        return Aout, H

    def dact(self, D, A, H, act: str):
        """``D * f'(A)`` (``H = f(A)``)."""
        if self.backend == "cpu":
            if act == "tanh":
                return D * (1.0 - H * H)
            if act == "relu":
                return D * (A > 0.0)
            return D
        out = self._cuda.device_array(D.shape)
        n = int(np.prod(D.shape))
        self._launch(
            "dact", n, D.reshape(n), A.reshape(n), H.reshape(n), out.reshape(n), ACT_CODES[act]
        )
        return out

    def softmax_xent(self, Z, Y, scale: float):
        """``(E, L)``: ``E = scale (softmax(Z) - Y)`` per row and the rows' cross-entropies."""
        if self.backend == "cpu":
            p = np.exp(Z - Z.max(axis=-1, keepdims=True))
            p /= p.sum(axis=-1, keepdims=True)
            loss = -np.sum(Y * np.log(np.maximum(p, 1e-300)), axis=-1).reshape(-1)
            return scale * (p - Y), loss
        E = self._cuda.device_array(Z.shape)
        ncol = int(tuple(Z.shape)[-1])
        rows = int(np.prod(Z.shape)) // ncol
        L = self._cuda.device_array((rows,))
        n = rows * ncol
        self._launch("xent", rows, Z.reshape(n), Y.reshape(n), E.reshape(n), L, float(scale), ncol)
        return E, L

    def colsum(self, D, alpha: float = 1.0):
        """``alpha`` times the column sums of a ``(1, rows, cols)`` stack, as ``(1, 1, cols)``."""
        if self.backend == "cpu":
            return alpha * D.sum(axis=-2, keepdims=True)
        nrow, ncol = (int(x) for x in tuple(D.shape)[-2:])
        out = self._cuda.device_array((1, 1, ncol))
        self._launch(
            "colsum", ncol, D.reshape(nrow * ncol), out.reshape(ncol), float(alpha), nrow, ncol
        )
        return out

    def step(self, W, G, M, V, hp: np.ndarray) -> None:
        """One optimiser update of ``W`` (in place) along the descent direction ``G``."""
        if self.backend == "cpu":
            self._opt(W.reshape(-1), G.reshape(-1), M.reshape(-1), V.reshape(-1), hp)
            return
        hpd = self._cuda.to_device(np.asarray(hp, dtype=np.float64))
        self._k["opt"][self._grid(W.size)](
            W.reshape(W.size), G.reshape(G.size), M.reshape(M.size), V.reshape(V.size), hpd
        )


def _hp(lr: float, optimizer: str, step: int, decay: float = 0.0, betas=(0.9, 0.999), eps=1e-8):
    b1, b2 = betas
    adam = optimizer == "adam"
    return np.array(
        [
            lr,
            b1,
            b2,
            eps,
            1.0 - b1**step if adam else 1.0,
            1.0 - b2**step if adam else 1.0,
            1.0 if adam else 0.0,
            decay,
        ],
        dtype=np.float64,
    )


# -- linear two-layer networks: the model's sampled-data counterpart --------------------------
def _check_options(model, batch, optimizer, noise) -> None:
    if isinstance(batch, bool) or not isinstance(batch, int | float) or int(batch) != batch:
        raise ParamError("batch", "an integer in [1, 65536]", batch)
    if not 1 <= int(batch) <= 65536:
        raise ParamError("batch", "an integer in [1, 65536]", batch)
    if optimizer not in ("sgd", "adam"):
        raise ParamError("optimizer", "one of sgd, adam", optimizer)
    try:
        noise = float(noise)
    except (TypeError, ValueError):
        raise ParamError("noise", "a float in [0, 100]", noise) from None
    if not 0.0 <= noise <= 100.0:
        raise ParamError("noise", "a float in [0, 100]", noise)
    eta = model["eta"]
    rate = max(model.spectrum) * (max(1.0, model.kappa) if model["rule"] in ADAPTIVE else 1.0)
    if eta * rate > MAX_ETA_RATE:
        raise ParamError(
            "eta",
            f"at most {MAX_ETA_RATE:g} / (s_max * max(1, kappa)) = {MAX_ETA_RATE / rate:.4g} "
            "(larger Euler steps are unstable or leave the flow the theory integrates)",
            eta,
        )
    steps = math.ceil(model["t"] / eta - 1e-9)
    if steps > MAX_STEPS:
        raise ParamError(
            "eta",
            f"at least t / {MAX_STEPS} = {model['t'] / MAX_STEPS:.4g} (at most "
            f"{MAX_STEPS} steps per run)",
            eta,
        )


def _linear_trajectory(
    model,
    times,
    *,
    trials: int = 8,
    seed: int = 0,
    backend: str = "cpu",
    batch: int = 256,
    optimizer: str = "sgd",
    noise: float = 0.0,
    vary_init: bool = False,
    feedback_override=None,
    max_seconds: float = math.inf,
) -> dict[str, Any]:
    """Train ``trials`` linear networks on sampled data; metrics at ``times`` (units of tau).

    Parameters
    ----------
    model : FeedbackAlignment
        Rule, sizes, task, initial condition, ``eta`` (the step, ``t = steps eta``).
    times : array_like
        Increasing record times; each is rounded to the nearest step.
    trials, seed, backend
        Independent data streams (trial ``i`` draws from the ``i``-th
        ``SeedSequence(seed)`` child).
    batch : int
        Samples per minibatch; the minibatch gradient is an unbiased estimate of
        the population flow of the model (its noise shrinks like ``1/sqrt(batch)``).
    optimizer : {'sgd', 'adam'}
        ``sgd``: ``theta += eta * direction`` (the Euler steps of the model's flow);
        ``adam``: Adam with step ``eta`` (a different time parametrisation).
    noise : float
        Std of additive output noise.
    vary_init : bool
        Each trial its own realisation (``seed + i``) instead of the model's one.
    feedback_override : callable, optional
        Test hook: ``f(W2, B, Q, P) -> k x m`` stack replacing the delivered
        feedback (mutation checks).
    max_seconds : float
        Wall-clock budget; a run that exceeds it stops with ``status =
        'not_converged'`` and only the records reached.

    Returns
    -------
    dict
        ``t`` (n_t,), per-trial stacks ``loss`` (n_t, T), ``sigma_hat`` (n_t, T, d),
        ``pd_norm``, ``d_norm``, ``angle``, ``overlap`` (rank-r rules), and ``steps``.
    """
    from meanfield.models.feedback_alignment import metrics, realization

    _check_options(model, batch, optimizer, noise)
    batch = int(batch)
    rule, eta, T = model["rule"], float(model["eta"]), int(trials)
    kappa, lam, lam_b = model.kappa, model["lam"], model["lam_b"]
    times = np.asarray(times, dtype=float).ravel()
    if times.size == 0 or np.any(np.diff(times) < 0) or times[0] < 0:
        raise ParamError("times", "non-decreasing times >= 0", times.tolist())
    rec_steps = np.rint(times / eta).astype(np.int64)
    if rec_steps[-1] > MAX_STEPS:
        raise ParamError("eta", f"at least t / {MAX_STEPS}", eta)
    reals = [realization(model, model["seed"] + i if vary_init else None) for i in range(T)]
    stack = {key: np.stack([r_[key] for r_ in reals]) for key in reals[0]}
    ops = Ops(backend)
    W1, W2 = ops.put(stack["W1"]), ops.put(stack["W2"])
    Bf, Q, P = ops.put(stack["B"]), ops.put(stack["Q"]), ops.put(stack["P"])
    params = {"W1": W1, "W2": W2}
    if rule in ADAPTIVE:
        params.update(Q=Q, P=P)
    moments = {k_: (ops.zeros_like(v), ops.zeros_like(v)) for k_, v in params.items()}
    gens = trial_generators(seed, T)
    SyxT = np.swapaxes(stack["Syx"], -1, -2)
    n, m = stack["W1"].shape[2], stack["W2"].shape[1]
    rows: list[dict] = []

    def record():
        h = {k_: ops.get(v) for k_, v in (("W1", W1), ("W2", W2), ("Q", Q), ("P", P))}
        rows.append(
            metrics(
                rule,
                stack["Syx"],
                stack["U"],
                stack["V"],
                stack["spectrum"][0],
                h["W1"],
                h["W2"],
                stack["B"],
                h["Q"],
                h["P"],
            )
        )

    ri = 0
    t_start = time.perf_counter()
    status = "ok"
    for step in range(int(rec_steps[-1]) + 1):
        if step % 32 == 0 and time.perf_counter() - t_start > max_seconds:
            status = "not_converged"
            break
        while ri < rec_steps.size and rec_steps[ri] == step:
            record()
            ri += 1
        if step == rec_steps[-1]:
            break
        X = np.stack([g.standard_normal((batch, n)) for g in gens])
        Y = X @ SyxT
        if noise > 0:
            Y += noise * np.stack([g.standard_normal((batch, m)) for g in gens])
        Xd, Yd = ops.put(X), ops.put(Y)
        H = ops.mm(Xd, W1, tb=True)  # (T, B, k)
        E = ops.comb(1.0, Yd, -1.0, ops.mm(H, W2, tb=True))  # y - yhat, (T, B, m)
        G2 = ops.mm(E, H, ta=True, alpha=1.0 / batch)  # D W1^T, (T, m, k)
        if feedback_override is not None:
            Bd = ops.put(feedback_override(ops.get(W2), stack["B"], ops.get(Q), ops.get(P)))
            delta = ops.mm(E, Bd, tb=True)
        elif rule == "bp":
            delta = ops.mm(E, W2)  # e W2 = (W2^T e)^T
        elif rule in ("fa", "dfa"):
            delta = ops.mm(E, Bf, tb=True)
        else:
            delta = ops.mm(ops.mm(E, P, tb=True), Q, tb=True)  # (Q P e)^T
        G1 = ops.mm(delta, Xd, ta=True, alpha=1.0 / batch)  # B D, (T, k, n)
        grads = {"W1": G1, "W2": G2}
        if rule == "normative":
            EwT = ops.comb(1.0, W2, -1.0, ops.mm(P, Q, ta=True, tb=True))  # (W2^T - QP)^T
            grads["Q"] = ops.mm(EwT, P, ta=True, tb=True)
            grads["P"] = ops.mm(Q, EwT, ta=True, tb=True)
        elif rule in ("local", "oja"):
            HE = ops.mm(H, E, ta=True, alpha=1.0 / batch)  # W1 D^T, (T, k, m)
            grads["Q"] = ops.mm(HE, P, tb=True)
            if rule == "local":
                grads["P"] = ops.mm(Q, HE, ta=True)
            else:
                C = ops.get(ops.mm(E, E, ta=True, alpha=1.0 / batch))
                tr = np.trace(C, axis1=-2, axis2=-1)
                C = C / np.where(tr > 0, tr, 1.0)[:, None, None]
                Cd = ops.put(C)
                PC = ops.mm(P, Cd)
                grads["P"] = ops.comb(1.0, PC, -1.0, ops.mm(ops.mm(PC, P, tb=True), P))
        n_step = step + 1
        for key, Wp in params.items():
            fb = key in ("Q", "P")
            lr = eta * kappa if fb else eta
            dec = (
                lam
                if not fb
                else (lam_b if rule == "local" or (rule == "oja" and key == "Q") else 0.0)
            )
            M_, V_ = moments[key]
            ops.step(Wp, grads[key], M_, V_, _hp(lr, optimizer, n_step, dec))
    out: dict[str, Any] = {"t": rec_steps[: len(rows)] * eta, "steps": int(step)}
    for key in rows[0] if rows else ():
        out[key] = np.array([row[key] for row in rows])
    out["status"] = status
    return out


def _mean_sem(x: np.ndarray, axis: int = 0):
    x = np.asarray(x, dtype=float)
    n = x.shape[axis]
    mean = x.mean(axis=axis)
    sem = x.std(axis=axis, ddof=1) / np.sqrt(n) if n > 1 else np.full_like(mean, np.nan)
    return mean, sem


def simulate_feedback(
    model,
    *,
    size: int,
    trials: int,
    seed: int,
    backend: str = "cpu",
    batch: int = 256,
    optimizer: str = "sgd",
    noise: float = 0.0,
    vary_init: bool = False,
    max_seconds: float = 45.0,
) -> dict[str, Any]:
    """The ``simulate`` keys of ``feedback_alignment`` from sampled data (mean and SEM over trials).

    ``size`` is the hidden width ``k`` (the model's ``size_param``). See
    :func:`linear_trajectory` for the options.
    """
    if isinstance(vary_init, str):
        if vary_init.lower() not in ("true", "false", "1", "0"):
            raise ParamError("vary_init", "true or false", vary_init)
        vary_init = vary_init.lower() in ("true", "1")
    if isinstance(batch, str):
        try:
            batch = int(batch)
        except ValueError:
            raise ParamError("batch", "an integer in [1, 65536]", batch) from None
    tr = linear_trajectory(
        model,
        [model["t"]],
        trials=trials,
        seed=seed,
        backend=backend,
        batch=batch,
        optimizer=optimizer,
        noise=noise,
        vary_init=bool(vary_init),
        max_seconds=float(max_seconds),
    )
    if tr["status"] != "ok" or tr["t"].size == 0:
        keys = ("loss", "sigma_hat", "pd_norm", "angle", "d_norm", "overlap")
        res = {k_: None for key in keys for k_ in (key, key + "_sem")}
        res.update(
            status="not_converged",
            t=float(model["t"]),
            message=f"stopped after {tr['steps']} of {math.ceil(model['t'] / model['eta'])} "
            f"steps: the wall-clock budget of {max_seconds:g} s (option max_seconds) was spent",
        )
        return res
    from meanfield.models.feedback_alignment import LOW_RANK as _LR
    from meanfield.models.feedback_alignment import eckart_young_floor

    out: dict[str, Any] = {}
    for key in ("loss", "sigma_hat", "pd_norm", "angle", "d_norm", "overlap"):
        if key not in tr:
            out[key], out[key + "_sem"] = None, None
            continue
        mean, sem = _mean_sem(tr[key][-1], axis=0)
        if np.ndim(mean):
            out[key], out[key + "_sem"] = mean.tolist(), sem.tolist()
        else:
            out[key], out[key + "_sem"] = float(mean), float(sem)
    loss_ok = out["loss"] is not None and np.isfinite(out["loss"])
    status = "ok" if loss_ok else "diverged"
    ordered = {
        "loss": out["loss"],
        "loss_sem": out["loss_sem"],
        "sigma_hat": out["sigma_hat"],
        "sigma_hat_sem": out["sigma_hat_sem"],
        "status": status,
        "t": float(tr["t"][-1]),
        "floor": eckart_young_floor(model.spectrum, model["r"]) if model["rule"] in _LR else 0.0,
        "pd_norm": out["pd_norm"],
        "pd_norm_sem": out["pd_norm_sem"],
        "angle": out["angle"],
        "angle_sem": out["angle_sem"],
        "d_norm": out["d_norm"],
        "d_norm_sem": out["d_norm_sem"],
        "overlap": out["overlap"],
        "overlap_sem": out["overlap_sem"],
        "steps": tr["steps"],
        "trials": int(trials),
        "batch": int(batch),
        "optimizer": optimizer,
    }
    if trials == 1:  # no spread from one trial: null, not NaN
        for key in list(ordered):
            if key.endswith("_sem"):
                ordered[key] = None
    return _finite(ordered)


def _finite(d: dict) -> dict:
    def fix(v):
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, list):
            return [fix(x) for x in v]
        return v

    return {k: fix(v) for k, v in d.items()}


# -- alignment metrics (digest §2.6) ------------------------------------------------------------
def _angle(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        return float("nan")
    return float(np.degrees(np.arccos(np.clip(np.sum(a * b) / (na * nb), -1.0, 1.0))))


def alignment(
    W: np.ndarray,
    B: np.ndarray,
    delta: np.ndarray | None = None,
    P: np.ndarray | None = None,
    Ud: np.ndarray | None = None,
) -> dict[str, float]:
    """Alignment of feedback ``B`` (``n_in x n_out``) with the forward ``W`` (``n_out x n_in``).

    Returns ``matrix_angle`` (degrees between ``B`` and ``W^T``), ``delivered_angle``
    (mean over the rows of ``delta`` (batch x n_out) of the angle between ``W^T delta``
    and ``B delta``; Lillicrap's condition is ``< 90``), ``recon``
    (``|W^T - B| / |W|``), and with ``P`` and ``Ud`` (n_out x d) the subspace
    ``overlap`` ``|Pi_row(P) Ud|^2 / min(r, d)``.
    """
    out = {"matrix_angle": _angle(B, W.T)}
    nw = np.linalg.norm(W)
    out["recon"] = float(np.linalg.norm(W.T - B) / nw) if nw > 0 else float("nan")
    if delta is not None:
        a, b = delta @ W, delta @ B.T
        na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
        ok = (na > 0) & (nb > 0)
        if ok.any():
            c = np.sum(a[ok] * b[ok], axis=1) / (na[ok] * nb[ok])
            out["delivered_angle"] = float(np.degrees(np.arccos(np.clip(c, -1, 1))).mean())
        else:
            out["delivered_angle"] = float("nan")
    if P is not None and Ud is not None:
        proj = P.T @ np.linalg.pinv(P @ P.T) @ P
        out["overlap"] = float(np.sum((proj @ Ud) ** 2) / min(P.shape[0], Ud.shape[1]))
    return out


# -- nonlinear MLPs on real data ---------------------------------------------------------------
def digits(test_fraction: float = 0.3, seed: int = 0) -> dict[str, np.ndarray]:
    """scikit-learn's handwritten digits (1797 8x8 images, shipped with the package).

    Pixels scaled to ``[0, 1]`` and centred per feature on the training split;
    a stratified split seeded by ``seed``.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    Xtr, Xte, ytr, yte = train_test_split(
        X, y, test_size=test_fraction, random_state=seed, stratify=y
    )
    mu = Xtr.mean(axis=0)
    return {"Xtr": Xtr - mu, "ytr": ytr, "Xte": Xte - mu, "yte": yte, "classes": 10}


def _train_mlp(
    Xtr: np.ndarray,
    ytr: np.ndarray,
    Xte: np.ndarray,
    yte: np.ndarray,
    *,
    hidden=(128, 128),
    rule: str = "bp",
    r: int = 10,
    activation: str = "tanh",
    optimizer: str = "adam",
    lr: float = 1e-3,
    kappa: float = 1.0,
    lam_b: float = 1e-4,
    epochs: int = 20,
    batch: int = 32,
    seed: int = 0,
    init_feedback: str = "random",
    backend: str = "cpu",
) -> dict[str, Any]:
    """Train an MLP ``n -> hidden... -> classes`` with softmax cross-entropy and ``rule``.

    Layer ``l`` receives ``delta_{l-1} = (B_l delta_l) * f'(a_{l-1})`` with ``B_l``
    of the rule (``dfa``: ``delta_{l-1} = (D_{l-1} e) * f'``, ``D`` fixed random);
    rank-``r`` rules use ``B_l = Q_l P_l`` with ``rank = min(r, n_in, n_out)``
    (digest pitfall 7). Forward weights move along ``-delta h^T`` with SGD or
    Adam (the :func:`sgd_entry` / :func:`adam_entry` bodies); ``Q, P`` learn at
    ``kappa * lr`` with the
    same optimiser. ``init_feedback='svd'`` starts ``Q P`` at the truncated SVD
    of ``W^T`` (so full rank equals backprop at step 0).

    ``backend='cpu'`` or ``'cuda'``: every step is a few :class:`Ops` calls -- products
    (BLAS on the CPU, :func:`gemm_entry` on the GPU), the bias + activation, its
    derivative, the softmax cross-entropy and the bias gradient (numpy ufuncs on the CPU;
    on the GPU the scalar bodies :func:`bias_act_entry`, :func:`dact_entry`,
    :func:`xent_row`, :func:`colsum_entry`, whose CPU compilation is tested against the
    numpy forms) and the optimiser (:func:`sgd_entry` / :func:`adam_entry`, one body for
    both); minibatches are
    gathered on the host from the same permutation, so both backends train the same
    network (parity to round-off, ``tests/feedback_alignment``).

    Returns
    -------
    dict
        ``test_acc`` and ``train_loss`` per epoch, ``best_test_acc``, final
        ``alignment`` per feedback layer (:func:`alignment`), ``rank`` per layer.
    """
    if rule not in RULES:
        raise ParamError("rule", "one of " + ", ".join(RULES), rule)
    if optimizer not in ("sgd", "adam"):
        raise ParamError("optimizer", "one of sgd, adam", optimizer)
    if activation not in ACT_CODES:
        raise ParamError("activation", "one of tanh, relu, linear", activation)
    ops = Ops(backend)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 31]))
    C = int(max(ytr.max(), yte.max())) + 1
    sizes = [Xtr.shape[1], *[int(h) for h in hidden], C]
    L = len(sizes) - 1
    W = [rng.uniform(-1, 1, (sizes[i + 1], sizes[i])) * np.sqrt(3.0 / sizes[i]) for i in range(L)]
    b = [np.zeros((1, sizes[i + 1])) for i in range(L)]
    fbQ: dict[int, np.ndarray] = {}
    fbP: dict[int, np.ndarray] = {}
    fbB: dict[int, np.ndarray] = {}
    ranks = {}
    for lyr in range(1, L):  # layer lyr delivers the error to layer lyr - 1
        n_in, n_out = sizes[lyr], sizes[lyr + 1]
        if rule == "fa":
            fbB[lyr] = rng.standard_normal((n_in, n_out)) / np.sqrt(n_out)
        elif rule == "dfa":
            fbB[lyr] = rng.standard_normal((n_in, C)) / np.sqrt(C)
        elif rule in LOW_RANK:
            rk = int(min(r, n_in, n_out))
            ranks[lyr] = rk
            if init_feedback == "svd":
                u, s, vt = np.linalg.svd(W[lyr].T, full_matrices=False)
                fbQ[lyr] = u[:, :rk] * np.sqrt(s[:rk])
                fbP[lyr] = np.sqrt(s[:rk])[:, None] * vt[:rk]
            else:
                fbQ[lyr] = rng.standard_normal((n_in, rk)) / np.sqrt(rk)
                fbP[lyr] = rng.standard_normal((rk, n_out)) / np.sqrt(n_out)
    Wd = [ops.put(w[None]) for w in W]  # stacks of one: (1, n_out, n_in)
    bd = [ops.put(b_[None]) for b_ in b]  # (1, 1, n_out)
    Qd = {k_: ops.put(v[None]) for k_, v in fbQ.items()}
    Pd = {k_: ops.put(v[None]) for k_, v in fbP.items()}
    Bd = {k_: ops.put(v[None]) for k_, v in fbB.items()}
    moments: dict[Any, tuple[Any, Any]] = {}

    def update(key, arr, g, lr_, t, dec=0.0):
        if key not in moments:
            moments[key] = (ops.zeros_like(arr), ops.zeros_like(arr))
        M_, V_ = moments[key]
        ops.step(arr, g, M_, V_, _hp(lr_, optimizer, t, dec))

    def forward(Xd):
        hs, as_ = [Xd], []
        for i in range(L):
            a, h = ops.bias_act(
                ops.mm(hs[-1], Wd[i], tb=True), bd[i], activation if i < L - 1 else "linear"
            )
            as_.append(a)
            hs.append(h)
        return hs, as_

    Xte_d = ops.put(np.asarray(Xte)[None])

    def accuracy():
        logits = ops.get(forward(Xte_d)[0][-1])[0]
        return float(np.mean(np.argmax(logits, axis=1) == yte))

    n_tr = Xtr.shape[0]
    Yoh = np.eye(C)[ytr]
    test_acc, train_loss = [], []
    step = 0
    last_delta: dict[int, Any] = {}
    for _ in range(int(epochs)):
        perm = rng.permutation(n_tr)
        tot = 0.0
        for s0 in range(0, n_tr, batch):
            idx = perm[s0 : s0 + batch]
            nb = len(idx)
            hs, as_ = forward(ops.put(Xtr[idx][None]))
            e, row_loss = ops.softmax_xent(hs[-1], ops.put(Yoh[idx][None]), 1.0 / nb)
            tot += float(np.sum(ops.get(row_loss)))  # e: dL/d(logits) of the mean loss
            deltas: list[Any] = [None] * L
            deltas[L - 1] = e
            for lyr in range(L - 1, 0, -1):
                dl = deltas[lyr]
                if rule == "bp":
                    back = ops.mm(dl, Wd[lyr])
                elif rule == "fa":
                    back = ops.mm(dl, Bd[lyr], tb=True)
                elif rule == "dfa":
                    back = ops.mm(e, Bd[lyr], tb=True)
                else:
                    back = ops.mm(ops.mm(dl, Pd[lyr], tb=True), Qd[lyr], tb=True)
                deltas[lyr - 1] = ops.dact(back, as_[lyr - 1], hs[lyr], activation)
            step += 1
            for i in range(L):
                gW = ops.mm(deltas[i], hs[i], ta=True, alpha=-1.0)  # descent direction
                if i in Qd and rule in ADAPTIVE:
                    Q_, P_ = Qd[i], Pd[i]
                    if rule == "normative":
                        EwT = ops.comb(1.0, Wd[i], -1.0, ops.mm(P_, Q_, ta=True, tb=True))
                        gQ = ops.mm(EwT, P_, ta=True, tb=True)  # (W^T - QP) P^T
                        gP = ops.mm(Q_, EwT, ta=True, tb=True)  # Q^T (W^T - QP)
                        dq = dp = 0.0
                    else:
                        gQ = ops.mm(gW, P_, ta=True, tb=True)  # gW^T P^T
                        if rule == "local":
                            gP = ops.mm(Q_, gW, ta=True, tb=True)  # Q^T gW^T
                            dq = dp = lam_b
                        else:  # oja: error covariance of the unscaled errors, trace 1
                            Cm = ops.get(ops.mm(deltas[i], deltas[i], ta=True, alpha=nb * nb))
                            tr = np.trace(Cm[0])
                            Cd = ops.put(Cm / tr if tr > 0 else Cm)
                            PC = ops.mm(P_, Cd)
                            gP = ops.comb(1.0, PC, -1.0, ops.mm(ops.mm(PC, P_, tb=True), P_))
                            dq, dp = lam_b, 0.0
                    update(("Q", i), Q_, gQ, kappa * lr, step, dq)
                    update(("P", i), P_, gP, kappa * lr, step, dp)
                update(("W", i), Wd[i], gW, lr, step)
                update(("b", i), bd[i], ops.colsum(deltas[i], -1.0), lr, step)
            last_delta = dict(enumerate(deltas))
        train_loss.append(tot / n_tr)
        test_acc.append(accuracy())
    W = [ops.get(w)[0] for w in Wd]
    fbQ = {k_: ops.get(v)[0] for k_, v in Qd.items()}
    fbP = {k_: ops.get(v)[0] for k_, v in Pd.items()}
    last_delta = {k_: ops.get(v)[0] for k_, v in last_delta.items()}
    align = {}
    for lyr in range(1, L):
        if rule == "bp":
            Bm = W[lyr].T
        elif rule == "fa":
            Bm = fbB[lyr]
        elif rule == "dfa":
            continue
        else:
            Bm = fbQ[lyr] @ fbP[lyr]
        align[lyr] = alignment(W[lyr], Bm, last_delta.get(lyr))
    return {
        "test_acc": test_acc,
        "train_loss": train_loss,
        "best_test_acc": float(max(test_acc)) if test_acc else float("nan"),
        "final_test_acc": float(test_acc[-1]) if test_acc else float("nan"),
        "alignment": align,
        "rank": ranks,
        "sizes": sizes,
        "steps": step,
    }


# -- compute per step: backward pass of one layer (digest §3.3) ------------------------------
def flop_model(n_in: int, n_out: int, batch: int, r: int | None) -> dict[str, float]:
    """FLOPs of one linear layer's backward pass (digest §3.3; batch-independent P/Q cost aside).

    Backprop: ``dW = delta^T h`` and ``grad_in = delta W``, ``4 N n_in n_out``.
    LDFA: ``dW`` plus ``grad_in = (delta P^T) Q^T``, ``2 N n_in n_out + 2 N r (n_in + n_out)``.
    ``r = None`` gives backprop; ``ratio`` is LDFA over backprop.
    """
    bp = 4.0 * batch * n_in * n_out
    if r is None:
        return {"flops": bp, "bp_flops": bp, "ratio": 1.0}
    ld = 2.0 * batch * n_in * n_out + 2.0 * batch * r * (n_in + n_out)
    return {"flops": ld, "bp_flops": bp, "ratio": ld / bp}


def backward_timing(
    n_in: int = 4096,
    n_out: int = 4096,
    batch: int = 256,
    ranks=(8, 32, 128),
    repeats: int = 5,
    seed: int = 0,
    threads: int | None = None,
) -> dict[str, Any]:
    """Measured time of one layer's backward pass, backprop against rank-``r`` feedback.

    Backprop computes ``dW = delta^T h`` and ``grad_in = delta W``; LDFA computes
    ``dW`` and ``grad_in = (delta P^T) Q^T`` (float32 BLAS on ``threads`` threads, ``None``
    for the library's default; best of ``repeats`` rounds, each timing backprop and every
    rank in turn so that all see the same machine load).
    Returns the times, the measured ratios and the FLOP-model ratios of :func:`flop_model`.
    """
    import time as _t

    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(seed)
    f32 = np.float32
    W = rng.standard_normal((n_out, n_in)).astype(f32)
    h = rng.standard_normal((batch, n_in)).astype(f32)
    delta = rng.standard_normal((batch, n_out)).astype(f32)

    fns = {"bp": lambda: (delta.T @ h, delta @ W)}
    for r in ranks:
        Pt = rng.standard_normal((n_out, r)).astype(f32)  # P^T
        Qt = rng.standard_normal((r, n_in)).astype(f32)  # Q^T
        fns[int(r)] = lambda Pt=Pt, Qt=Qt: (delta.T @ h, (delta @ Pt) @ Qt)
    best = dict.fromkeys(fns, float("inf"))
    with threadpool_limits(threads, user_api="blas"):
        for fn in fns.values():  # warm-up (page faults, BLAS buffers)
            fn()
        # round-robin: backprop and every rank see the same load on a shared machine
        for _ in range(repeats):
            for k, fn in fns.items():
                t0 = _t.perf_counter()
                fn()
                best[k] = min(best[k], _t.perf_counter() - t0)
    t_bp = best["bp"]
    rows = []
    for r in ranks:
        t_ld = best[int(r)]
        fm = flop_model(n_in, n_out, batch, r)
        rows.append({"r": int(r), "seconds": t_ld, "ratio": t_ld / t_bp, "flop_ratio": fm["ratio"]})
    return {"n_in": n_in, "n_out": n_out, "batch": batch, "bp_seconds": t_bp, "ldfa": rows}


def _one_blas_thread(fn):
    """Small matrices: a multi-threaded BLAS only contends (10x slower on a loaded machine)."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kw):
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1, user_api="blas"):
            return fn(*args, **kw)

    return wrapper


linear_trajectory = _one_blas_thread(_linear_trajectory)
train_mlp = _one_blas_thread(_train_mlp)
