"""Predictive-coding networks against Brian2, in one process (``make bench-brian2``).

Runs in its own environment (``.venv-brian2``: the package plus the newest Brian2 that
installs; Brian2 2.9 needs ``numpy < 2.4``, so the package's numpy is not pinned for it).

* Rate network (Kadmon et al. 2020; digest §1.2): N = 2000, dense disorder ``g J``
  (``J_ij ~ N(0, 1/N)``), balance through ``xhat``, private noise. Ours:
  ``run_rate_network`` with 32 trials sharing one network (a ``(32, N) @ (N, N)`` product
  per step); Brian2: the same equations for one trial, the disorder as an all-to-all
  ``Synapses`` summed variable, ``xhat`` as a summed variable into a one-neuron readout
  linked back. Time per neuron-(trial-)step, setup differenced out:
  ``(t(K1) - t(K0)) / (K1 - K0)``; Brian2 on fewer steps.
* Spiking network (Boerlin et al. 2013; ``sims.engines.spiking``): N = 1000, w = +-1,
  ``Gamma = 2 w / b`` with ``b = N / 4``, all suprathreshold neurons fire (Brian2 has no
  one-spike-per-step rule, brian2 #193; ours run with ``rule='all'`` for the same dynamics),
  membrane noise ``sigma T``. Ours: 32 trials; Brian2: one trial, the fast reset
  ``Omega_f = Gamma Gamma^T`` as all-to-all on-spike synapses.

Prints one JSON document (per neuron-step times, ratios, Brian2's codegen target and the
dgemm reference) and a short table.

Measured (2 shared cores under load ~13, so absolute times are inflated several-fold;
Brian2 2.9.0, cython target, OpenBLAS one thread): rate N = 2000, 32 trials: ours 1.86 us
per neuron-trial-step, Brian2 109 us per neuron-step: 59x; ours reaches 26 % of the
same-process dgemm rate. Spiking N = 1000 (both ~490 spikes per neuron per tau: the
all-fire rule ping-pongs): ours 90 ns, Brian2 5.7 us: 63x. ``--quick`` (N = 500 / 300,
8 trials): 18x / 19x (Brian2's per-step overhead is amortised over fewer neurons).
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np


def _diff(run, k0: int, k1: int, repeats: int = 2) -> float:
    """Per-step seconds: best of ``repeats`` of ``run(k1) - run(k0)``."""
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        run(k0)
        a = time.perf_counter() - t0
        t0 = time.perf_counter()
        run(k1)
        b = time.perf_counter() - t0
        best = min(best, max(b - a, 1e-12) / (k1 - k0))
    return best


def ours_rate(N: int, T: int, dt: float) -> float:
    from meanfield.sims.engines.network import run_rate_network

    import meanfield

    m = meanfield.get_model("predictive_coding")(b=10, g=1.5, n=N)

    def run(k):
        run_rate_network(m, N, T, 0, t_max=k * dt, t_burn=0.0, dt=dt, network="shared",
                         init="random")

    run(5)  # compile
    return _diff(run, 20, 120) / (N * T)


def brian_rate(N: int, dt_: float, k0: int, k1: int) -> float:
    import brian2 as b2

    b2.prefs.codegen.target = TARGET
    rng = np.random.default_rng(0)
    w_ = rng.standard_normal(N)
    J = rng.standard_normal((N, N)) / np.sqrt(N)
    tau = 1 * b2.second
    b2.start_scope()
    b2.defaultclock.dt = dt_ * b2.second
    eqs = """
    dh/dt = (-h + bb * w * (xin - xhat) + rec) / tau + sigma * xi * tau**-0.5 : 1
    rec : 1
    w : 1 (constant)
    xhat : 1 (linked)
    """
    G = b2.NeuronGroup(N, eqs, method="euler",
                       namespace=dict(bb=10.0, xin=0.2, sigma=0.75, tau=tau))
    G.w = w_
    R = b2.NeuronGroup(1, "xh : 1")
    S = b2.Synapses(G, R, "xh_post = w_pre * tanh(h_pre) / N_pre : 1 (summed)")
    S.connect()
    G.xhat = b2.linked_var(R, "xh", index=np.zeros(N, dtype=int))
    D = b2.Synapses(G, G, "Jw : 1\nrec_post = g * Jw * tanh(h_pre) : 1 (summed)",
                    namespace=dict(g=1.5))
    D.connect()
    D.Jw = J[D.j[:], D.i[:]]
    net = b2.Network(G, R, S, D)

    def run(k):
        net.run(k * dt_ * b2.second)

    run(2)  # code generation and compilation
    return _diff(run, k0, k1, repeats=1) / N


def ours_spiking(N: int, T: int, dt: float) -> tuple[float, float]:
    from meanfield.sims.engines.spiking import run_spiking_network

    import meanfield

    m = meanfield.get_model("predictive_coding")(engine="spiking", weights="binary",
                                                 b=N / 4, n=N, sigma=0.2)

    out = {}

    def run(k):
        out["rate"] = run_spiking_network(m, N, T, 0, t_max=k * dt, t_burn=0.0, dt=dt,
                                          rule="all")["rate"]

    run(5)
    return _diff(run, 200, 2200) / (N * T), out["rate"]


def brian_spiking(N: int, dt_: float, k0: int, k1: int) -> tuple[float, float]:
    import brian2 as b2

    b2.prefs.codegen.target = TARGET
    rng = np.random.default_rng(0)
    gam = 2.0 * rng.choice([-1.0, 1.0], size=N) / (N / 4)
    b2.start_scope()
    b2.defaultclock.dt = dt_ * b2.second
    tau = 1 * b2.second
    eqs = """
    dV/dt = (-V + G_ * xin) / tau + sig * T_ * xi * tau**-0.5 : 1
    dr/dt = -r / tau : 1
    G_ : 1 (constant)
    T_ : 1 (constant)
    """
    P = b2.NeuronGroup(N, eqs, threshold="V > T_", reset="r += 1", method="euler",
                       namespace=dict(xin=0.2, sig=0.2, tau=tau))
    P.G_ = gam
    P.T_ = gam**2 / 2
    S = b2.Synapses(P, P, "Om : 1", on_pre="V_post -= Om")
    S.connect()
    S.Om = gam[S.i[:]] * gam[S.j[:]]
    M = b2.SpikeMonitor(P, record=False)
    net = b2.Network(P, S, M)
    out = {}

    def run(k):
        n0 = int(M.num_spikes)
        net.run(k * dt_ * b2.second)
        out["rate"] = (int(M.num_spikes) - n0) / (N * k * dt_)

    run(2)
    t = _diff(run, k0, k1, repeats=1) / N
    return t, out["rate"]


def dgemm_per_neuron_trial(N: int, T: int) -> float:
    rng = np.random.default_rng(0)
    A, B = rng.standard_normal((T, N)), rng.standard_normal((N, N))
    best = np.inf
    for _ in range(5):
        t0 = time.perf_counter()
        A @ B
        best = min(best, time.perf_counter() - t0)
    return best / (N * T)


TARGET = "cython"


def main(argv: list[str]) -> int:
    global TARGET
    quick = "--quick" in argv
    if "--numpy" in argv:
        TARGET = "numpy"
    Nr, Ns, T = (500, 300, 8) if quick else (2000, 1000, 32)
    res: dict = {"brian2_target": TARGET}
    import brian2

    res["brian2_version"] = brian2.__version__
    res["numpy_version"] = np.__version__
    res["rate"] = {"N": Nr, "trials": T}
    res["rate"]["ours_s"] = ours_rate(Nr, T, 0.005)
    res["rate"]["dgemm_s"] = dgemm_per_neuron_trial(Nr, T)
    res["rate"]["brian2_s"] = brian_rate(Nr, 0.005, 5, 25 if quick else 45)
    res["rate"]["speedup"] = res["rate"]["brian2_s"] / res["rate"]["ours_s"]
    res["rate"]["dgemm_fraction"] = res["rate"]["dgemm_s"] / res["rate"]["ours_s"]
    res["spiking"] = {"N": Ns, "trials": T}
    res["spiking"]["ours_s"], res["spiking"]["ours_rate_per_neuron"] = ours_spiking(Ns, T, 1e-3)
    bs, rate = brian_spiking(Ns, 1e-3, 100, 1100 if quick else 2100)
    res["spiking"]["brian2_s"] = bs
    res["spiking"]["brian2_rate_per_neuron"] = rate
    res["spiking"]["speedup"] = bs / res["spiking"]["ours_s"]
    print(json.dumps(res, indent=1))
    for k in ("rate", "spiking"):
        r = res[k]
        print(f"{k:8s} N={r['N']:5d}: ours {r['ours_s'] * 1e9:9.1f} ns/neuron-trial-step, "
              f"Brian2 ({TARGET}) {r['brian2_s'] * 1e9:9.1f} ns/neuron-step, "
              f"{r['speedup']:.0f}x faster", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
