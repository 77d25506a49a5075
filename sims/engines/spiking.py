"""Spiking predictive coding: the Boerlin-Machens-Deneve network, many trials at once.

Boerlin, Machens & Deneve, PLoS CB 9:e1003258 (2013), for a scalar input ``x(t)``
(digest ``shared/papers/predictive_coding.md`` §5), time in units of the readout time
constant (``lambda_d = 1``, the rate model's ``tau``). Readout and voltages:

.. math::

    \\dot r_i = -r_i + o_i(t), \\qquad \\hat x = \\sum_i \\Gamma_i r_i, \\qquad
    V_i = \\Gamma_i\\,[x - \\hat x_d] - \\Gamma_i^2\\,(r_i - r_{i,d}) + u_i, \\qquad
    \\dot u_i = -\\lambda_V u_i + \\sigma_{V,i}\\,\\eta_i,

where ``o_i`` is neuron ``i``'s spike train, ``r_{i,d}(t) = r_i(t - d)`` and ``xhat_d =
xhat(t - d)`` (a spike reaches the other neurons after the delay ``d``; a neuron's own
reset is immediate). This is the leaky integrate-and-fire network
``V' = -lambda_V V + Gamma (x' + lambda_V x) + (1 - lambda_V) Gamma xhat - Omega_f o`` with
``Omega_f = Gamma^T Gamma`` written through ``xhat`` and the ``u_i`` (each neuron's
deviation from the ideal voltage ``Gamma_i (x - xhat)``, an Ornstein-Uhlenbeck process):
``O(N)`` per step, the rank-one ``Omega_f`` is never formed (the cost terms
``mu = nu = 0``). Threshold ``T_i = Gamma_i^2 / 2`` (pillowlab ``bsn.m`` at ``mu = nu = 0``);
a spike adds ``Gamma_i`` to ``xhat``.

Arbitration within a step (``rule``): ``one`` (default) lets only the most suprathreshold
neuron fire (the max-voltage rule of Brendel / brian2 #193; it prevents ping-pong), ``all``
lets every suprathreshold neuron fire (ping-pong with delays; digest pitfall 11).

Mapping to the rate theory (digest §5): ``Gamma_i = (2 / b) w_i`` with the model's ``w``
and ``b``. The normalised drive ``V_i / T_i = 2 (x - xhat) / Gamma_i = b (x - xhat) / w_i``
is the rate network's balance drive ``b w_i (x - xhat)`` per unit ``w_i^2``, so ``b``
plays the same role: ``b`` fixed gives an error floor ``~ |Gamma| / 2 ~ 1 / b``, ``b
proportional to N`` gives ``RMSE ~ 1/N`` (superclassical). The membrane noise is in units
of the threshold: ``sigma_{V,i} = sigma T_i`` (so ``u_i / T_i`` has the rate model's
``sigma``). The chaos term has no spiking counterpart here (``g`` must be 0).

Exact exponential updates of ``r`` and ``u`` over a step ``dt`` (``dt`` dividing ``d``);
the noise is drawn on the host per trial from the trial's ``SeedSequence`` child, so the
CPU kernel (``numba.njit``, trials in sequence) and the CUDA kernel (``backend='cuda'``:
one block per trial for a whole chunk of steps, block reductions for the arriving and
emitted spikes and the arg-max) see the same numbers and emit the same spikes.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from meanfield._params import ParamError

from .._rng import trial_generators

__all__ = ["run_spiking_network", "simulate_spiking", "RULES"]

RULES = ("one", "all")
CHUNK = 256
_KERNEL: dict = {}


def _kernel():
    if "cpu" in _KERNEL:
        return _KERNEL["cpu"]
    import numba

    @numba.njit(cache=False)
    def run_chunk(G, T_, r, rd, u, xh, xhd, ring, xin, noise, n0, nd, decay, udecay, unoise,
                  one, burn, acc, xtr, raster, counts):
        T, N = r.shape
        K = noise.shape[1]
        R = ring.shape[1]
        for k in range(K):
            n = n0 + k
            slot = n % R
            for t in range(T):
                # decay of the readout (own and delayed copies) and the noise deviation
                xh[t] *= decay
                xhd[t] *= decay
                for i in range(N):
                    r[t, i] *= decay
                    rd[t, i] *= decay
                    u[t, i] = u[t, i] * udecay + unoise[t, i] * noise[t, k, i]
                # spikes emitted nd steps ago reach the others now
                if nd > 0:
                    old = (n - nd) % R
                    for i in range(N):
                        if ring[t, old, i] != 0:
                            rd[t, i] += 1.0
                            xhd[t] += G[t, i]
                            ring[t, old, i] = 0
                e = xin[t, k] - xhd[t]
                best = -1
                bestm = 0.0
                for i in range(N):
                    v = G[t, i] * e - G[t, i] * G[t, i] * (r[t, i] - rd[t, i]) + u[t, i]
                    m = v - T_[t, i]
                    if m > 0.0:
                        if one:
                            if best < 0 or m > bestm:
                                best = i
                                bestm = m
                        else:
                            r[t, i] += 1.0
                            xh[t] += G[t, i]
                            counts[t, i] += 1.0
                            if nd > 0:
                                ring[t, slot, i] = 1
                            else:
                                rd[t, i] += 1.0
                                xhd[t] += G[t, i]
                            if t == 0 and raster.shape[0] > 0 and n < raster.shape[0]:
                                raster[n, i] = 1
                if one and best >= 0:
                    i = best
                    r[t, i] += 1.0
                    xh[t] += G[t, i]
                    counts[t, i] += 1.0
                    if nd > 0:
                        ring[t, slot, i] = 1
                    else:
                        rd[t, i] += 1.0
                        xhd[t] += G[t, i]
                    if t == 0 and raster.shape[0] > 0 and n < raster.shape[0]:
                        raster[n, i] = 1
                err = xh[t] - xin[t, k]
                xtr[t, k] = xh[t]
                if n >= burn:
                    acc[t, 0] += err
                    acc[t, 1] += err * err
                    acc[t, 2] += 1.0

    _KERNEL["cpu"] = run_chunk
    return run_chunk


#: threads per block of the CUDA kernel (one block per trial); a power of two
CUDA_THREADS = 128
cuda = None  # numba.cuda, imported on first use (a module global: the simulator swaps globals)


def _cuda_kernel():
    """The CUDA version of ``run_chunk``: one block per trial, threads stride over neurons.

    Per step: decay and delayed-spike arrival (a block sum of the arriving ``Gamma``), then
    the margins ``V_i - T_i`` and the spikes (a block arg-max for ``rule='one'``, a block sum
    of the emitted ``Gamma`` for ``'all'``); thread 0 updates the trial's readouts. The
    same arithmetic as the CPU loop, in the same order per neuron, so the two agree to
    rounding of the sums (parity under the simulator).
    """
    global cuda
    if "cuda" in _KERNEL:
        return _KERNEL["cuda"]
    from numba import cuda, float64, int64

    @cuda.jit
    def run_chunk_cuda(G, T_, r, rd, u, xh, xhd, ring, xin, noise, n0, nd, decay, udecay,
                       unoise, one, burn, acc, xtr, raster, counts):
        sv = cuda.shared.array(CUDA_THREADS, float64)
        si = cuda.shared.array(CUDA_THREADS, int64)
        t = cuda.blockIdx.x
        tid = cuda.threadIdx.x
        nth = cuda.blockDim.x
        N = r.shape[1]
        K = noise.shape[1]
        R = ring.shape[1]
        for k in range(K):
            n = n0 + k
            slot = n % R
            old = (n - nd) % R
            s = 0.0
            for i in range(tid, N, nth):
                r[t, i] *= decay
                rd[t, i] *= decay
                u[t, i] = u[t, i] * udecay + unoise[t, i] * noise[t, k, i]
                if nd > 0 and ring[t, old, i] != 0:
                    rd[t, i] += 1.0
                    s += G[t, i]
                    ring[t, old, i] = 0
            sv[tid] = s
            cuda.syncthreads()
            half = nth // 2
            while half > 0:
                if tid < half:
                    sv[tid] += sv[tid + half]
                cuda.syncthreads()
                half //= 2
            if tid == 0:
                xh[t] *= decay
                xhd[t] = xhd[t] * decay + sv[0]
            cuda.syncthreads()
            e = xin[t, k] - xhd[t]
            cuda.syncthreads()
            best = -1
            bestm = 0.0
            s = 0.0
            for i in range(tid, N, nth):
                v = G[t, i] * e - G[t, i] * G[t, i] * (r[t, i] - rd[t, i]) + u[t, i]
                m = v - T_[t, i]
                if m > 0.0:
                    if one:
                        if best < 0 or m > bestm:
                            best = i
                            bestm = m
                    else:
                        r[t, i] += 1.0
                        s += G[t, i]
                        counts[t, i] += 1.0
                        if nd > 0:
                            ring[t, slot, i] = 1
                        else:
                            rd[t, i] += 1.0
                        if t == 0 and n < raster.shape[0]:
                            raster[n, i] = 1
            sv[tid] = bestm if one else s
            si[tid] = best
            cuda.syncthreads()
            half = nth // 2
            while half > 0:
                if tid < half:
                    if one:
                        j = si[tid + half]
                        if j >= 0 and (si[tid] < 0 or sv[tid + half] > sv[tid]
                                       or (sv[tid + half] == sv[tid] and j < si[tid])):
                            sv[tid] = sv[tid + half]
                            si[tid] = j
                    else:
                        sv[tid] += sv[tid + half]
                cuda.syncthreads()
                half //= 2
            if tid == 0:
                if one:
                    i = si[0]
                    if i >= 0:
                        r[t, i] += 1.0
                        xh[t] += G[t, i]
                        counts[t, i] += 1.0
                        if nd > 0:
                            ring[t, slot, i] = 1
                        else:
                            rd[t, i] += 1.0
                            xhd[t] += G[t, i]
                        if t == 0 and n < raster.shape[0]:
                            raster[n, i] = 1
                else:
                    xh[t] += sv[0]
                    if nd == 0:
                        xhd[t] += sv[0]
                err = xh[t] - xin[t, k]
                xtr[t, k] = xh[t]
                if n >= burn:
                    acc[t, 0] += err
                    acc[t, 1] += err * err
                    acc[t, 2] += 1.0
            cuda.syncthreads()

    _KERNEL["cuda"] = run_chunk_cuda
    return run_chunk_cuda


def _choose_dt(model, dt: float | None) -> tuple[float, int]:
    d = model["d"]
    if dt is None:
        dt = 1e-3
        if d > 0:
            dt = d / math.ceil(d / min(dt, d / 10))
    try:
        dt = float(dt)
    except (TypeError, ValueError):
        raise ParamError("dt", "a float in (0, 0.1]", dt) from None
    if not (0 < dt <= 0.1) or not math.isfinite(dt):
        raise ParamError("dt", "a float in (0, 0.1]", dt)
    nd = int(round(d / dt))
    if d > 0 and abs(nd * dt - d) > 1e-9 * max(d, 1.0):
        raise ParamError("dt", f"a divisor of the delay d={d} (d/dt an integer)", dt)
    return dt, nd


def run_spiking_network(model, size: int, trials: int, seed: int, *, t_max: float = 20.0,
                        t_burn: float = 2.0, dt: float | None = None, rule: str = "one",
                        lambda_v: float = 1.0, record: int = 0,
                        backend: str = "cpu") -> dict[str, Any]:
    """Simulate ``trials`` spiking networks; per-trial moments of ``xhat - x`` after ``t_burn``.

    Returns ``mean_err``, ``var_err`` (per trial), ``rate`` (mean spikes per neuron per unit
    time), ``dt``, ``delay_steps``, ``steps``, ``finite`` and, with ``record > 0``, the
    first ``record`` steps of trial 0: ``raster (record, N)`` (0/1), ``trace`` (``xhat``),
    ``x`` (the input) and ``gamma`` (trial 0's decoding weights).
    """
    if backend not in ("cpu", "cuda"):
        raise ParamError("backend", "one of cpu, cuda", backend)
    if rule not in RULES:
        raise ParamError("rule", "one of " + ", ".join(RULES), rule)
    if model["g"] != 0:
        raise ParamError("g", "0 with engine=spiking (no disorder term in the spiking network)",
                         model["g"])
    if model["b"] <= 0:
        raise ParamError("b", "a float in (0, inf) with engine=spiking (Gamma = 2 w / b)",
                         model["b"])
    for name, v in (("t_max", t_max), ("t_burn", t_burn), ("lambda_v", lambda_v)):
        if not (isinstance(v, int | float) and math.isfinite(v) and v >= 0):
            raise ParamError(name, "a float in [0, inf)", v)
    if t_max <= 0:
        raise ParamError("t_max", "a float in (0, inf)", t_max)
    if model["input"] != "constant":
        raise ParamError("input", "constant with engine=spiking", model["input"])
    dt, nd = _choose_dt(model, dt)
    rngs = trial_generators(seed, trials)
    T, N = trials, size
    G = np.empty((T, N))
    for t, rng in enumerate(rngs):
        if model["weights"] == "gaussian":
            w = rng.standard_normal(N)
        else:
            w = rng.choice(np.array([-1.0, 1.0]), size=N)
        G[t] = 2.0 * w / model["b"]
    Th = G * G / 2.0
    decay = math.exp(-dt)
    if lambda_v > 0:
        udecay = math.exp(-lambda_v * dt)
        ustd = math.sqrt((1 - udecay * udecay) / (2 * lambda_v))
    else:
        udecay, ustd = 1.0, math.sqrt(dt)
    unoise = model["sigma"] * Th * ustd
    r = np.zeros((T, N))
    rd = np.zeros((T, N))
    u = np.zeros((T, N))
    xh = np.zeros(T)
    xhd = np.zeros(T)
    ring = np.zeros((T, nd + 1, N), dtype=np.uint8)
    steps = int(round((t_max + t_burn) / dt))
    burn = int(round(t_burn / dt))
    rec = min(int(record), steps)
    raster = np.zeros((rec, N), dtype=np.uint8)
    trace = np.empty(rec) if rec else None
    acc = np.zeros((T, 3))
    counts = np.zeros((T, N))
    if backend == "cuda":
        from numba import cuda as _cuda

        from .. import _targets

        kern_gpu = _cuda_kernel()
        tpb = 1
        while tpb * 2 <= min(_targets.CONFIG.threads_per_block, CUDA_THREADS):
            tpb *= 2
        dev = {k: _cuda.to_device(v) for k, v in dict(
            G=G, T_=Th, r=r, rd=rd, u=u, xh=xh, xhd=xhd, ring=ring, unoise=unoise, acc=acc,
            raster=raster, counts=counts).items()}
    else:
        kern = _kernel()
    xval = float(model["x"])
    n0 = 0
    chunk = max(1, min(CHUNK, (8 << 20) // max(1, T * N)))
    while n0 < steps:
        K = min(chunk, steps - n0)
        noise = np.empty((T, K, N))
        for t, rng in enumerate(rngs):
            noise[t] = rng.standard_normal((K, N))
        xin = np.full((T, K), xval)
        xtr = np.empty((T, K))
        if backend == "cuda":
            d_xtr = _cuda.device_array((T, K))
            kern_gpu[T, tpb](dev["G"], dev["T_"], dev["r"], dev["rd"], dev["u"], dev["xh"],
                             dev["xhd"], dev["ring"], _cuda.to_device(xin),
                             _cuda.to_device(noise), n0, nd, decay, udecay, dev["unoise"],
                             rule == "one", burn, dev["acc"], d_xtr, dev["raster"],
                             dev["counts"])
            xtr = d_xtr.copy_to_host()
        else:
            kern(G, Th, r, rd, u, xh, xhd, ring, xin, noise, n0, nd, decay, udecay, unoise,
                 rule == "one", burn, acc, xtr, raster, counts)
        if trace is not None and n0 < rec:
            m = min(K, rec - n0)
            trace[n0 : n0 + m] = xtr[0, :m]
        n0 += K
    if backend == "cuda":
        acc, raster, counts = (dev[k].copy_to_host() for k in ("acc", "raster", "counts"))
        r = dev["r"].copy_to_host()
    cnt = np.maximum(acc[:, 2], 1.0)
    mean = acc[:, 0] / cnt
    var = np.maximum(acc[:, 1] / cnt - mean**2, 0.0)
    out = {"mean_err": mean, "var_err": var, "dt": dt, "delay_steps": nd, "steps": steps, "r": r,
           "finite": bool(np.all(np.isfinite(acc))),
           "rate": float(counts.sum() / (T * N * steps * dt))}
    if rec:
        out.update(raster=raster, trace=trace, x=np.full(rec, xval), gamma=G[0].copy())
    return out


def simulate_spiking(model, *, size: int, trials: int, seed: int, backend: str = "cpu",
                     **kw) -> dict[str, Any]:
    """``simulate`` keys (``bias``, ``std``, ``error`` and their SEMs) for the spiking net."""
    from .network import error_summary

    allowed = {"t_max", "t_burn", "dt", "rule", "lambda_v"}  # rule, lambda_v: model params
    for k in kw:
        if k not in allowed:
            raise ParamError(k, "a spiking simulate option (" + ", ".join(sorted(allowed)) + ")",
                             kw[k])
    res = run_spiking_network(model, size, trials, seed, backend=backend, **kw)
    out = error_summary(res)
    out.update(dt=res["dt"], delay_steps=res["delay_steps"], steps=res["steps"],
               trials=trials, size=size, engine="spiking", rule=kw.get("rule", "one"),
               rate=res["rate"])
    return out
