"""Rate predictive-coding network (N = 2000, 32 trials, dense disorder, shared network)
against the dgemm it is built on, measured in the same process.

Time per neuron-trial-step of ``run_rate_network`` (setup differenced out:
``(t(K1 steps) - t(K0 steps)) / (K1 - K0)``) against one ``(T, N) @ (N, N)``
matrix product per step (``2 N`` flops per neuron-trial); the ratio is the
fraction of the dgemm rate the engine reaches. Brian2: ``make bench-brian2``
(``bench/brian2_network.py``, its own environment).
"""

from __future__ import annotations

import time

import numpy as np

from ._timing import Row, race

__all__ = ["run"]


def run(quick: bool = False) -> list[Row]:
    from meanfield.sims.engines.network import run_rate_network

    import meanfield

    N, T = (500, 8) if quick else (2000, 32)
    m = meanfield.get_model("predictive_coding")(b=10, g=1.5, n=N)
    dt = 0.005
    k0, k1 = 20, 120

    def go(k):
        return lambda: run_rate_network(m, N, T, 0, t_max=k * dt, t_burn=0.0, dt=dt,
                                        network="shared")

    t = race({"a": go(k0), "b": go(k1)}, warmup=1, repeats=2, budget_s=5.0)
    per_step = max(t["b"] - t["a"], 1e-12) / (k1 - k0)
    rng = np.random.default_rng(0)
    A, B = rng.standard_normal((T, N)), rng.standard_normal((N, N))
    t0 = time.perf_counter()
    gemm = race({"g": lambda: A @ B}, warmup=2, repeats=5, budget_s=2.0)["g"]
    _ = time.perf_counter() - t0
    gflops = 2.0 * T * N * N / gemm / 1e9
    per_nts = per_step / (N * T)
    return [Row(
        f"rate network step N={N}, {T} trials (per neuron-trial-step)", per_nts,
        "dgemm (T,N)@(N,N) per neuron-trial", gemm / (N * T),
        notes=f"dgemm {gflops:.1f} GFLOP/s; engine reaches {gemm / per_step:.0%} of it "
              "(includes noise generation and the elementwise update)",
    )]
