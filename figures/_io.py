"""Writing a figure's three outputs, and a blank Agg-backed matplotlib figure."""

from __future__ import annotations

import json
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

__all__ = ["new_figure", "save", "git_sha", "provenance"]


def new_figure(*args, **kwargs):
    """``(fig, axes)`` on an Agg canvas, without touching pyplot's global state."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(**kwargs.pop("fig_kw", {"layout": "constrained"}))
    FigureCanvasAgg(fig)
    axes = fig.subplots(*args, **kwargs)
    return fig, axes


def git_sha() -> str:
    """``git rev-parse HEAD`` of the repository holding this package, else ``"unknown"``."""
    try:
        r = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    sha = r.stdout.strip()
    return sha if r.returncode == 0 and sha else "unknown"


def provenance(name: str, params: dict[str, Any], *, quick: bool, seconds: float) -> dict[str, Any]:
    import meanfield

    return {
        "figure": name,
        "quick": bool(quick),
        "params": params,
        "version": meanfield.__version__,
        "git_sha": git_sha(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "runtime_s": round(float(seconds), 3),
        "python": platform.python_version(),
    }


def save(name: str, ds, fig, params: dict[str, Any], *, quick: bool, out: Path,
         seconds: float) -> dict[str, str]:
    """Write ``NAME.png``, ``NAME.nc`` and ``NAME.json`` under ``out``; their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    meta = provenance(name, params, quick=quick, seconds=seconds)
    paths = {kind: str(out / f"{name}.{kind}") for kind in ("png", "nc", "json")}
    fig.savefig(paths["png"], dpi=150)
    ds = ds.copy()
    ds.attrs.update(
        figure=name,
        quick=int(quick),
        version=meta["version"],
        git_sha=meta["git_sha"],
        params_json=json.dumps(params, sort_keys=True),
    )
    ds.to_netcdf(paths["nc"], engine="scipy")
    with open(paths["json"], "w") as f:
        json.dump(meta, f, indent=2, sort_keys=True)
        f.write("\n")
    return paths
