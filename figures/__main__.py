"""``python -m meanfield.figures NAME [--quick]`` and ``python -m meanfield.figures demo [--full]``.

``NAME`` draws one figure (full size unless ``--quick``). ``demo`` draws the
demo set (quick unless ``--full``) and prints a plain-text summary: theory
against simulation with standard errors, and the thresholds. Files go to
``--out`` (default ``figures/out``). An unknown name prints one line and exits
with status 2.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

EXIT_BAD_INPUT = 2


def _parser() -> argparse.ArgumentParser:
    from meanfield import figures

    p = argparse.ArgumentParser(
        prog="python -m meanfield.figures",
        description="Draw the paper figures. Names: demo, " + ", ".join(figures.FIGURES),
    )
    p.add_argument("name", metavar="NAME", help="a figure name, or 'demo'")
    p.add_argument("--quick", action="store_true", help="small, fast version")
    p.add_argument("--full", action="store_true", help="demo: full-size figures")
    p.add_argument("--out", default=str(figures.DEFAULT_OUT), help="output folder")
    p.add_argument("--jobs", type=int, default=None,
                   help="demo: worker processes (default 2, or 1 on one core)")
    return p


def _header(name: str, seconds: float) -> str:
    from meanfield import figures

    doc = (figures.FIGURES[name].__doc__ or "").strip().splitlines()
    first = doc[0] if doc else ""
    return f"{name}  [{seconds:.1f} s]\n  {first}"


def demo(quick: bool = True, out: str | Path = "figures/out", stream=None,
         jobs: int | None = None) -> float:
    """Draw the demo figures, print their summaries (in the demo's order); the total wall time.

    The figures are independent, so ``jobs`` worker processes (default: two, or one on a
    single core) draw them side by side; ``jobs=1`` draws them in this process.
    """
    import os

    from meanfield.figures._io import git_sha

    import meanfield
    from meanfield import figures

    stream = stream or sys.stdout
    mode = "quick" if quick else "full"
    jobs = jobs or min(2, os.cpu_count() or 1)
    print(f"meanfield {meanfield.__version__} (git {git_sha()[:12]}): demo, {mode} figures "
          f"-> {out} ({jobs} worker{'s' if jobs > 1 else ''})", file=stream, flush=True)
    t0 = time.perf_counter()

    def report(name, summary, paths, seconds):
        print("", file=stream)
        print(_header(name, seconds), file=stream)
        if summary is not None:
            # every summary line indented under its figure's header
            print("\n".join(ln if ln.startswith("  ") or not ln else "  " + ln
                            for ln in summary.splitlines()), file=stream)
        print("  wrote " + ", ".join(paths.values()), file=stream, flush=True)

    if jobs <= 1:
        for name in figures.DEMO:
            report(name, *figures.build_summary(name, quick, str(out)))
    else:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        # one thread per worker: the workers already fill the cores
        for var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            os.environ.setdefault(var, "1")
        with ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn")) as pool:
            # longest first (each figure's QUICK_SECONDS hint), reported in the demo's order
            cost = {n: getattr(figures.FIGURES[n], "QUICK_SECONDS", 10) for n in figures.DEMO}
            futures = {n: pool.submit(figures.build_summary, n, quick, str(out))
                       for n in sorted(figures.DEMO, key=lambda n: -cost[n])}
            for name in figures.DEMO:
                report(name, *futures[name].result())
    total = time.perf_counter() - t0
    print(f"\ntotal {total:.1f} s", file=stream, flush=True)
    return total


def main(argv: list[str] | None = None) -> int:
    from meanfield import figures

    args = _parser().parse_args(argv)
    if args.name == "demo":
        if args.jobs is not None and args.jobs < 1:
            print(f"error: --jobs must be an integer in [1, inf); got {args.jobs}",
                  file=sys.stderr)
            return EXIT_BAD_INPUT
        demo(quick=not args.full, out=args.out, jobs=args.jobs)
        return 0
    if args.name not in figures.FIGURES:
        print(f"error: unknown figure {args.name!r}; choose from demo, "
              + ", ".join(figures.FIGURES), file=sys.stderr)
        return EXIT_BAD_INPUT
    _, paths, seconds = figures.build(args.name, quick=args.quick, out=args.out)
    for kind, path in paths.items():
        print(f"{kind}: {path}")
    print(f"({seconds:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
