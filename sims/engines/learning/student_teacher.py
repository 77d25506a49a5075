"""Batched student--teacher training by curl descent (Ninou, Kadmon & Cayco-Gajic 2025).

Many ``N -> K -> 1`` configurations of one shape (different flip fractions, seeds,
teachers) are trained at once on shared inputs, so every minibatch step is two
matrix--matrix products over the whole stack of configurations plus one small
per-configuration body:

1. ``A1 = S @ [x_b^T | (x_b D1)^T]`` -- one BLAS ``dgemm`` per group of configurations that
   share ``D1`` (the stored ``S`` is ``W1`` up to a per-configuration scale ``g``, so the
   Frobenius renormalisation never needs a pass over ``W1``);
2. the per-configuration body (:data:`BODY_SOURCE`; one scalar body compiled with
   ``numba.njit`` for the CPU, parallel over configurations, and ``numba.cuda.jit(device=True)``
   for the GPU): hidden activity, output, error, the hidden backward pass with ``phi'``, the
   readout update with ``D2``, the readout renormalisation and the new ``|W1|_F^2``
   (``|S + dS|^2 = |S|^2 + 2<S, dS> + |dS|^2`` from the products of step 1);
3. ``S += dS_b @ (x_b D1)`` -- one in-place ``dgemm`` per group.

On the CPU one numba call runs every step of an epoch for a piece of configurations
(sized to stay in a core's L2 cache), calling scipy's ``dgemm`` directly, so nothing returns
to the interpreter between steps. Linear networks (``phi = lin``, the Fig. 3a/4 sweeps)
take a cheaper exact re-association of the same update on both targets
(:data:`LIN_SOURCE`): the output is ``u . x`` with ``u = W1^T w2``, and both updates are rank
one in the minibatch, so a step costs ``~6 K N`` flops instead of ``4 K N B``.

Published discrete mode (digest §1.2, pitfalls 3-5): ``lr`` per epoch, minibatch step
``-(lr/P) sum_b``, ``Delta W2 = -eta_b <e h^T> D2``, ``Delta W1 = -eta_b <delta1 x^T> D1``,
``delta1 = (w2^T e) phi'(a1)``, **no** ``phi'(a2)``, both layers rescaled to their initial
Frobenius norms after every step. The clean mode (``mode='flow'``) integrates the
full-batch, unnormalised flow ``theta_dot = -lr P grad L~`` (``t = epochs``, one epoch ~
one Euler step 0.1 in ``t_paper``) with :func:`meanfield.solvers.flow.integrate`.

Chaos diagnostics: the published ``q`` (digest §2.7, streamed over the last ``tail``
epochs) and the maximal Lyapunov exponent of the simulated map, by Benettin's
two-trajectory method (shadow configurations trained in the same batch; separation
``1e-8``, renormalised every ``lyap_every`` epochs after a warm-up). For a linear network
the separation is projected on the normal space of the fibres of ``theta -> W1^T w2``
(which contain the ``KN + K - N`` manifold modes and the rescaling symmetry), so the neutral
directions do not count; for ``tanh``/``relu`` the full parameter separation is used.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

__all__ = [
    "Batch",
    "make_batch",
    "train",
    "train_flow",
    "reference_train",
    "simulate_curl_descent",
    "BODY_SOURCE",
    "LIN_SOURCE",
    "activation",
]

_ACT: dict = {}
#: Largest minibatch whose new ``|W1|_F`` is tracked through the products (cost ``K B^2``);
#: larger ones recompute it exactly after the update.
TRACK_MAX_BATCH = 16
#: Bytes of ``W1`` per piece of work (a piece stays in a core's L2 cache between the
#: forward product, the body and the update).
CHUNK_BYTES = 768 * 1024
#: Linear networks on the CPU take the rank-one epoch (:data:`LIN_SOURCE`); off: the general
#: two-product path (the benchmark reports both).
LINEAR_RANK_ONE = True
_KERNELS: dict = {}
#: In the bodies' namespace: compiled in memory, never through the generated-code disk cache
#: (the bodies are hand-written, and tests compile mutated variants of them).
_IN_MEMORY = object()
cuda = None  # numba.cuda, imported on first use (a module global for the CUDA simulator)


def _blas_controller():
    """One ``threadpoolctl`` controller per process (building one inspects every library)."""
    if "blas" not in _KERNELS:
        import scipy.linalg.blas  # noqa: F401  (load scipy's BLAS too, so the limit covers it)
        from threadpoolctl import ThreadpoolController

        _KERNELS["blas"] = ThreadpoolController()
    return _KERNELS["blas"]


def activation(phi: str):
    """``act(x) -> (phi(x), phi'(x))`` generated from the model's sympy ``phi`` (sympy ``diff``)."""
    if phi not in _ACT:
        import sympy as sp

        from meanfield import _codegen
        from meanfield.models.curl_descent import phi_expr

        x = sp.Symbol("x", real=True)
        e = phi_expr(phi).subs(sp.Symbol("x", real=True), x)
        fn = _codegen.scalar_function([e, sp.diff(e, x)], [x], name=f"act_{phi}")
        # compiled in memory like the bodies that call it (not the disk cache)
        _ACT[phi] = replace(fn, namespace={**fn.namespace, "_in_memory": _IN_MEMORY},
                            key=f"{fn.key}_st")
    return _ACT[phi]


#: The per-configuration step (one body for both targets). ``A1 (C, K, B2)`` holds
#: ``S x_b^T`` (and, when normalising, ``S D1 x_b^T`` in columns ``B..2B-1``); it is
#: overwritten with ``h`` in columns ``0..B-1``. ``DS (C, K, B)`` receives
#: ``-(lr/P) delta1 / g``. ``prm = (lr/P, normalise, output_linear, track)``: with
#: ``track`` the new ``|S|^2`` comes from the products (small minibatches), otherwise
#: :data:`NORM_SOURCE` recomputes it after the update (``K B^2 > K N``).
#: ``cfg_norm`` is the second body: exact ``|S_c|^2`` and the scale ``g_c``.
BODY_SOURCE = '''
def cfg_step(c, A1, DS, E, W2, D2, Y, idx, G, SQ, N1, N2, XX, prm):
    K = W2.shape[1]
    B = DS.shape[2]
    g = G[c]
    step = prm[0]
    for b in range(B):
        a2 = 0.0
        for k in range(K):
            r = ACT(g * A1[c, k, b])
            A1[c, k, b] = r[0]
            DS[c, k, b] = r[1]
            a2 += W2[c, k] * r[0]
        if prm[2] > 0.5:
            yh = a2
        else:
            yh = ACT(a2)[0]
        E[c, b] = yh - Y[c, idx[b]]
    for k in range(K):
        w = W2[c, k]
        acc = 0.0
        for b in range(B):
            e = E[c, b]
            DS[c, k, b] = -step * w * e * DS[c, k, b] / g
            acc += e * A1[c, k, b]
        W2[c, k] = w - step * D2[c, k] * acc
    if prm[1] > 0.5:
        n2 = 0.0
        for k in range(K):
            n2 += W2[c, k] * W2[c, k]
        f = N2[c] / math.sqrt(n2)
        for k in range(K):
            W2[c, k] *= f
    if prm[1] > 0.5 and prm[3] > 0.5:
        cross = 0.0
        for k in range(K):
            for b in range(B):
                cross += DS[c, k, b] * A1[c, k, B + b]
        quad = 0.0
        for k in range(K):
            for b in range(B):
                t = 0.0
                for bb in range(B):
                    t += XX[b, bb] * DS[c, k, bb]
                quad += t * DS[c, k, b]
        sq = SQ[c] + 2.0 * cross + quad
        SQ[c] = sq
        G[c] = N1[c] / math.sqrt(sq)


def cfg_norm(c, S, G, SQ, N1):
    K = S.shape[1]
    N = S.shape[2]
    acc = 0.0
    for k in range(K):
        for n in range(N):
            acc += S[c, k, n] * S[c, k, n]
    SQ[c] = acc
    G[c] = N1[c] / math.sqrt(acc)
'''


#: The linear network's epoch for one configuration (one body for both targets). For
#: ``phi = lin`` the output is ``u . x`` with ``u = W1^T w2`` (kept in ``U``), and both updates
#: are rank one in the minibatch: with ``r = sum_b e_b x_b``, ``DeltaW2 = -(lr/P) D2 W1 r`` and
#: ``DeltaW1 = w2 v^T``, ``v = -(lr/P) D1 r``. A step therefore costs ``~6 K N`` flops (two
#: passes over ``W1``) instead of ``4 K N B`` for the two rank-``B`` products -- the same
#: update, re-associated. ``|S + DeltaW1/g|^2`` and the new ``u`` follow from ``u``, ``v`` and
#: the second pass; the epoch's end folds ``g`` into ``S`` and recomputes both exactly.
#: Scratch rows ``T (C, K)``, ``V``, ``UA (C, N)``. ``prm = (lr/P, normalise, ...)``.
LIN_SOURCE = '''
def cfg_epoch_lin(c, S, W2, D1, D2, Y, G, SQ, N1, N2, U, XB, IDX, T, V, UA, prm):
    M = XB.shape[0]
    B = XB.shape[1]
    N = XB.shape[2]
    K = S.shape[1]
    step = prm[0]
    for m in range(M):
        g = G[c]
        for n in range(N):
            V[c, n] = 0.0
        for b in range(B):
            acc = 0.0
            for n in range(N):
                acc += U[c, n] * XB[m, b, n]
            e = acc - Y[c, IDX[m, b]]
            for n in range(N):
                V[c, n] += e * XB[m, b, n]
        for k in range(K):
            acc = 0.0
            for n in range(N):
                acc += S[c, k, n] * V[c, n]
            T[c, k] = acc
        vv = 0.0
        vu = 0.0
        for n in range(N):
            vn = -step * V[c, n] * D1[c, n]
            V[c, n] = vn
            vv += vn * vn
            vu += vn * U[c, n]
        w2sq = 0.0
        n2 = 0.0
        for k in range(K):
            w = W2[c, k]
            w2sq += w * w
            wn = w - step * D2[c, k] * g * T[c, k]
            T[c, k] = w / g
            W2[c, k] = wn
            n2 += wn * wn
        gn = g
        if prm[1] > 0.5:
            f = N2[c] / math.sqrt(n2)
            for k in range(K):
                W2[c, k] *= f
            sq = SQ[c] + (2.0 * vu + w2sq * vv) / (g * g)
            SQ[c] = sq
            gn = N1[c] / math.sqrt(sq)
            G[c] = gn
        for n in range(N):
            UA[c, n] = 0.0
        for k in range(K):
            a = T[c, k]
            wk = W2[c, k]
            for n in range(N):
                sv = S[c, k, n] + a * V[c, n]
                S[c, k, n] = sv
                UA[c, n] += wk * sv
        for n in range(N):
            U[c, n] = gn * UA[c, n]
    # end of the epoch, while W1 is in cache: fold the scale (S <- g S), exact |S|^2 and u
    g = G[c]
    sq = 0.0
    for n in range(N):
        UA[c, n] = 0.0
    for k in range(K):
        wk = W2[c, k]
        for n in range(N):
            sv = g * S[c, k, n]
            S[c, k, n] = sv
            sq += sv * sv
            UA[c, n] += wk * sv
    G[c] = 1.0
    SQ[c] = sq
    for n in range(N):
        U[c, n] = UA[c, n]
'''


def _lin_body():
    from meanfield import _codegen
    from meanfield._codegen import ScalarFunction

    fn = ScalarFunction(name="cfg_epoch_lin", inputs=(), outputs=(), source=LIN_SOURCE,
                        namespace={"math": math, "_in_memory": _IN_MEMORY},
                        key=f"cfg_epoch_lin_{zlib.crc32(LIN_SOURCE.encode()):08x}")
    _codegen._finish(fn)
    return fn


def _cpu_lin_epoch():
    """CPU kernel: the linear epoch (:data:`LIN_SOURCE`) for configurations ``[c0, c1)``,
    configuration-major (one network's ``W1`` stays in cache for all its steps)."""
    key = ("cpu_lin", zlib.crc32(LIN_SOURCE.encode()))
    if key not in _KERNELS:
        import numba

        # the shared source, compiled with reassociation allowed so that the inner
        # reductions over N vectorise (sums in another order: round-off only)
        body = numba.njit(nogil=True, cache=False, error_model="numpy",
                          fastmath={"reassoc", "contract"})(_lin_body().pyfunc)

        @numba.njit(nogil=True, cache=False)
        def run(S, W2, D1, D2, Y, G, SQ, N1, N2, U, XB, IDX, T, V, UA, prm, c0, c1):
            for c in range(c0, c1):
                body(c, S, W2, D1, D2, Y, G, SQ, N1, N2, U, XB, IDX, T, V, UA, prm)

        _KERNELS[key] = run
    return _KERNELS[key]


def _body(phi: str):
    from meanfield import _codegen
    from meanfield._codegen import ScalarFunction

    act = activation(phi)
    src = BODY_SOURCE[: BODY_SOURCE.index("def cfg_norm")].replace("ACT(", f"{act.name}(")
    key = f"cfg_step_{act.key}_{zlib.crc32(src.encode()):08x}"
    fn = ScalarFunction(name="cfg_step", inputs=(), outputs=(), source=src,
                        namespace={"math": math, "_in_memory": _IN_MEMORY}, key=key,
                        helpers=[act])
    _codegen._finish(fn)
    return fn


def _norm_body():
    from meanfield import _codegen
    from meanfield._codegen import ScalarFunction

    src = BODY_SOURCE[BODY_SOURCE.index("def cfg_norm"):]
    fn = ScalarFunction(name="cfg_norm", inputs=(), outputs=(), source=src,
                        namespace={"math": math, "_in_memory": _IN_MEMORY},
                        key=f"cfg_norm_{zlib.crc32(src.encode()):08x}")
    _codegen._finish(fn)
    return fn


def _blas_dgemm():
    """``dgemm`` from scipy's Cython BLAS as a ctypes function numba can call (no GIL, no
    Python overhead per product); all 13 arguments are pointers (Fortran convention)."""
    if "dgemm" not in _KERNELS:
        import ctypes

        from numba.extending import get_cython_function_address

        addr = get_cython_function_address("scipy.linalg.cython_blas", "dgemm")
        _KERNELS["dgemm"] = ctypes.CFUNCTYPE(None, *([ctypes.c_void_p] * 13))(addr)
    return _KERNELS["dgemm"]


def _cpu_steps(phi: str):
    """CPU kernels over a range of configurations ``[c0, c1)``, releasing the GIL (threads
    run disjoint pieces of configurations, each with single-threaded BLAS).

    ``run_epoch`` runs every minibatch step of one epoch on one piece (configurations
    ``c0..c1-1`` sharing ``D1 = dg``): per step the two products as row-major ``dgemm`` calls
    on the stacked ``(C K, N)`` weights (``A1 = S [x_b | x_b D1]^T``; ``S += DS (x_b D1)``),
    the shared body for each configuration, and the exact norm when it is not tracked. One
    Python call per piece and epoch: the products of a piece stay in cache and nothing
    returns to the interpreter between steps.
    """
    key = ("cpu", phi, zlib.crc32(BODY_SOURCE.encode()))
    if key not in _KERNELS:
        import numba

        from meanfield import _codegen

        body = _codegen.njit(_body(phi))
        nbody = _codegen.njit(_norm_body())
        dgemm = _blas_dgemm()
        ch = np.array([ord("N"), ord("T")], dtype=np.uint8)

        @numba.njit(nogil=True, cache=False)
        def run(A1, DS, E, W2, D2, Y, idx, G, SQ, N1, N2, XX, prm, c0, c1):
            for c in range(c0, c1):
                body(c, A1, DS, E, W2, D2, Y, idx, G, SQ, N1, N2, XX, prm)

        @numba.njit(nogil=True, cache=False)
        def norm(S, G, SQ, N1, c0, c1):
            for c in range(c0, c1):
                nbody(c, S, G, SQ, N1)

        @numba.njit(nogil=True, cache=False)
        def run_epoch(S, A1, DS, E, W2, D2, Y, G, SQ, N1, N2, XB, XX, IDX, dg, prm, c0, c1):
            m_steps, b, n = XB.shape
            k = S.shape[1]
            b2 = A1.shape[2]
            track = prm[3] > 0.5
            exact = prm[1] > 0.5 and not track
            z = np.empty((2 * b, n))  # rows 0..B-1: x_b; rows B..2B-1: x_b D1
            zd = z[b:]
            ints = np.empty(6, np.int32)
            ints[1] = (c1 - c0) * k  # rows of the stacked piece
            ints[3] = n
            flts = np.array([1.0, 0.0])
            s0, a0, d0 = S[c0:].ctypes, A1[c0:].ctypes, DS[c0:].ctypes
            for m in range(m_steps):
                for i in range(b):
                    for j in range(n):
                        v = XB[m, i, j]
                        z[i, j] = v
                        z[b + i, j] = v * dg[j]
                # A1^T (b2 x R, Fortran) = z^T(T) @ S^T : A1 = S z[:b2]^T
                ints[0], ints[2], ints[4] = b2, n, b2
                dgemm(ch[1:].ctypes, ch[0:].ctypes, ints[0:].ctypes, ints[1:].ctypes,
                      ints[2:].ctypes, flts[0:].ctypes, z.ctypes, ints[3:].ctypes, s0,
                      ints[3:].ctypes, flts[1:].ctypes, a0, ints[4:].ctypes)
                idx = IDX[m]
                xx = XX[m]
                for c in range(c0, c1):
                    body(c, A1, DS, E, W2, D2, Y, idx, G, SQ, N1, N2, xx, prm)
                # S^T (n x R, Fortran) += zd^T (n x b) @ DS^T (b x R): S += DS zd
                ints[0], ints[2], ints[4] = n, b, b
                dgemm(ch[0:].ctypes, ch[0:].ctypes, ints[0:].ctypes, ints[1:].ctypes,
                      ints[2:].ctypes, flts[0:].ctypes, zd.ctypes, ints[3:].ctypes, d0,
                      ints[4:].ctypes, flts[0:].ctypes, s0, ints[3:].ctypes)
                if exact:
                    for c in range(c0, c1):
                        nbody(c, S, G, SQ, N1)

        _KERNELS[key] = (run, norm, run_epoch)
    return _KERNELS[key]


def cuda_kernels(phi: str):
    """CUDA kernels: the same body (one thread per configuration) and the two products.

    ``fwd(S, D1, XB, A1)``: ``A1[c,k,b] = sum_n S[c,k,n] XB[b,n]`` (and ``D1``-weighted in
    columns ``B..``); ``upd(S, D1, XB, DS)``: ``S[c,k,n] += sum_b DS[c,k,b] D1[c,n] XB[b,n]``;
    ``body(...)``: the per-configuration step. All grid-stride loops.
    """
    key = ("cuda", phi, zlib.crc32(BODY_SOURCE.encode()))
    if key in _KERNELS:
        return _KERNELS[key]
    global cuda
    from numba import cuda

    from meanfield import _codegen

    body = _codegen.cuda_device(_body(phi))
    nbody = _codegen.cuda_device(_norm_body())

    @cuda.jit
    def norm(S, G, SQ, N1):
        start = cuda.grid(1)
        stride = cuda.gridsize(1)
        for c in range(start, S.shape[0], stride):
            nbody(c, S, G, SQ, N1)

    @cuda.jit
    def fwd(S, D1, XB, A1):
        C, K, N = S.shape
        B = XB.shape[0]
        B2 = A1.shape[2]
        start = cuda.grid(1)
        stride = cuda.gridsize(1)
        for i in range(start, C * K * B2, stride):
            c = i // (K * B2)
            r = i - c * K * B2
            k = r // B2
            j = r - k * B2
            acc = 0.0
            if j < B:
                for n in range(N):
                    acc += S[c, k, n] * XB[j, n]
            else:
                for n in range(N):
                    acc += S[c, k, n] * D1[c, n] * XB[j - B, n]
            A1[c, k, j] = acc

    @cuda.jit
    def upd(S, D1, XB, DS):
        C, K, N = S.shape
        B = XB.shape[0]
        start = cuda.grid(1)
        stride = cuda.gridsize(1)
        for i in range(start, C * K * N, stride):
            c = i // (K * N)
            r = i - c * K * N
            k = r // N
            n = r - k * N
            acc = 0.0
            for b in range(B):
                acc += DS[c, k, b] * XB[b, n]
            S[c, k, n] += acc * D1[c, n]

    @cuda.jit
    def steps(A1, DS, E, W2, D2, Y, idx, G, SQ, N1, N2, XX, prm):
        start = cuda.grid(1)
        stride = cuda.gridsize(1)
        for c in range(start, W2.shape[0], stride):
            body(c, A1, DS, E, W2, D2, Y, idx, G, SQ, N1, N2, XX, prm)

    _KERNELS[key] = (fwd, upd, steps, norm)
    return _KERNELS[key]


def cuda_lin_kernel():
    """CUDA kernel ``lin(S, W2, D1, D2, Y, G, SQ, N1, N2, U, XB, IDX, T, V, UA, prm)``: the
    linear epoch (:data:`LIN_SOURCE`, the CPU's body compiled as a device function), one
    thread per configuration, grid-stride."""
    key = ("cuda_lin", zlib.crc32(LIN_SOURCE.encode()))
    if key in _KERNELS:
        return _KERNELS[key]
    global cuda
    from numba import cuda

    from meanfield import _codegen

    body = _codegen.cuda_device(_lin_body())

    @cuda.jit
    def lin(S, W2, D1, D2, Y, G, SQ, N1, N2, U, XB, IDX, T, V, UA, prm):
        start = cuda.grid(1)
        stride = cuda.gridsize(1)
        for c in range(start, W2.shape[0], stride):
            body(c, S, W2, D1, D2, Y, G, SQ, N1, N2, U, XB, IDX, T, V, UA, prm)

    _KERNELS[key] = lin
    return lin


# -- configurations -----------------------------------------------------------------


@dataclass
class Batch:
    """``C`` configurations of one shape ``N -> K -> 1`` on shared inputs.

    Attributes
    ----------
    w1, w2 : arrays (C, K, N), (C, K)
        Student weights (true values).
    t1, t2 : arrays (C, K, N), (C, K)
        Teachers.
    d1, d2 : arrays (C, N), (C, K)
        Diagonals of the sign matrices.
    x, x_test : arrays (P, N), (P_test, N)
        Training and test inputs, shared by all configurations.
    """

    w1: np.ndarray
    w2: np.ndarray
    t1: np.ndarray
    t2: np.ndarray
    d1: np.ndarray
    d2: np.ndarray
    x: np.ndarray
    x_test: np.ndarray
    meta: dict = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int, int]:
        c, k, n = self.w1.shape
        return c, k, n


def _law(rng, shape, fan_in, law):
    if law == "uniform":
        return rng.uniform(-1, 1, size=shape) / math.sqrt(fan_in)
    return rng.standard_normal(shape) / math.sqrt(fan_in)


def make_batch(
    n: int, k: int, alpha_h, alpha_r, seeds, *, s: float = 1.0, samples: int = 250,
    test: int = 100, init: str = "random", teacher: str = "uniform",
    teacher_scale: float = 1.0, data_seed: int = 0,
) -> Batch:
    """Configurations with flip fractions ``alpha_h[i]``, ``alpha_r[i]`` and seeds ``seeds[i]``.

    Inputs ``x ~ N(0, I/2)`` from ``data_seed`` (shared, as in the published code); per
    configuration a teacher (``uniform`` U(+-1/sqrt(fan-in)) or ``normal``, times
    ``teacher_scale``) and a student (the same law times ``s``), both from
    ``SeedSequence(seed)``. ``init='teacher'`` starts at the teacher renormalised to
    ``|W1|_F^2 = K``, ``|w2| = 1`` with ``w2 + 1e-10`` (Fig. 3b, digest §1.3).
    """
    from meanfield.models.curl_descent import sign_vectors

    alpha_h, alpha_r, seeds = np.broadcast_arrays(
        np.asarray(alpha_h, float), np.asarray(alpha_r, float), np.asarray(seeds, np.int64))
    cn = alpha_h.size
    drng = np.random.default_rng(np.random.SeedSequence([int(data_seed), 0xDA7A]))
    x = drng.standard_normal((samples, n)) / math.sqrt(2.0)
    xt = drng.standard_normal((test, n)) / math.sqrt(2.0)
    w1 = np.empty((cn, k, n))
    w2 = np.empty((cn, k))
    t1 = np.empty((cn, k, n))
    t2 = np.empty((cn, k))
    d1 = np.empty((cn, n))
    d2 = np.empty((cn, k))
    for i in range(cn):
        rng = np.random.default_rng(np.random.SeedSequence(int(seeds.flat[i])))
        t1[i] = teacher_scale * _law(rng, (k, n), n, teacher)
        t2[i] = teacher_scale * _law(rng, (k,), k, teacher)
        if init == "teacher":
            t1[i] *= math.sqrt(k) / np.linalg.norm(t1[i])
            t2[i] /= np.linalg.norm(t2[i])
            w1[i] = t1[i]
            w2[i] = t2[i] + 1e-10
        else:
            w1[i] = s * _law(rng, (k, n), n, teacher)
            w2[i] = s * _law(rng, (k,), k, teacher)
        d1[i], d2[i] = sign_vectors(n, k, float(alpha_h.flat[i]), float(alpha_r.flat[i]))
    return Batch(w1, w2, t1, t2, d1, d2, x, xt, {"seeds": seeds.ravel().tolist()})


def _forward(w1, w2, x, act_np, out_linear: bool):
    """Outputs ``(C, P)`` of stacked networks on inputs ``x (P, N)``."""
    h = act_np(np.einsum("ckn,pn->ckp", w1, x, optimize=True))
    a2 = np.einsum("ck,ckp->cp", w2, h)
    return a2 if out_linear else act_np(a2)


def _np_act(phi: str):
    return {"lin": lambda a: a, "tanh": np.tanh, "relu": lambda a: np.maximum(a, 0.0)}[phi]


def _np_dact(phi: str):
    return {
        "lin": lambda a: np.ones_like(a),
        "tanh": lambda a: 1.0 - np.tanh(a) ** 2,
        "relu": lambda a: (a > 0).astype(float),
    }[phi]


def _loss(w1, w2, t_out, x, phi):
    yh = _forward(w1, w2, x, _np_act(phi), phi == "lin")
    return 0.5 * np.mean((yh - t_out) ** 2, axis=1)


def _record_epochs(epochs: int, record: int) -> np.ndarray:
    ks = np.unique(np.round(np.geomspace(1, epochs, max(2, record))).astype(int))
    return np.concatenate([[0], ks])


# -- discrete (published) mode -------------------------------------------------------


def train(
    batch: Batch, *, phi: str = "lin", epochs: int = 1000, lr: float = 0.1,
    batch_size: int = 10, normalize: bool = True, record: int = 50, tail: int | None = None,
    lyapunov: bool = False, lyap_epochs: int = 200, lyap_every: int = 5,
    delta0: float = 1e-8, shuffle_seed: int = 0, backend: str = "cpu", threshold: float = -3.0,
    threads: int | None = None,
) -> dict[str, Any]:
    """Train every configuration of ``batch`` by the published discrete curl descent.

    Parameters
    ----------
    batch : Batch
    phi : {'lin', 'tanh', 'relu'}
    epochs, lr, batch_size : training schedule (minibatch step ``-(lr/P) sum_b``)
    normalize : bool
        Frobenius renormalisation of both layers after every step (published).
    record : int
        Log-spaced epochs at which test and training errors are recorded.
    tail : int, optional
        Epochs at the end over which ``q`` is streamed (default ``min(1000, epochs // 2)``).
    lyapunov : bool
        Measure the maximal Lyapunov exponent over the last ``lyap_epochs`` epochs.
    shuffle_seed : int
        Minibatch order (one permutation per epoch, shared by the configurations).
    backend : {'cpu', 'cuda'}
    threads : int, optional
        CPU threads, each running whole groups of configurations with single-threaded BLAS
        (default: numba's thread count).

    Returns
    -------
    dict
        Per configuration: ``final_error`` (test), ``final_train_error``, ``q``,
        ``lyapunov`` (per epoch; NaN if not measured), ``epochs_to_threshold``,
        ``max_train_error``; and ``record_epochs``, ``test_error (C, R)``,
        ``train_error (C, R)``, ``w1``, ``w2`` (final).
    """
    c0, k, n = batch.shape
    p = batch.x.shape[0]
    if batch_size > p:
        raise ValueError("batch_size larger than the training set")
    out_linear = phi == "lin"
    act = _np_act(phi)
    y_tr = _forward(batch.t1, batch.t2, batch.x, act, out_linear)
    y_te = _forward(batch.t1, batch.t2, batch.x_test, act, out_linear)
    tail = min(1000, max(1, epochs // 2)) if tail is None else max(1, min(int(tail), epochs))
    lyap_epochs = min(int(lyap_epochs), epochs)
    lyap_start = epochs - lyap_epochs if lyapunov else epochs + 1

    # working set: configurations (and, from lyap_start, their shadows) sorted by D1 group
    w1 = batch.w1.astype(float).copy()
    w2 = batch.w2.astype(float).copy()
    d1, d2 = batch.d1.astype(float), batch.d2.astype(float)
    n1 = np.sqrt(np.einsum("ckn,ckn->c", w1, w1))
    n2 = np.linalg.norm(w2, axis=1)
    rec = _record_epochs(epochs, record)
    if threads is None:
        import numba

        threads = numba.get_num_threads()
    with _blas_controller().limit(limits=1, user_api="blas"):
        state = _State.create(w1, w2, d1, d2, y_tr, n1, n2, batch_size, normalize, backend,
                              phi, threads)
        try:
            res = _loop(state, batch, c0, k, n, p, phi, epochs, lr, batch_size, rec, tail,
                        lyap_start, lyap_epochs, lyap_every, delta0, shuffle_seed, y_tr, y_te)
        finally:
            if state.pool is not None:
                state.pool.shutdown()
    test_err, train_err, mean_acc, m2_acc, count, lyap_sum, lyap_t, w1f, w2f = res
    with np.errstate(all="ignore"):
        var_t = m2_acc / max(count, 1)
        q = np.mean(var_t, axis=1) / np.var(mean_acc, axis=1)
    thr = 10.0**threshold
    below = test_err < thr
    hit = np.where(below.any(axis=1), rec[np.argmax(below, axis=1)], epochs).astype(float)
    return {
        "final_error": test_err[:, -1],
        "final_train_error": train_err[:, -1],
        "q": q,
        "lyapunov": lyap_sum / lyap_t if lyap_t else np.full(c0, np.nan),
        "epochs_to_threshold": hit,
        "max_train_error": np.nanmax(train_err, axis=1),
        "record_epochs": rec,
        "test_error": test_err,
        "train_error": train_err,
        "w1": w1f,
        "w2": w2f,
    }


def _loop(state, batch, c0, k, n, p, phi, epochs, lr, batch_size, rec, tail, lyap_start,
          lyap_epochs, lyap_every, delta0, shuffle_seed, y_tr, y_te):
    test_err = np.full((c0, rec.size), np.nan)
    train_err = np.full((c0, rec.size), np.nan)
    mean_acc = np.zeros((c0, k * n + k))
    m2_acc = np.zeros((c0, k * n + k))
    count = 0
    lyap_sum = np.zeros(c0)
    lyap_t = 0
    rng = np.random.default_rng(np.random.SeedSequence([int(shuffle_seed), 0x5EED]))
    lrng = np.random.default_rng(np.random.SeedSequence([int(shuffle_seed), 0x1E]))

    warm = max(1, lyap_epochs // 5)

    def record_at(ri):
        w1t, w2t = state.weights(c0)
        with np.errstate(all="ignore"):
            test_err[:, ri] = _loss(w1t, w2t, y_te, batch.x_test, phi)
            train_err[:, ri] = _loss(w1t, w2t, y_tr, batch.x, phi)

    ri = 0
    if rec[0] == 0:
        record_at(0)
        ri = 1
    for ep in range(1, epochs + 1):
        if ep - 1 == lyap_start:
            state.add_shadows(_perturb(state, c0, phi, delta0, lrng))
        order = rng.permutation(p) if batch_size < p else np.arange(p)
        state.epoch(batch.x, [order[s0 : s0 + batch_size]
                              for s0 in range(0, p - batch_size + 1, batch_size)], lr / p)
        state.fold()
        if state.shadows and (ep - lyap_start) % lyap_every == 0:
            growth = _renormalise_shadows(state, c0, phi, delta0)
            if ep - lyap_start > warm:
                lyap_sum += np.log(growth / delta0)
                lyap_t += lyap_every
        if ep > epochs - tail:
            w1t, w2t = state.weights(c0)
            theta = np.concatenate([w1t.reshape(c0, -1), w2t], axis=1)
            count += 1
            dlt = theta - mean_acc
            mean_acc += dlt / count
            m2_acc += dlt * (theta - mean_acc)
        while ri < rec.size and rec[ri] == ep:
            record_at(ri)
            ri += 1
        if not state.finite():
            break
    w1f, w2f = state.weights(c0)
    return test_err, train_err, mean_acc, m2_acc, count, lyap_sum, lyap_t, w1f, w2f


class _State:
    """Stored ``S`` (``W1 = g S``), ``w2`` and buffers of a batch sorted by ``D1`` group."""

    @classmethod
    def create(cls, w1, w2, d1, d2, y, n1, n2, bsz, normalize, backend, phi, threads=1):
        st = cls()
        st.threads, st.pool = int(threads), None
        st.backend, st.phi, st.bsz, st.normalize = backend, phi, bsz, normalize
        st.base = dict(w1=w1, w2=w2, d1=d1, d2=d2, y=y, n1=n1, n2=n2)
        st.shadows = False
        st._build(w1, w2, d1, d2, y, n1, n2)
        return st

    def _build(self, w1, w2, d1, d2, y, n1, n2):
        keys, inv = np.unique(d1, axis=0, return_inverse=True)
        inv = np.asarray(inv).ravel()
        order = np.argsort(inv, kind="stable")
        self.order = order
        self.rank = np.empty_like(order)
        self.rank[order] = np.arange(order.size)
        self.groups = []
        sorted_inv = inv[order]
        for g in range(keys.shape[0]):
            idx = np.flatnonzero(sorted_inv == g)
            self.groups.append((int(idx[0]), int(idx[-1]) + 1, keys[g].copy()))
        c, k, n = w1.shape
        self.track = self.normalize and self.bsz <= TRACK_MAX_BATCH
        b2 = 2 * self.bsz if self.track else self.bsz
        self.S = np.ascontiguousarray(w1[order])
        self.W2 = np.ascontiguousarray(w2[order])
        self.D1 = np.ascontiguousarray(d1[order])
        self.D2 = np.ascontiguousarray(d2[order])
        self.Y = np.ascontiguousarray(y[order])
        self.N1 = np.ascontiguousarray(n1[order])
        self.N2 = np.ascontiguousarray(n2[order])
        self.G = np.ones(c)
        self.SQ = np.einsum("ckn,ckn->c", self.S, self.S)
        self.A1 = np.empty((c, k, b2))
        self.DS = np.empty((c, k, self.bsz))
        self.E = np.empty((c, self.bsz))
        self.prm = np.array([0.0, float(self.normalize), float(self.phi == "lin"),
                             float(self.track)])
        self.linear = self.phi == "lin" and LINEAR_RANK_ONE
        if self.linear:
            self.U = np.einsum("ckn,ck->cn", self.S, self.W2)
            self.T = np.empty((c, k))
            self.V = np.empty((c, n))
            self.UA = np.empty((c, n))
        self._chunk()
        if self.backend == "cuda":
            self._to_device()

    def _chunk(self):
        """Split the groups (whole groups, and large groups into pieces) over the threads."""
        c, k, n = self.S.shape
        target = max(1, int(CHUNK_BYTES // (8 * k * n)))  # configurations per piece
        pieces = []
        for g0, g1, dg in self.groups:
            for a in range(g0, g1, target):
                pieces.append((a, min(g1, a + target), dg))
        t = max(1, min(self.threads, len(pieces)))
        self.chunks = [pieces[i::t] for i in range(t)]
        if t > 1 and self.pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self.pool = ThreadPoolExecutor(t)

    def _to_device(self):
        from numba import cuda as _cuda

        extra = ("U", "T", "V", "UA") if self.linear else ()
        self.dev = {k: _cuda.to_device(getattr(self, k)) for k in
                    ("S", "W2", "D1", "D2", "Y", "N1", "N2", "G", "SQ", "A1", "DS", "E")
                    + extra}

    def _synced(self):
        return ("S", "W2", "G", "SQ") + (("U",) if self.linear else ())

    def _sync_host(self):
        if self.backend == "cuda":
            for k in self._synced():
                setattr(self, k, self.dev[k].copy_to_host())

    def _sync_dev(self):
        if self.backend == "cuda":
            from numba import cuda as _cuda

            for k in self._synced():
                self.dev[k] = _cuda.to_device(getattr(self, k))

    def epoch(self, x, batches, step):
        """All minibatch steps of one epoch. CPU: piece-major -- each piece of configurations
        (sized to stay in a core's L2 cache) runs every step of the epoch before the next
        piece (configurations are independent), so its weights are read from cache, not
        memory, by the rank-B products."""
        if self.backend == "cuda" and self.linear:
            from meanfield.sims._targets import CONFIG
            from numba import cuda as _cuda

            self.prm[0] = step
            idx = np.ascontiguousarray(np.stack(batches), dtype=np.int64)
            xb = _cuda.to_device(np.ascontiguousarray(x[idx]))
            d = self.dev
            gr, tp = CONFIG.grid(self.S.shape[0])
            cuda_lin_kernel()[gr, tp](d["S"], d["W2"], d["D1"], d["D2"], d["Y"], d["G"],
                                      d["SQ"], d["N1"], d["N2"], d["U"], xb,
                                      _cuda.to_device(idx), d["T"], d["V"], d["UA"],
                                      _cuda.to_device(self.prm))
            return
        if self.backend == "cuda":
            for idx in batches:
                self.step(x, idx, step)
            return
        self.prm[0] = step
        idx = np.ascontiguousarray(np.stack(batches), dtype=np.int64)  # (M, B)
        xb = np.ascontiguousarray(x[idx])  # (M, B, N)
        self._mbs = (xb, np.matmul(xb, xb.transpose(0, 2, 1)), idx)
        if self.pool is None or len(self.chunks) == 1:
            for ch in self.chunks:
                self._run_epoch(ch)
        else:
            list(self.pool.map(self._run_epoch, self.chunks))

    def _run_epoch(self, groups):
        xb, xx, idx = self._mbs
        if self.linear:
            run = _cpu_lin_epoch()
            for g0, g1, _ in groups:
                run(self.S, self.W2, self.D1, self.D2, self.Y, self.G, self.SQ, self.N1,
                    self.N2, self.U, xb, idx, self.T, self.V, self.UA, self.prm, g0, g1)
            return
        run_epoch = _cpu_steps(self.phi)[2]
        for g0, g1, dg in groups:
            run_epoch(self.S, self.A1, self.DS, self.E, self.W2, self.D2, self.Y, self.G,
                      self.SQ, self.N1, self.N2, xb, xx, idx, dg, self.prm, g0, g1)

    def step(self, x, idx, step):
        xb = np.ascontiguousarray(x[idx])
        xx = xb @ xb.T
        self.prm[0] = step
        idx = np.ascontiguousarray(idx, dtype=np.int64)
        if self.backend == "cuda":
            return self._step_cuda(xb, xx, idx)

        self._xb, self._xx, self._idx = xb, xx, idx
        if self.pool is None or len(self.chunks) == 1:
            for ch in self.chunks:
                self._run_groups(ch)
        else:
            list(self.pool.map(self._run_groups, self.chunks))

    def _run_groups(self, groups):
        for piece in groups:
            self._run_piece(piece, self._xb, self._xx, self._idx)

    def _run_piece(self, piece, xb, xx, idx):
        from scipy.linalg.blas import dgemm

        b = self.bsz
        n = self.S.shape[2]
        run, norm = _cpu_steps(self.phi)[:2]
        for g0, g1, dg in (piece,):
            s = self.S[g0:g1].reshape(-1, n)
            a = self.A1[g0:g1].reshape(-1, self.A1.shape[2])
            if self.track:
                z = np.concatenate([xb, xb * dg], axis=0)
                np.matmul(s, z.T, out=a)
            else:
                np.matmul(s, xb.T, out=a)
            run(self.A1, self.DS, self.E, self.W2, self.D2, self.Y, idx, self.G, self.SQ,
                self.N1, self.N2, xx, self.prm, g0, g1)
            z = xb * dg  # (B, N)
            ds = self.DS[g0:g1].reshape(-1, b)
            # S^T (F-order view) += z^T ds^T, in place
            dgemm(1.0, z.T, ds.T, beta=1.0, c=s.T, overwrite_c=True)
            if self.normalize and not self.track:  # exact |S|^2 while the group is in cache
                norm(self.S, self.G, self.SQ, self.N1, g0, g1)

    def _step_cuda(self, xb, xx, idx):
        from meanfield.sims._targets import CONFIG
        from numba import cuda as _cuda

        fwd, upd, steps, norm = cuda_kernels(self.phi)
        d = self.dev
        xb_d, xx_d, idx_d = _cuda.to_device(xb), _cuda.to_device(xx), _cuda.to_device(idx)
        prm_d = _cuda.to_device(self.prm)
        c, k, n = self.S.shape
        gr, tp = CONFIG.grid(c * k * self.A1.shape[2])
        fwd[gr, tp](d["S"], d["D1"], xb_d, d["A1"])
        gr, tp = CONFIG.grid(c)
        steps[gr, tp](d["A1"], d["DS"], d["E"], d["W2"], d["D2"], d["Y"], idx_d, d["G"],
                      d["SQ"], d["N1"], d["N2"], xx_d, prm_d)
        gr, tp = CONFIG.grid(c * k * n)
        upd[gr, tp](d["S"], d["D1"], xb_d, d["DS"])
        if self.normalize and not self.track:
            gr, tp = CONFIG.grid(c)
            norm[gr, tp](d["S"], d["G"], d["SQ"], d["N1"])

    def fold(self):
        """Once per epoch: ``S <- g S`` and the exact ``|S|^2`` (no drift of the tracked norm);
        the linear epoch does this itself at its end (with the exact ``u``)."""
        if self.linear:
            return
        self._sync_host()
        self.S *= self.G[:, None, None]
        self.G[:] = 1.0
        self.SQ = np.einsum("ckn,ckn->c", self.S, self.S)
        if self.linear:
            self.U = np.einsum("ckn,ck->cn", self.S, self.W2)
        self._sync_dev()

    def finite(self) -> bool:
        return bool(np.isfinite(self.SQ).all() and np.isfinite(self.W2).all())

    def weights(self, c0: int):
        """True ``(W1, w2)`` of the first ``c0`` (original) configurations, input order."""
        self._sync_host()
        w1 = self.S * self.G[:, None, None]
        r = self.rank[:c0]
        return w1[r], self.W2[r].copy()

    def set_weights(self, w1, w2):
        """Overwrite all configurations (input order) with true weights."""
        self.S = np.ascontiguousarray(w1[self.order])
        self.W2 = np.ascontiguousarray(w2[self.order])
        self.G = np.ones(self.S.shape[0])
        self.SQ = np.einsum("ckn,ckn->c", self.S, self.S)
        if self.linear:
            self.U = np.einsum("ckn,ck->cn", self.S, self.W2)
        if self.backend == "cuda":
            self._to_device()

    def all_weights(self):
        self._sync_host()
        w1 = self.S * self.G[:, None, None]
        return w1[self.rank], self.W2[self.rank].copy()

    def add_shadows(self, pert):
        """Append shadow copies ``theta + pert`` (same signs, teacher, norms)."""
        w1, w2 = self.weights(len(self.rank))
        dw1, dw2 = pert
        b = self.base
        self._build(np.concatenate([w1, w1 + dw1]), np.concatenate([w2, w2 + dw2]),
                    np.concatenate([b["d1"], b["d1"]]), np.concatenate([b["d2"], b["d2"]]),
                    np.concatenate([b["y"], b["y"]]), np.concatenate([b["n1"], b["n1"]]),
                    np.concatenate([b["n2"], b["n2"]]))
        self.shadows = True


def _normal_part(w1, w2, dw1, dw2, phi):
    """Projection of ``(dW1, dw2)`` on the normal space of the fibres of ``W1^T w2`` (linear);
    the identity otherwise. Returns the projected pair and its norm."""
    if phi != "lin":
        nrm = np.sqrt(np.einsum("ckn,ckn->c", dw1, dw1) + np.einsum("ck,ck->c", dw2, dw2))
        return dw1, dw2, nrm
    du = np.einsum("ckn,ck->cn", dw1, w2) + np.einsum("ckn,ck->cn", w1, dw2)
    m = np.einsum("ckn,ckm->cnm", w1, w1)
    m += np.einsum("ck,ck->c", w2, w2)[:, None, None] * np.eye(w1.shape[2])
    y = np.linalg.solve(m, du[..., None])[..., 0]
    pw1 = w2[:, :, None] * y[:, None, :]
    pw2 = np.einsum("ckn,cn->ck", w1, y)
    nrm = np.sqrt(np.maximum(np.einsum("cn,cn->c", du, y), 0.0))
    return pw1, pw2, nrm


def _perturb(state, c0, phi, delta0, rng):
    w1, w2 = state.weights(c0)
    dw1 = rng.standard_normal(w1.shape)
    dw2 = rng.standard_normal(w2.shape)
    pw1, pw2, nrm = _normal_part(w1, w2, dw1, dw2, phi)
    f = delta0 / np.maximum(nrm, 1e-300)
    return pw1 * f[:, None, None], pw2 * f[:, None]


def _renormalise_shadows(state, c0, phi, delta0):
    w1, w2 = state.all_weights()
    a1, a2, b1, b2 = w1[:c0], w2[:c0], w1[c0:], w2[c0:]
    pw1, pw2, nrm = _normal_part(a1, a2, b1 - a1, b2 - a2, phi)
    f = delta0 / np.maximum(nrm, 1e-300)
    state.set_weights(np.concatenate([a1, a1 + pw1 * f[:, None, None]]),
                      np.concatenate([a2, a2 + pw2 * f[:, None]]))
    return nrm


# -- plain reference (the published approach: one network, numpy) ---------------------


def reference_train(w1, w2, t1, t2, d1, d2, x, *, phi="lin", epochs=1, lr=0.1,
                    batch_size=10, normalize=True, orders=None):
    """One network, one numpy update per minibatch: the published ``TeacherStudentLearning``
    loop, written independently of :func:`train` (the benchmark baseline and test reference).

    ``orders`` (epochs, P) gives the minibatch order of each epoch (default: ``0..P-1``).
    """
    act, dact = _np_act(phi), _np_dact(phi)
    w1, w2 = w1.copy(), w2.copy()
    n1, n2 = np.linalg.norm(w1), np.linalg.norm(w2)
    p = x.shape[0]
    y = _forward(t1[None], t2[None], x, act, phi == "lin")[0]
    eta_b = lr * batch_size / p
    for ep in range(epochs):
        order = np.arange(p) if orders is None else orders[ep]
        for s0 in range(0, p - batch_size + 1, batch_size):
            xb = x[order[s0 : s0 + batch_size]]
            yb = y[order[s0 : s0 + batch_size]]
            a1 = w1 @ xb.T
            h = act(a1)
            a2 = w2 @ h
            yh = a2 if phi == "lin" else act(a2)
            e = yh - yb
            delta1 = np.outer(w2, e) * dact(a1)
            gw2 = (h @ e) / batch_size
            gw1 = (delta1 @ xb) / batch_size
            w2 = w2 - eta_b * gw2 * d2
            w1 = w1 - eta_b * gw1 * d1[None, :]
            if normalize:
                w1 *= n1 / np.linalg.norm(w1)
                w2 *= n2 / np.linalg.norm(w2)
    return w1, w2


# -- continuous-time flow ----------------------------------------------------------------


def flow_rhs(batch: Batch, phi: str = "lin", lr: float = 0.1):
    """``theta_dot = -lr P grad L~_train`` for every configuration, on the stacked state.

    State layout: ``[vec W1 (C K N), vec w2 (C K)]``; time in epochs. Full batch,
    unnormalised; the matching loss ``L~`` (no ``phi'(a2)``), equal to ``L`` for ``lin``.
    """
    c, k, n = batch.shape
    x = batch.x
    p = x.shape[0]
    act, dact = _np_act(phi), _np_dact(phi)
    y = _forward(batch.t1, batch.t2, x, act, phi == "lin")
    d1, d2 = batch.d1, batch.d2
    nw = c * k * n

    def rhs(t, th):
        w1 = th[:nw].reshape(c, k, n)
        w2 = th[nw:].reshape(c, k)
        a1 = np.einsum("ckn,pn->ckp", w1, x, optimize=True)
        h = act(a1)
        a2 = np.einsum("ck,ckp->cp", w2, h)
        e = (a2 if phi == "lin" else act(a2)) - y
        g2 = np.einsum("cp,ckp->ck", e, h) / p
        dl = w2[:, :, None] * e[:, None, :] * dact(a1)
        g1 = np.einsum("ckp,pn->ckn", dl, x, optimize=True) / p
        return -lr * np.concatenate([(g1 * d1[:, None, :]).ravel(), (g2 * d2).ravel()])

    return rhs


def train_flow(
    batch: Batch, *, phi: str = "lin", epochs: int = 1000, lr: float = 0.1, record: int = 50,
    tail: int | None = None, method: str = "DOP853", rtol: float = 1e-10, atol: float = 1e-12,
    threshold: float = -3.0,
) -> dict[str, Any]:
    """The clean continuous-time curl flow, integrated adaptively (no renormalisation).

    Returns the same per-configuration keys as :func:`train` (``lyapunov`` NaN) plus
    ``conserved`` ``(C, K, R)``: ``C_k = w1_k^T D1 w1_k - (D2)_kk w2_k^2`` at the recorded
    times (conserved for linear and ReLU networks, digest §2.4), and ``status``.
    """
    from meanfield.solvers.flow import integrate

    c, k, n = batch.shape
    rhs = flow_rhs(batch, phi, lr)
    rec = _record_epochs(epochs, record).astype(float)
    tail = min(1000, max(1, epochs // 2)) if tail is None else int(tail)
    t_tail = np.linspace(epochs - tail, epochs, 51)
    t_eval = np.unique(np.concatenate([rec, t_tail]))
    th0 = np.concatenate([batch.w1.ravel(), batch.w2.ravel()])
    res = integrate(rhs, th0, t_eval, method=method, rtol=rtol, atol=atol)
    nw = c * k * n
    w1s = res.s[:, :nw].reshape(-1, c, k, n)
    w2s = res.s[:, nw:].reshape(-1, c, k)
    act = _np_act(phi)
    y_te = _forward(batch.t1, batch.t2, batch.x_test, act, phi == "lin")
    y_tr = _forward(batch.t1, batch.t2, batch.x, act, phi == "lin")
    sel = np.isin(res.t, rec)
    te = np.stack([_loss(w1s[i], w2s[i], y_te, batch.x_test, phi) for i in np.flatnonzero(sel)],
                  axis=1) if sel.any() else np.full((c, 1), np.nan)
    tr = np.stack([_loss(w1s[i], w2s[i], y_tr, batch.x, phi) for i in np.flatnonzero(sel)],
                  axis=1) if sel.any() else np.full((c, 1), np.nan)
    cons = (np.einsum("tckn,cn,tckn->ckt", w1s[sel], batch.d1, w1s[sel])
            - batch.d2[:, :, None] * np.moveaxis(w2s[sel] ** 2, 0, -1))
    tl = res.t >= epochs - tail - 1e-9
    if tl.sum() >= 2:
        theta = np.concatenate([w1s[tl].reshape(tl.sum(), c, -1), w2s[tl]], axis=2)
        with np.errstate(all="ignore"):
            q = np.mean(np.var(theta, axis=0), axis=1) / np.var(np.mean(theta, axis=0), axis=1)
    else:  # the flow stopped (diverged) before the tail
        q = np.full(c, np.nan)
    thr = 10.0**threshold
    r_t = res.t[sel]
    below = te < thr
    hit = np.where(below.any(axis=1), r_t[np.argmax(below, axis=1)], epochs)
    return {
        "final_error": te[:, -1], "final_train_error": tr[:, -1], "q": q,
        "lyapunov": np.full(c, np.nan), "epochs_to_threshold": hit.astype(float),
        "max_train_error": np.nanmax(tr, axis=1), "record_epochs": r_t, "test_error": te,
        "train_error": tr, "conserved": cons, "w1": w1s[-1], "w2": w2s[-1],
        "status": res.status,
    }


# -- the model's simulator ---------------------------------------------------------------


def _mean_sem(v: np.ndarray) -> tuple[float | None, float | None]:
    v = np.asarray(v, float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return None, None
    sem = float(np.std(v, ddof=1) / math.sqrt(v.size)) if v.size > 1 else 0.0
    return float(np.mean(v)), sem


def simulate_curl_descent(model, *, size: int, trials: int, seed: int, backend: str = "cpu",
                          tail: int | None = None, lyapunov: Any = True,
                          lyap_epochs: int = 200, record: int = 50,
                          threshold: float = -3.0) -> dict[str, Any]:
    """``meanfield simulate curl_descent``: ``trials`` seeds of the model's configuration.

    ``size`` is the hidden width ``K`` (the model's ``hidden``); ``N = round(c K)``.
    Trials share the inputs (as in the published code) and differ in teacher and student.
    Returns means and standard errors over trials of ``final_error``, ``q``, ``lyapunov``
    (discrete mode), ``epochs_to_threshold``, ``max_train_error`` and
    ``log10_final_error``, plus ``lambda_min_final`` (``A/s^2`` at the final weights of a
    linear network: digest pitfall 11).
    """
    from meanfield._params import ParamError
    from meanfield.models.curl_descent import a_matrix

    model.require_network()
    if isinstance(lyapunov, str):
        low = lyapunov.strip().lower()
        if low not in ("true", "false", "1", "0", "yes", "no"):
            raise ParamError("lyapunov", "true or false", lyapunov)
        lyapunov = low in ("true", "1", "yes")
    for name, v, lo in (("lyap_epochs", lyap_epochs, 1), ("record", record, 2)):
        if isinstance(v, bool) or int(v) != v or v < lo:
            raise ParamError(name, f"an integer in [{lo}, inf)", v)
    if tail is not None and (isinstance(tail, bool) or int(tail) != tail or tail < 1):
        raise ParamError("tail", "an integer in [1, inf)", tail)
    if not np.isfinite(float(threshold)):
        raise ParamError("threshold", "a finite float", threshold)
    v = model.values
    k, n = int(size), model.n_in
    seeds = [int(s) for s in np.random.SeedSequence(int(seed)).generate_state(trials)]
    b = make_batch(n, k, v["alpha_h"], v["alpha_r"], seeds, s=v["s"], samples=v["samples"],
                   init=v["init"], teacher=v["teacher"], teacher_scale=v["teacher_scale"],
                   data_seed=int(seed))
    if v["mode"] == "flow":
        r = train_flow(b, phi=v["phi"], epochs=v["epochs"], lr=v["lr"], record=int(record),
                       tail=tail, threshold=float(threshold))
        status = r["status"]
    else:
        r = train(b, phi=v["phi"], epochs=v["epochs"], lr=v["lr"], batch_size=v["batch"],
                  record=int(record), tail=tail, lyapunov=bool(lyapunov),
                  lyap_epochs=int(lyap_epochs), shuffle_seed=int(seed), backend=backend,
                  threshold=float(threshold))
        status = "ok"
    if not np.all(np.isfinite(r["final_error"])):
        status = "diverged"
    out: dict[str, Any] = {}
    with np.errstate(all="ignore"):
        logs = np.log10(r["final_error"])
    for key, arr in (("final_error", r["final_error"]), ("q", r["q"]),
                     ("lyapunov", r["lyapunov"]), ("epochs_to_threshold", r["epochs_to_threshold"]),
                     ("max_train_error", r["max_train_error"]), ("log10_final_error", logs)):
        m, s = _mean_sem(arr)
        out[key], out[key + "_sem"] = m, s
    if v["phi"] == "lin" and np.all(np.isfinite(r["w1"])):
        lam = np.linalg.eigvalsh(a_matrix(r["w1"], r["w2"], b.d1, b.d2))[:, 0]
        out["lambda_min_final"], out["lambda_min_final_sem"] = _mean_sem(lam / v["s"] ** 2)
    out["status"] = status
    out["trials"] = int(trials)
    return out
