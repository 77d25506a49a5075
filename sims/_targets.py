"""One scalar body -> a CPU kernel (numba prange) and a CUDA kernel (grid-stride).

The scalar bodies are generated from sympy (:mod:`meanfield._codegen`); the
functions here only wrap them in the two launch patterns. Launch tuning lives
in :data:`CONFIG` (tests shrink it so small inputs span many blocks).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from meanfield import _codegen
from meanfield._codegen import ScalarFunction

cuda = None  # numba.cuda, imported on first use

__all__ = [
    "CONFIG",
    "LaunchConfig",
    "amp_entry",
    "update_kernel",
    "vector_amp_entry",
    "vector_update_kernel",
]


@dataclass
class LaunchConfig:
    """CUDA launch tuning: threads per block and a cap on blocks."""

    threads_per_block: int = 256
    max_blocks: int = 4096

    def grid(self, n: int) -> tuple[int, int]:
        tpb = self.threads_per_block
        return max(1, min(self.max_blocks, (n + tpb - 1) // tpb)), tpb


CONFIG = LaunchConfig()
_KERNELS: dict[tuple[str, str], object] = {}


def amp_entry(den: ScalarFunction) -> ScalarFunction:
    """The damped AMP update of one entry, wrapping the sympy denoiser ``den``.

    ``entry(A, B, th, x_old, s_old, eta) -> (x_new, s_new)`` with
    ``x_new = eta f(A, B; th) + (1 - eta) x_old`` (and the same for the
    posterior variance). ``den`` takes ``(A, B, *prior_params)``.
    """
    k = den.n_in - 2
    args = ", ".join(["A", "B"] + [f"th[{j}]" for j in range(k)])
    src = (
        f"def entry_{den.key}(A, B, th, x0, s0, eta):\n"
        f"    r = {den.name}({args})\n"
        "    return eta * r[0] + (1.0 - eta) * x0, eta * r[1] + (1.0 - eta) * s0\n"
    )
    fn = ScalarFunction(
        name=f"entry_{den.key}",
        inputs=(),
        outputs=(),
        source=src,
        namespace={"math": math},
        key=f"entry_{den.key}",
        helpers=[den],
    )
    _codegen._finish(fn)
    return fn


def update_kernel(entry: ScalarFunction, target: str):
    """Apply ``entry`` to every ``(trial, i)``: arrays ``A (T,)``, ``B, X, S (T, N)``, ``eta (T,)``.

    CPU: ``kernel(A, B, th, X, S, eta)`` parallel over entries. CUDA: the same
    signature, launched as ``kernel[grid, block](...)`` with a grid-stride loop.
    """
    key = (entry.key, target)
    if key in _KERNELS:
        return _KERNELS[key]
    if target == "cpu":
        import numba

        body = _codegen.njit(entry)

        # elementwise and O(N): serial, so an AMP iteration has a single
        # parallel region (the contraction)
        @numba.njit(cache=False)
        def kernel(A, B, th, X, S, eta):
            T, N = B.shape
            for k in range(T * N):
                t = k // N
                i = k - t * N
                x, s = body(A[t], B[t, i], th, X[t, i], S[t, i], eta[t])
                X[t, i] = x
                S[t, i] = s

    elif target == "cuda":
        global cuda  # a module global: the CUDA simulator swaps globals only
        from numba import cuda

        body = _codegen.cuda_device(entry)

        @cuda.jit
        def kernel(A, B, th, X, S, eta):
            T = B.shape[0]
            N = B.shape[1]
            start = cuda.grid(1)
            stride = cuda.gridsize(1)
            for k in range(start, T * N, stride):
                t = k // N
                i = k - t * N
                x, s = body(A[t], B[t, i], th, X[t, i], S[t, i], eta[t])
                X[t, i] = x
                S[t, i] = s

    else:
        raise ValueError(f"backend must be one of cpu, cuda; got {target!r}")
    _KERNELS[key] = kernel
    return kernel


def vector_amp_entry(den: ScalarFunction, rank: int) -> ScalarFunction:
    """The damped rank-``r`` AMP update of one row, wrapping the sympy vector denoiser ``den``.

    ``den(B_1..B_r, A_11, A_12, .., A_rr, *prior_params) -> (f_1..f_r, C_11, C_12, .., C_rr)``
    (precision and covariance as upper triangles, row by row). The generated
    ``entry(A, B, th, X, S, eta, t, i)`` reads row ``i`` of trial ``t`` and
    overwrites it in place: ``X[t, i, s] = eta f_s + (1 - eta) X[t, i, s]``
    and ``S[t, i, k] = eta C_k + (1 - eta) S[t, i, k]``, with arrays
    ``A (T, r(r+1)/2)``, ``B, X (T, N, r)``, ``S (T, N, r(r+1)/2)``,
    ``eta (T,)``. The same source compiles for the CPU and as a CUDA device
    function (in-place stores, no allocation).
    """
    r = int(rank)
    nu = r * (r + 1) // 2
    k = den.n_in - r - nu
    if k < 0:
        raise ValueError(f"{den.name} takes {den.n_in} inputs, fewer than a rank-{r} field")
    args = ", ".join(
        [f"B[t, i, {s}]" for s in range(r)]
        + [f"A[t, {j}]" for j in range(nu)]
        + [f"th[{j}]" for j in range(k)]
    )
    lines = [
        f"def ventry_{den.key}_r{r}(A, B, th, X, S, eta, t, i):",
        f"    o = {den.name}({args})",
        "    e = eta[t]",
        "    c = 1.0 - e",
    ]
    lines += [f"    X[t, i, {s}] = e * o[{s}] + c * X[t, i, {s}]" for s in range(r)]
    lines += [f"    S[t, i, {j}] = e * o[{r + j}] + c * S[t, i, {j}]" for j in range(nu)]
    fn = ScalarFunction(
        name=f"ventry_{den.key}_r{r}",
        inputs=(),
        outputs=(),
        source="\n".join(lines) + "\n",
        namespace={"math": math},
        key=f"ventry_{den.key}_r{r}",
        helpers=[den],
    )
    _codegen._finish(fn)
    return fn


def vector_update_kernel(entry: ScalarFunction, target: str):
    """Apply the row update ``entry`` to every ``(trial, row)``.

    ``kernel(A, B, th, X, S, eta)`` with ``A (T, r(r+1)/2)``, ``B, X (T, N, r)``,
    ``S (T, N, r(r+1)/2)``, ``eta (T,)``; CPU: a serial loop over rows (the
    contraction is the parallel region), CUDA: a grid-stride loop, one thread
    per row, launched as ``kernel[grid, block](...)``.
    """
    key = (entry.key, target)
    if key in _KERNELS:
        return _KERNELS[key]
    if target == "cpu":
        import numba

        body = _codegen.njit(entry)

        @numba.njit(cache=False)
        def kernel(A, B, th, X, S, eta):
            T = B.shape[0]
            N = B.shape[1]
            for k in range(T * N):
                t = k // N
                body(A, B, th, X, S, eta, t, k - t * N)

    elif target == "cuda":
        global cuda  # a module global: the CUDA simulator swaps globals only
        from numba import cuda

        body = _codegen.cuda_device(entry)

        @cuda.jit
        def kernel(A, B, th, X, S, eta):
            T = B.shape[0]
            N = B.shape[1]
            start = cuda.grid(1)
            stride = cuda.gridsize(1)
            for k in range(start, T * N, stride):
                t = k // N
                body(A, B, th, X, S, eta, t, k - t * N)

    else:
        raise ValueError(f"backend must be one of cpu, cuda; got {target!r}")
    _KERNELS[key] = kernel
    return kernel
