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


def _entry(name: str, lines: list[str], den: ScalarFunction) -> ScalarFunction:
    """A generated in-place update ``name(A, B, th, X, S, eta, t, i)`` calling ``den``."""
    fn = ScalarFunction(
        name=name,
        inputs=(),
        outputs=(),
        source="\n".join(lines) + "\n",
        namespace={"math": math},
        key=name,
        helpers=[den],
    )
    _codegen._finish(fn)
    return fn


def amp_entry(den: ScalarFunction) -> ScalarFunction:
    """The damped AMP update of entry ``(t, i)``, wrapping the sympy denoiser ``den``.

    ``entry(A, B, th, X, S, eta, t, i)`` overwrites ``X[t, i] = eta f(A, B; th)
    + (1 - eta) X[t, i]`` and the same for the posterior variance ``S``, with
    arrays ``A (T,)``, ``B, X, S (T, N)``, ``eta (T,)``. ``den`` takes
    ``(A, B, *prior_params)``.
    """
    k = den.n_in - 2
    args = ", ".join(["A[t]", "B[t, i]"] + [f"th[{j}]" for j in range(k)])
    lines = [
        f"def entry_{den.key}(A, B, th, X, S, eta, t, i):",
        f"    r = {den.name}({args})",
        "    e = eta[t]",
        "    X[t, i] = e * r[0] + (1.0 - e) * X[t, i]",
        "    S[t, i] = e * r[1] + (1.0 - e) * S[t, i]",
    ]
    return _entry(f"entry_{den.key}", lines, den)


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
    return _entry(f"ventry_{den.key}_r{r}", lines, den)


def update_kernel(entry: ScalarFunction, target: str):
    """Apply an in-place update ``entry(A, B, th, X, S, eta, t, i)`` to every ``(trial, i)``.

    ``entry`` comes from :func:`amp_entry` (scalar entries) or
    :func:`vector_amp_entry` (rank-``r`` rows); the kernel is
    ``kernel(A, B, th, X, S, eta)`` with ``B`` of shape ``(T, N, ...)``.
    CPU: a serial loop (the contraction is an AMP iteration's one parallel
    region); CUDA: a grid-stride loop, one thread per entry or row, launched
    as ``kernel[grid, block](...)``.
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
