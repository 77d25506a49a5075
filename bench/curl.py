"""Curl descent: the Fig. 3a sweep's training rate against a plain numpy loop, and the
random-matrix boundary on a 500 x 500 grid.

* **Sweep** (issue 11 item 6): 20 compression ratios ``c`` in logspace(-1, 2), ``N + K = 219``,
  21 ``alpha_h`` x 10 seeds = 210 configurations per shape, P = 250, minibatch 10,
  normalised (published settings). The engine trains each shape's 210 configurations at
  once (:func:`meanfield.sims.engines.learning.student_teacher.train`); the baseline is the
  published approach, one network at a time with numpy
  (:func:`~meanfield.sims.engines.learning.student_teacher.reference_train`), timed in the
  same run on the same shapes (mean per epoch), interleaved with the engine shape by
  shape. Setup and error recording are differenced out (``t(E epochs) - t(2 epochs)``).
  Reported: seconds per configuration-epoch (ratio = the speed-up), the useful FLOP rate
  ``4 K N P`` per configuration-epoch (what the two-product update costs) against the
  machine's dgemm rate on the engine's threads (and on all cores) in the same process,
  and the FLOPs actually executed: linear networks take the rank-one epoch
  (``student_teacher.LIN_SOURCE``, ~``(6 K N + 4 B N) P / B``), and the general
  two-product path (tanh, relu) is timed too.
* **Boundary grid**: ``lambda_min`` of ``A/s^2`` on ``c`` in logspace(-3, 2, 500) x ``alpha``
  in linspace(0, 1, 500), for each layer (:func:`meanfield.models.curl_descent.boundary_grid`:
  one batched companion-matrix eigenvalue call), against the 500 per-``c`` Brent roots of
  the lower edge (the threshold machinery) as the baseline.
"""

from __future__ import annotations

import time

import numpy as np

from ._timing import Row, race

__all__ = ["run", "sweep_shapes"]


def sweep_shapes(total: int = 219, points: int = 20) -> list[tuple[int, int]]:
    """``(N, K)`` of the Fig. 3a grid: ``c = N/K`` in logspace(-1, 2), ``N + K = total``."""
    out = []
    for c in np.logspace(-1, 2, points):
        n = int(round(total * c / (1 + c)))
        out.append((max(1, n), max(1, total - n)))
    return out


def _dgemm_gflops(threads: int | None = None) -> float:
    """numpy's dgemm rate (1500^3), with BLAS limited to ``threads`` if given."""
    from contextlib import nullcontext

    from meanfield.sims.engines.learning import student_teacher as st

    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((1500, 1500)), rng.standard_normal((1500, 1500))
    lim = (st._blas_controller().limit(limits=threads, user_api="blas") if threads
           else nullcontext())
    with lim:
        t = race({"g": lambda: a @ b}, warmup=1, repeats=3, budget_s=2.0)["g"]
    return 2 * 1500**3 / t / 1e9


def _shape_times(st, b, epochs: int, bsz: int, lin_epochs: int) -> dict[str, float]:
    """Per-shape seconds, engine and baseline interleaved (:func:`race`, the same load):
    ``lin``/``gen``: ``lin_epochs - 2`` / ``epochs - 2`` epochs of the whole batch (linear
    rank-one / general path), setup and error recording differenced out (best of
    ``lin_epochs`` or ``epochs`` minus best of 2 epochs: both record at epochs 0, 1 and the
    last, and stream ``q`` over one epoch; the linear path needs more epochs to stand out of
    the setup's noise);
    ``base``/``base1``: one epoch of the plain loop (default / single-threaded BLAS)."""

    def eng(e, linear):
        def f():
            st.LINEAR_RANK_ONE = linear
            try:
                st.train(b, epochs=e, record=2, tail=1)
            finally:
                st.LINEAR_RANK_ONE = True
        return f

    def base():
        st.reference_train(b.w1[0], b.w2[0], b.t1[0], b.t2[0], b.d1[0], b.d2[0], b.x,
                           epochs=2, batch_size=bsz)

    def base1():
        with st._blas_controller().limit(limits=1, user_api="blas"):
            base()

    t = race({"l1": eng(2, True), "lE": eng(lin_epochs, True), "g1": eng(2, False),
              "gE": eng(epochs, False), "b": base, "b1": base1},
             warmup=1, repeats=3, budget_s=1.0)
    return {"lin": max(t["lE"] - t["l1"], 1e-9) / (lin_epochs - 2),
            "gen": max(t["gE"] - t["g1"], 1e-9) / (epochs - 2),
            "base": t["b"] / 2, "base1": t["b1"] / 2}


def run(quick: bool = False) -> list[Row]:
    from meanfield.sims.engines.learning import student_teacher as st

    from meanfield.models.curl_descent import boundary_grid, lambda_min_theory

    shapes = sweep_shapes()
    if quick:
        shapes = shapes[::5]
    alphas = np.linspace(0, 1, 21)
    seeds = np.arange(10)
    epochs, lin_epochs = (3, 12) if quick else (5, 22)
    p, bsz = 250, 10
    t_lin = t_gen = 0.0
    t_base = t_base1 = 0.0
    config_epochs = 0
    useful = executed_lin = 0.0
    for n, k in shapes:
        ah = np.repeat(alphas, seeds.size)
        sd = np.tile(seeds, alphas.size)
        b = st.make_batch(n, k, ah, 0.0, sd, samples=p)
        t = _shape_times(st, b, epochs, bsz, lin_epochs)  # seconds per epoch of the batch
        t_lin += t["lin"]
        t_gen += t["gen"]
        t_base += t["base"]
        t_base1 += t["base1"]
        config_epochs += ah.size
        useful += ah.size * 4.0 * k * n * p
        executed_lin += ah.size * (p // bsz) * (6.0 * k * n + 4.0 * bsz * n)
    ns = len(shapes)
    per_lin, per_gen = t_lin / config_epochs, t_gen / config_epochs
    tb, tb1 = t_base / ns, t_base1 / ns  # mean per epoch over the same shapes
    import numba

    nt = numba.get_num_threads()  # the engine's threads
    gf_all = _dgemm_gflops()
    gf = _dgemm_gflops(nt)
    r_lin, r_gen = useful / t_lin / 1e9, useful / t_gen / 1e9
    x_lin = executed_lin / t_lin / 1e9
    base_rate = useful / config_epochs / tb / 1e9
    full = 20 * 210 * 1e5 * per_lin
    rows = [Row(
        f"Fig 3a sweep, {ns} shapes x 210 configs (per configuration-epoch)", per_lin,
        "plain numpy loop, one network at a time, same shapes (per epoch)", tb,
        notes=f"linear rank-one epoch: {r_lin:.1f} GFLOP/s useful (4KNP, the two-product "
              f"update's count), {r_lin / gf:.0%} of dgemm on the engine's {nt} "
              f"thread(s) ({gf:.0f} GFLOP/s; {gf_all:.0f} on all cores); executed "
              f"{x_lin:.1f} GFLOP/s (~(6KN + 4BN) P/B); baseline {base_rate:.1f} GFLOP/s, "
              f"{1 / tb:.0f} epochs/s; speed-up {tb / per_lin:.1f}x; full sweep "
              f"(1e5 epochs, this process's threads) ~{full / 3600:.1f} h",
    ), Row(
        "Fig 3a sweep (per configuration-epoch), same", per_lin,
        "the plain loop with single-threaded BLAS", tb1,
        notes=f"speed-up {tb1 / per_lin:.1f}x against the loop's best setting "
              f"({1 / tb1:.0f} epochs/s)",
    ), Row(
        "Fig 3a sweep, general two-product path (tanh/relu; per configuration-epoch)",
        per_gen, "plain numpy loop, same shapes (per epoch)", tb,
        notes=f"{r_gen:.1f} GFLOP/s useful, {r_gen / gf:.0%} of dgemm (rank-B products, "
              f"B = {bsz}, plus the D1 columns of the tracked norm); speed-up "
              f"{tb / per_gen:.1f}x",
    )]
    # 500 x 500 boundary grid
    m = 200 if quick else 500
    cs = np.logspace(-3, 2, m)
    al = np.linspace(0, 1, m)
    for layer in ("hidden", "readout"):
        boundary_grid(cs[:3, None], al[None, :3], layer)  # derive and compile
        t0 = time.perf_counter()
        boundary_grid(cs[:, None], al[None, :], layer)
        tg = time.perf_counter() - t0
        key = "alpha_h" if layer == "hidden" else "alpha_r"
        t0 = time.perf_counter()
        sub = cs[:: max(1, m // 25)]
        for c in sub:
            lambda_min_theory(c, **{key: 0.3})
        te = (time.perf_counter() - t0) / sub.size * m * m
        rows.append(Row(f"{layer} boundary grid {m}x{m} (lambda_min at every point)", tg,
                        "branch-scan lower edge at every point (extrapolated)", te,
                        notes="edge polynomial roots, one batched eigvals call"))
    return rows
