"""Phase diagrams from traced boundaries (``meanfield phase``) against the goals of issue 9.

Discrete priors, where state evolution is a quadrature and the former grid
method crawled (a 16 x 16 Rademacher diagram took 83-130 s on 2 cores):
:func:`meanfield.api.phase` traces the algorithmic and dynamic folds and the
information crossing along ``x`` by two-parameter continuation
(:mod:`meanfield.solvers.phase_curves`) and fills the regions from them.

Rows (the baseline column is the issue's goal, so ``ratio <= 1`` meets it):

- order 3, Rademacher, ``delta x mean``, 256 x 256, warm (this process has
  derived and compiled the system once); goal 10 s;
- the same at 64 x 64 *cold*: a fresh process with empty generated-code and
  numba caches (sympy derivation and every compilation included); goal 30 s;
- sparse Rademacher, ``delta x rho``, the same two measurements;
- rank 2 (Rademacher, ``delta x mean``), the same two measurements: the goals
  are missed (a rank-2 Jacobian is nine 41 x 41 Price quadratures, 1.6 ms a
  call, and a branch-point edge costs a margin root plus branch switching per
  column; see the issue-9 note).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from ._timing import Row

__all__ = ["run"]

CASES = {
    "rademacher": ({"order": 3, "prior": "rademacher"}, "mean", (0.0, 0.4)),
    "sparse_rademacher": ({"order": 3, "prior": "sparse_rademacher"}, "rho", (0.3, 1.0)),
    "rademacher_rank2": ({"order": 3, "prior": "rademacher", "rank": 2}, "mean", (0.0, 0.4)),
}
YS = (0.005, 0.5)

_COLD = r"""
import json, sys, time
t0 = time.perf_counter()
import numpy as np
import meanfield
params, x, lo, hi, n, ylo, yhi = json.loads(sys.argv[1])
ds = meanfield.api.phase("tensor", params, x=x, xs=np.linspace(lo, hi, n),
                         ys=np.linspace(ylo, yhi, n))
print(json.dumps({"seconds": time.perf_counter() - t0,
                  "statuses": sorted(set(ds.status.values.tolist()))}))
"""


def _cold(params, x, lo, hi, n) -> tuple[float, str]:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "MEANFIELD_CACHE_DIR": os.path.join(tmp, "gen"),
               "NUMBA_CACHE_DIR": os.path.join(tmp, "numba")}
        arg = json.dumps([params, x, lo, hi, n, *YS])
        out = subprocess.run([sys.executable, "-c", _COLD, arg], env=env, capture_output=True,
                             text=True, timeout=1800, check=False)
    if out.returncode != 0:
        return float("nan"), out.stderr.strip().splitlines()[-1] if out.stderr else "failed"
    r = json.loads(out.stdout.strip().splitlines()[-1])
    return float(r["seconds"]), ",".join(r["statuses"])


def run(quick: bool = False) -> list[Row]:
    import meanfield

    n_warm = 64 if quick else 256
    n_cold = 32 if quick else 64
    rows = []
    for name, (params, x, (lo, hi)) in CASES.items():
        xs = np.linspace(lo, hi, n_warm)
        ys = np.linspace(*YS, n_warm)
        meanfield.api.phase("tensor", params, x=x, xs=xs[:4], ys=ys[:8])  # derive + compile
        t0 = time.perf_counter()
        ds = meanfield.api.phase("tensor", params, x=x, xs=xs, ys=ys)
        t_warm = time.perf_counter() - t0
        counts = {k: int((ds.region.values == v).sum())
                  for v, k in ((0, "easy"), (1, "hard"), (2, "impossible"))}
        full = int(ds.attrs.get("full_continuations", -1))
        rows.append(Row(
            f"phase {name} {n_warm}x{n_warm}, traced (warm)", t_warm,
            "goal of issue 9 (10 s)", 10.0,
            f"order 3, {x} in [{lo}, {hi}] x delta in [{YS[0]}, {YS[1]}]; regions {counts}; "
            f"{full} of {n_warm} columns needed a full one-parameter continuation",
        ))
        t_cold, st = _cold(params, x, lo, hi, n_cold)
        rows.append(Row(
            f"phase {name} {n_cold}x{n_cold}, traced (cold process)", t_cold,
            "goal of issue 9 (30 s)", 30.0,
            "fresh process, empty MEANFIELD_CACHE_DIR and NUMBA_CACHE_DIR: import, sympy "
            f"derivation and every compilation included; column statuses {st}",
        ))
    return rows
