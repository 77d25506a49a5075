"""``python -m bench [--quick] [--json] [--only se,amp]``: run the benchmarks, print one table."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

from ._timing import table

SUITES = ("se", "phase", "phase_curves", "amp", "network", "fa", "curl")


def _suite(name: str):
    if name == "se":
        from . import se

        return se.run
    if name == "phase":
        from . import phase

        return phase.run
    if name == "phase_curves":
        from . import phase_curves

        return phase_curves.run
    if name == "amp":
        from . import amp

        return amp.run
    if name == "network":
        from . import network

        return network.run
    if name == "curl":
        from . import curl

        return curl.run
    if name == "fa":
        from . import fa

        return fa.run
    raise ValueError(f"unknown benchmark {name!r}; choose from {', '.join(SUITES)}")


def _context() -> dict:
    import numba
    import numpy
    import scipy

    return {
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "numba": numba.__version__,
        "cpu_count": os.cpu_count(),
        "numba_threads": numba.get_num_threads(),
        "machine": platform.machine(),
    }


def _cpu_seconds() -> tuple[float, float] | None:
    """Busy CPU seconds of the whole machine (Linux ``/proc/stat``) and of this process."""
    import resource

    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    busy = (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return busy, ru.ru_utime + ru.ru_stime


def _threading_layer() -> str:
    import numba

    try:
        return numba.threading_layer()
    except ValueError:  # no parallel function has run
        return "unset"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="smaller sizes (about a minute)")
    ap.add_argument("--json", action="store_true", help="print JSON instead of the table")
    ap.add_argument(
        "--only", default=",".join(SUITES), help="comma-separated: " + ", ".join(SUITES)
    )
    args = ap.parse_args(argv)
    names = [s.strip() for s in args.only.split(",") if s.strip()]
    runners = [(n, _suite(n)) for n in names]

    ctx = _context()
    ctx["quick"] = args.quick
    t0 = time.perf_counter()
    # the parallel (load-sensitive) AMP kernels run first, the table keeps SUITES order
    results = {}
    ctx["other_cores"] = {}
    for name, fn in sorted(runners, key=lambda r: r[0] != "amp"):
        if not args.json:
            print(f"running {name} ...", file=sys.stderr, flush=True)
        c0, w0 = _cpu_seconds(), time.perf_counter()
        results[name] = fn(quick=args.quick)
        c1, w1 = _cpu_seconds(), time.perf_counter()
        if c0 and c1:  # cores kept busy by other processes, on average
            ctx["other_cores"][name] = max(0.0, ((c1[0] - c0[0]) - (c1[1] - c0[1])) / (w1 - w0))
    rows = [row for name, _ in runners for row in results[name]]
    ctx["wall_s"] = time.perf_counter() - t0
    ctx["threading_layer"] = _threading_layer()
    ctx["OMP_WAIT_POLICY"] = os.environ.get("OMP_WAIT_POLICY", "")

    if args.json:
        print(json.dumps({"context": ctx, "rows": [r.to_dict() for r in rows]}, indent=2))
        return 0
    omp = ctx["OMP_WAIT_POLICY"] or "default"
    print(
        f"meanfield benchmarks{' (quick)' if args.quick else ''}: {ctx['cpu_count']} CPUs, "
        f"numba {ctx['numba']} with {ctx['numba_threads']} threads "
        f"({ctx['threading_layer']} layer, OMP_WAIT_POLICY {omp}), numpy {ctx['numpy']}, "
        f"scipy {ctx['scipy']}; best of repeats, compile and warm-up excluded"
    )
    print(table(rows))
    other = ctx["other_cores"]
    busy = ", ".join(f"{v:.2f} during {k}" for k, v in other.items()) or "unknown"
    print(f"\nwall {ctx['wall_s']:.0f} s; cores kept busy by other processes: {busy}")
    if other.get("amp", 0.0) > 0.25:
        print(
            "warning: other processes shared the cores during the AMP rows, so the parallel "
            "kernels' threads waited on each other (with OpenMP's default spinning wait, up to "
            "100x slower): those rows are not meaningful; rerun on an idle machine."
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
