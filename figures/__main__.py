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
    return p


def _header(name: str, seconds: float) -> str:
    from meanfield import figures

    doc = (figures.FIGURES[name].__doc__ or "").strip().splitlines()
    first = doc[0] if doc else ""
    return f"{name}  [{seconds:.1f} s]\n  {first}"


def demo(quick: bool = True, out: str | Path = "figures/out", stream=None) -> float:
    """Draw the demo figures, print their summaries; the total wall time."""
    from meanfield.figures._io import git_sha

    import meanfield
    from meanfield import figures

    stream = stream or sys.stdout
    mode = "quick" if quick else "full"
    print(f"meanfield {meanfield.__version__} (git {git_sha()[:12]}): demo, {mode} figures "
          f"-> {out}", file=stream, flush=True)
    t0 = time.perf_counter()
    for name in figures.DEMO:
        ds, paths, seconds = figures.build(name, quick=quick, out=out)
        print("", file=stream)
        print(_header(name, seconds), file=stream)
        summary = getattr(figures.FIGURES[name], "summary", None)
        if summary is not None:
            print(summary(ds), file=stream)
        print("  wrote " + ", ".join(paths.values()), file=stream, flush=True)
    total = time.perf_counter() - t0
    print(f"\ntotal {total:.1f} s", file=stream, flush=True)
    return total


def main(argv: list[str] | None = None) -> int:
    from meanfield import figures

    args = _parser().parse_args(argv)
    if args.name == "demo":
        demo(quick=not args.full, out=args.out)
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
