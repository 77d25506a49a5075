"""Network SDE/DDE engine: balanced predictive-coding rate networks, many trials at once.

Euler-Maruyama for (``shared/papers/predictive_coding.md`` §1.2, tau = 1)

.. math::

    h_{n+1} = h_n + dt\\,[-h_n + b\\,w\\,(x_n - \\hat x_{n - n_d}) + g\\,(J\\phi)_{n - n_d'}]
              + \\sigma\\sqrt{dt}\\,\\xi_n, \\qquad \\hat x_n = \\frac1N w\\cdot\\phi(h_n),

with ``n_d = d/dt`` (a ring buffer of past ``xhat``; before ``t = d`` the
history is the initial value) and ``n_d' = n_d`` when the delay acts on all
recurrent input (a ring buffer of past ``J phi``). The balance term goes through
``xhat`` (``O(N)`` per step; the rank-one matrix is never formed). The disorder
term is one matrix-matrix product per step over trials that share a network
(``network='shared'``: ``Phi (T, N) @ J^T``), or one matrix-vector product per
trial (``network='independent'``, the default for theory comparisons).

The per-neuron update is one scalar body generated from sympy
(:func:`update_body`), compiled with ``numba.njit`` for the CPU and with
``numba.cuda.jit(device=True)`` inside a grid-stride CUDA kernel
(``backend='cuda'``). On the GPU one step is three launches: ``xhat`` per trial
(a block-level tree reduction, one block per trial; the coding-error moments are
accumulated by thread 0), the disorder product (a shared-memory tiled
``Phi (T, N) @ J^T`` for a shared network, a coalesced matrix-vector product per
trial otherwise) and the per-neuron update. Launch tuning comes from
:data:`meanfield.sims._targets.CONFIG` (tests shrink it).

Step size: the collective mode relaxes at rate ``a = 1 + b kappa_max + g``
(``kappa_max = E[w^2] sup|phi'|``). Euler-Maruyama is stable for ``a dt < 2``
and inflates the stationary variance by ``1 / (1 - a dt / 2)`` (digest
pitfall 3); a ``dt`` with ``a dt > MAX_RATE_DT`` is refused with a
:class:`~meanfield.ParamError` naming ``dt``. The default is ``dt = 0.05 / a``
(variance inflated by at most 2.5 %), and at most ``d / 10``, dividing ``d``.

Noise is drawn on the host, per trial, from the trial's ``SeedSequence``
child, in chunks of steps, so the numbers do not depend on the backend.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import sympy as sp

from meanfield import _codegen
from meanfield._params import ParamError

from .._rng import trial_generators

__all__ = [
    "MAX_RATE_DT",
    "collective_rate",
    "choose_dt",
    "update_body",
    "sample_network",
    "run_rate_network",
    "simulate_predictive_coding",
]

#: most neuron-steps (``steps * size * trials``) a rate simulation accepts (about an
#: hour on one core); beyond it the run is refused up front
MAX_WORK = 1e12
#: largest accepted ``a * dt`` (``a``: the collective mode's rate)
MAX_RATE_DT = 0.2
#: default ``a * dt``
DEFAULT_RATE_DT = 0.05
CHUNK = 256

#: tile edge of the CUDA shared-network product (a compile-time constant)
TILE = 16
#: the largest reduction block (``cuda.shared.array`` size; threads per block are capped to it)
RED_MAX = 256

_KERNELS: dict = {}
cuda = None  # numba.cuda, imported on first use (a module global: the simulator swaps globals)


def collective_rate(model) -> float:
    """``a = 1 + b kappa_max + g``, an upper bound of the fastest linear mode's rate."""
    phi = model.phi
    xs = np.linspace(-20, 20, 4001)
    sup1 = float(np.max(np.abs(phi.f1(xs))))
    return 1.0 + model["b"] * sup1 * 1.0 + model["g"]  # E[w^2] = 1 for both laws


def choose_dt(model, dt: float | None) -> tuple[float, int]:
    """The step (validated or chosen) and the delay in steps."""
    a = collective_rate(model)
    d = model["d"]
    if dt is None:
        dt = min(0.01, DEFAULT_RATE_DT / a)
        if d > 0:
            dt = d / math.ceil(d / min(dt, d / 10))
    else:
        try:
            dt = float(dt)
        except (TypeError, ValueError):
            raise ParamError("dt", "a float in (0, inf)", dt) from None
        if not dt > 0 or not math.isfinite(dt):
            raise ParamError("dt", "a float in (0, inf)", dt)
        if a * dt > MAX_RATE_DT:
            raise ParamError(
                "dt",
                f"at most {MAX_RATE_DT / a:.4g} = {MAX_RATE_DT} / (1 + b kappa_max + g), the "
                "collective mode's rate (Euler-Maruyama is unstable or biased beyond)",
                dt,
            )
    nd = int(round(d / dt))
    if d > 0 and abs(nd * dt - d) > 1e-9 * max(d, 1.0):
        raise ParamError("dt", f"a divisor of the delay d={d} (d/dt an integer)", dt)
    return float(dt), nd


def update_body(phi_expr: sp.Expr) -> _codegen.ScalarFunction:
    """The per-neuron Euler-Maruyama step as one generated scalar body.

    ``f(h, w, e, r, xi, dt, b, g, sq) -> (h', phi(h'))`` with
    ``h' = h + dt (-h + b w e + g r) + sq xi`` (``sq = sigma sqrt(dt)``).
    """
    from meanfield.solvers.dmft import H

    h, w, e, r, xi, dt, b, g, sq = sp.symbols("h w e r xi dt b g sq", real=True)
    hn = h + dt * (-h + b * w * e + g * r) + sq * xi
    u = sp.Symbol("u_", real=True)
    phi_u = phi_expr.subs(H, u)
    # phi(h') printed once, h' as an input of a second body: keep one function
    expr_phi = phi_u.subs(u, hn)
    return _codegen.scalar_function((hn, expr_phi), (h, w, e, r, xi, dt, b, g, sq),
                                    name="pc_step")


def phi_body(phi_expr: sp.Expr) -> _codegen.ScalarFunction:
    from meanfield.solvers.dmft import H

    return _codegen.scalar_function((phi_expr,), (H,), name="pc_phi")


def _cpu_kernel(body: _codegen.ScalarFunction):
    key = (body.key, "cpu")
    if key in _KERNELS:
        return _KERNELS[key]
    import numba

    step = _codegen.njit(body)

    @numba.njit(cache=False)
    def run_chunk(H, PHI, W, J, JT, shared, xin, noise, xring, rring, n0, nd_fb, nd_rec,
                  dt, b, g, sq, burn, acc, xtr):
        T, N = H.shape
        K = noise.shape[1]
        R = xring.shape[1]
        inv_n = 1.0 / N
        rec = np.zeros((T, N))
        for k in range(K):
            n = n0 + k
            slot = n % R
            for t in range(T):
                s = 0.0
                for i in range(N):
                    s += W[t, i] * PHI[t, i]
                xring[t, slot] = s * inv_n
                xtr[t, k] = s * inv_n
            if g != 0.0:
                if shared:
                    cur = np.dot(PHI, JT)
                else:
                    cur = np.empty((T, N))
                    for t in range(T):
                        cur[t] = np.dot(J[t], PHI[t])
                rring[slot % rring.shape[0]] = cur
                rs = max(n - nd_rec, 0) % R
                rec = rring[rs % rring.shape[0]]
            fs = max(n - nd_fb, 0) % R
            for t in range(T):
                err = xring[t, slot] - xin[t, k]
                if n >= burn:
                    acc[t, 0] += err
                    acc[t, 1] += err * err
                    acc[t, 2] += 1.0
                e = xin[t, k] - xring[t, fs]
                for i in range(N):
                    out = step(H[t, i], W[t, i], e, rec[t, i], noise[t, k, i], dt, b, g, sq)
                    H[t, i] = out[0]
                    PHI[t, i] = out[1]

    _KERNELS[key] = run_chunk
    return run_chunk


def _cuda_kernels(body: _codegen.ScalarFunction):
    """``(xhat, matvec, gemm, update)`` CUDA kernels around the same scalar body.

    ``xhat[T, tpb](PHI, W, xin, xring, xtr, acc, slot, k, n, burn)``: one block per
    trial reduces ``w . phi / N`` (``tpb`` a power of two <= :data:`RED_MAX`) and
    thread 0 stores it in the ring and accumulates the error moments (as the CPU
    kernel). ``matvec`` (independent networks, grid-stride over ``(t, i)``, reads
    ``JT[t, j, i]`` coalesced in ``i``) and ``gemm`` (shared network, ``TILE x
    TILE`` shared-memory tiles) write ``g``'s input ``(J phi)`` into ``rring[slot]``.
    ``update`` applies the generated Euler-Maruyama step to every ``(t, i)``.
    """
    global cuda
    key = (body.key, "cuda")
    if key in _KERNELS:
        return _KERNELS[key]
    from numba import cuda, float64

    step = _codegen.cuda_device(body)

    @cuda.jit
    def xhat_kernel(PHI, W, xin, xring, xtr, acc, slot, k, n, burn):
        sh = cuda.shared.array(RED_MAX, float64)
        t = cuda.blockIdx.x
        tid = cuda.threadIdx.x
        nth = cuda.blockDim.x
        N = PHI.shape[1]
        s = 0.0
        for i in range(tid, N, nth):
            s += W[t, i] * PHI[t, i]
        sh[tid] = s
        cuda.syncthreads()
        half = nth // 2
        while half > 0:
            if tid < half:
                sh[tid] += sh[tid + half]
            cuda.syncthreads()
            half //= 2
        if tid == 0:
            v = sh[0] / N
            xring[t, slot] = v
            xtr[t, k] = v
            if n >= burn:
                err = v - xin[t, k]
                acc[t, 0] += err
                acc[t, 1] += err * err
                acc[t, 2] += 1.0

    @cuda.jit
    def matvec_kernel(PHI, JT, rring, slot):
        T = PHI.shape[0]
        N = PHI.shape[1]
        for q in range(cuda.grid(1), T * N, cuda.gridsize(1)):
            t = q // N
            i = q - t * N
            s = 0.0
            for j in range(N):
                s += JT[t, j, i] * PHI[t, j]
            rring[slot, t, i] = s

    @cuda.jit
    def gemm_kernel(PHI, JT, rring, slot):
        sa = cuda.shared.array((TILE, TILE), float64)
        sb = cuda.shared.array((TILE, TILE), float64)
        T = PHI.shape[0]
        N = PHI.shape[1]
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        i = cuda.blockIdx.x * TILE + tx
        t = cuda.blockIdx.y * TILE + ty
        s = 0.0
        for j0 in range(0, N, TILE):
            ja = j0 + tx
            sa[ty, tx] = PHI[t, ja] if (t < T and ja < N) else 0.0
            jb = j0 + ty
            sb[ty, tx] = JT[0, jb, i] if (jb < N and i < N) else 0.0
            cuda.syncthreads()
            for q in range(TILE):
                s += sa[ty, q] * sb[q, tx]
            cuda.syncthreads()
        if t < T and i < N:
            rring[slot, t, i] = s

    @cuda.jit
    def update_kernel(H, PHI, W, rring, rs, xin, xring, k, fs, dt, b, g, sq, noise):
        T = H.shape[0]
        N = H.shape[1]
        for q in range(cuda.grid(1), T * N, cuda.gridsize(1)):
            t = q // N
            i = q - t * N
            e = xin[t, k] - xring[t, fs]
            out = step(H[t, i], W[t, i], e, rring[rs, t, i], noise[t, k, i], dt, b, g, sq)
            H[t, i] = out[0]
            PHI[t, i] = out[1]

    _KERNELS[key] = (xhat_kernel, matvec_kernel, gemm_kernel, update_kernel)
    return _KERNELS[key]


class _CudaRun:
    """Device state of one CUDA run; :meth:`chunk` advances ``K`` steps like ``run_chunk``."""

    def __init__(self, body, Hs, PHI, W, J, shared, xring, rring, acc):
        from numba import cuda as _cuda

        from .. import _targets

        self.kern = _cuda_kernels(body)
        self.cuda = _cuda
        self.cfg = _targets.CONFIG
        self.H, self.PHI, self.W = (_cuda.to_device(a) for a in (Hs, PHI, W))
        self.xring, self.acc = _cuda.to_device(xring), _cuda.to_device(acc)
        self.rring = _cuda.to_device(rring)
        self.shared = shared
        if J is not None:
            self.JT = _cuda.to_device(np.ascontiguousarray(np.transpose(J, (0, 2, 1))))
        else:
            self.JT = None
        tpb = 1
        while tpb * 2 <= min(self.cfg.threads_per_block, RED_MAX):
            tpb *= 2
        self.red_tpb = tpb

    def chunk(self, xin, noise, n0, nd_fb, nd_rec, dt, b, g, sq, burn, xtr):
        cuda_ = self.cuda
        xhat_k, matvec_k, gemm_k, update_k = self.kern
        T, N = self.H.shape
        K = noise.shape[1]
        R = self.xring.shape[1]
        L = self.rring.shape[0]
        d_xin, d_noise = cuda_.to_device(xin), cuda_.to_device(noise)
        d_xtr = cuda_.device_array((T, K))
        grid = self.cfg.grid(T * N)
        ggrid = ((N + TILE - 1) // TILE, (T + TILE - 1) // TILE)
        for k in range(K):
            n = n0 + k
            slot = n % R
            xhat_k[T, self.red_tpb](self.PHI, self.W, d_xin, self.xring, d_xtr, self.acc, slot,
                                    k, n, burn)
            rs = 0
            if g != 0.0:
                if self.shared:
                    gemm_k[ggrid, (TILE, TILE)](self.PHI, self.JT, self.rring, slot % L)
                else:
                    matvec_k[grid](self.PHI, self.JT, self.rring, slot % L)
                rs = (max(n - nd_rec, 0) % R) % L
            fs = max(n - nd_fb, 0) % R
            update_k[grid](self.H, self.PHI, self.W, self.rring, rs, d_xin, self.xring, k, fs,
                           dt, b, g, sq, d_noise)
        xtr[:] = d_xtr.copy_to_host()

    def finish(self, Hs, acc):
        Hs[:] = self.H.copy_to_host()
        acc[:] = self.acc.copy_to_host()


def sample_network(model, size: int, trials: int, seed: int, network: str = "independent"):
    """Weights ``w (T, N)``, disorder ``J (T or 1, N, N)`` (or None) and the generators.

    Per trial generator, in order: ``w``, then ``J`` (independent networks), then
    the initial ``z``; the noise chunks follow. ``shared``: trial 0's ``w``/``J``
    serve every trial.
    """
    if network not in ("independent", "shared"):
        raise ParamError("network", "one of independent, shared", network)
    rngs = trial_generators(seed, trials)
    N = size
    W = np.empty((trials, N))
    nJ = 0 if model["g"] == 0 else (trials if network == "independent" else 1)
    J = np.empty((nJ, N, N)) if nJ else None
    for t, rng in enumerate(rngs):
        if network == "shared" and t > 0:
            W[t] = W[0]
            continue
        if model["weights"] == "gaussian":
            W[t] = rng.standard_normal(N)
        else:
            W[t] = rng.choice(np.array([-1.0, 1.0]), size=N)
        if J is not None and t < nJ:
            J[t] = rng.standard_normal((N, N)) / np.sqrt(N)
    return W, J, rngs


def _input_path(model, rngs, t0: int, K: int, dt: float, state: np.ndarray) -> np.ndarray:
    T = len(rngs)
    x = model["x"]
    kind = model["input"]
    if kind == "constant" or model["amp"] == 0:
        return np.full((T, K), x)
    ts = (t0 + np.arange(K)) * dt
    if kind == "sinusoid":
        return np.repeat((x + model["amp"] * np.sin(model["omega"] * ts))[None], T, axis=0)
    a = math.exp(-dt / model["tau_x"])
    c = model["amp"] * math.sqrt(1 - a * a)
    out = np.empty((T, K))
    for t, rng in enumerate(rngs):
        eta = rng.standard_normal(K) * c
        y = _ar1(eta, a, float(state[t]))
        state[t] = y[-1]
        out[t] = x + y
    return out


def _ar1(eta: np.ndarray, a: float, y0: float) -> np.ndarray:
    """``y_k = a y_{k-1} + eta_k`` from ``y_{-1} = y0`` (the exact AR(1) of the OU input)."""
    y = np.empty_like(eta)
    prev = y0
    for k, e in enumerate(eta.tolist()):
        prev = a * prev + e
        y[k] = prev
    return y


def run_rate_network(model, size: int, trials: int, seed: int, *, t_max: float = 60.0,
                     t_burn: float = 5.0, dt: float | None = None, network: str = "independent",
                     init: str = "stationary", backend: str = "cpu", record: int = 0,
                     dtype: str = "float64") -> dict[str, Any]:
    """Simulate ``trials`` networks; per-trial moments of ``xhat - x`` after ``t_burn``.

    Returns a dict with arrays ``mean_err (T,)``, ``var_err (T,)``, the step ``dt``,
    the delay in steps, and (``record > 0``) ``trace``: ``xhat`` of the first
    ``record`` trials every step (for figures).
    """
    if init not in ("stationary", "zero", "random"):
        raise ParamError("init", "one of stationary, zero, random", init)
    for name, v in (("t_max", t_max), ("t_burn", t_burn)):
        if not (isinstance(v, int | float) and math.isfinite(v) and v >= 0):
            raise ParamError(name, "a float in [0, inf)", v)
    if t_max <= 0:
        raise ParamError("t_max", "a float in (0, inf)", t_max)
    dt, nd = choose_dt(model, dt)
    steps_needed = (t_max + t_burn) / dt
    if steps_needed * size * trials > MAX_WORK:
        # a huge balance b makes the collective rate, hence the number of steps, huge:
        # refuse up front instead of running for days
        raise ParamError(
            "b",
            f"a value whose run fits {MAX_WORK:.0e} neuron-steps (dt = {dt:.3g} from the "
            f"collective rate 1 + b kappa_max + g needs {steps_needed:.3g} steps of "
            f"{size} neurons x {trials} trials; lower b, t_max or size)",
            model["b"],
        )
    nd_fb = nd
    nd_rec = nd if model["delay_on"] == "all" else 0
    W, J, rngs = sample_network(model, size, trials, seed, network)
    T, N = trials, size
    Hs = np.empty((T, N))
    y0, d0 = 0.0, model["sigma"] ** 2 / 2
    if init == "stationary":
        y0, sol, st, _ = model.static()
        d0 = sol.delta0 if st == "ok" and np.isfinite(sol.delta0) else d0
    for t, rng in enumerate(rngs):
        z = rng.standard_normal(N)
        if init == "stationary":
            Hs[t] = W[t] * y0 + math.sqrt(d0) * z
        else:
            Hs[t] = z if init == "random" else 0.0
    phi = model.phi
    PHI = phi.f(Hs)
    body = update_body(phi.expr)
    steps = int(round((t_max + t_burn) / dt))
    burn = int(round(t_burn / dt))
    R = max(nd_fb, nd_rec) + 2
    xring = np.zeros((T, R))
    rring = np.zeros((nd_rec + 2 if J is not None else 1, T, N))
    acc = np.zeros((T, 3))
    xstate = np.zeros(T)
    Jarr = J if J is not None else np.zeros((1, 1, 1))
    JT = np.ascontiguousarray(J[0].T) if J is not None else np.zeros((1, 1))
    shared = J is not None and J.shape[0] == 1
    trace = np.empty((min(record, T), steps)) if record else None
    if backend not in ("cpu", "cuda"):
        raise ParamError("backend", "one of cpu, cuda", backend)
    if backend == "cuda":
        gpu = _CudaRun(body, Hs, PHI, W, J, shared, xring, rring, acc)
    else:
        kern = _cpu_kernel(body)
    sq = model["sigma"] * math.sqrt(dt)
    # a noise chunk of at most ~64 MiB
    chunk = max(1, min(CHUNK, (8 << 20) // max(1, T * N)))
    n0 = 0
    while n0 < steps:
        K = min(chunk, steps - n0)
        noise = np.empty((T, K, N))
        for t, rng in enumerate(rngs):
            noise[t] = rng.standard_normal((K, N))
        xin = _input_path(model, rngs, n0, K, dt, xstate)
        xtr = np.empty((T, K))
        if backend == "cuda":
            gpu.chunk(xin, noise, n0, nd_fb, nd_rec, dt, float(model["b"]), float(model["g"]),
                      sq, burn, xtr)
        else:
            kern(Hs, PHI, W, Jarr, JT, shared, xin, noise, xring, rring, n0, nd_fb, nd_rec,
                 dt, model["b"], model["g"], sq, burn, acc, xtr)
        if trace is not None:
            trace[:, n0 : n0 + K] = xtr[: trace.shape[0]]
        n0 += K
    if backend == "cuda":
        gpu.finish(Hs, acc)
    cnt = np.maximum(acc[:, 2], 1.0)
    mean = acc[:, 0] / cnt
    var = np.maximum(acc[:, 1] / cnt - mean**2, 0.0)
    finite = bool(np.all(np.isfinite(Hs)) and np.all(np.isfinite(acc)))
    return {"mean_err": mean, "var_err": var, "dt": dt, "delay_steps": nd, "steps": steps,
            "finite": finite, "trace": trace, "H": Hs}


def _mean_sem(v: np.ndarray) -> tuple[float, float | None]:
    v = np.asarray(v, dtype=float)
    m = float(v.mean())
    if v.size < 2:
        return m, None
    return m, float(v.std(ddof=1) / np.sqrt(v.size))


def error_summary(res: dict) -> dict[str, Any]:
    """``bias``, ``std``, ``error`` (``hypot``) over trials with their ``_sem`` and the status,
    from a run's per-trial ``mean_err`` and ``var_err`` (rate and spiking engines alike); a
    diverged run reports ``None`` values, never NaN."""
    bias = np.abs(res["mean_err"])
    std = np.sqrt(res["var_err"])
    out: dict[str, Any] = {}
    for name, v in (("bias", bias), ("std", std), ("error", np.hypot(bias, std))):
        m, s = _mean_sem(v)
        out[name], out[name + "_sem"] = m, s
    out["status"] = "ok" if res["finite"] else "diverged"
    if not res["finite"]:
        for k in ("bias", "std", "error", "bias_sem", "std_sem", "error_sem"):
            out[k] = None
    return out


def simulate_predictive_coding(model, *, size: int, trials: int, seed: int, backend: str = "cpu",
                               **kw) -> dict[str, Any]:
    """The predictive-coding simulator (``Model.simulator``): bias, std, error and SEMs.

    Per trial: ``bias = |<xhat - x>_t|``, ``std = sqrt(var_t(xhat - x))``,
    ``error = sqrt(bias^2 + std^2)``; reported as means over trials with their
    standard errors (``*_sem``, None with one trial). With the model's ``engine =
    spiking`` the Boerlin-Machens-Deneve network of :mod:`sims.engines.spiking` runs
    instead (options ``t_max``, ``t_burn``, ``dt``).
    """
    if model["engine"] == "spiking":
        from .spiking import simulate_spiking

        return simulate_spiking(model, size=size, trials=trials, seed=seed, backend=backend,
                                rule=model["rule"], lambda_v=model["lambda_v"], **kw)
    allowed = {"t_max", "t_burn", "dt", "network", "init"}
    for k in kw:
        if k not in allowed:
            raise ParamError(k, "a simulate option (" + ", ".join(sorted(allowed)) + ")", kw[k])
    res = run_rate_network(model, size, trials, seed, backend=backend, **kw)
    out = error_summary(res)
    out.update(dt=res["dt"], delay_steps=res["delay_steps"], steps=res["steps"],
               trials=trials, size=size, network=kw.get("network", "independent"))
    return out
