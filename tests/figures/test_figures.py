"""Smoke test of the figure machinery: one cheap figure in quick mode, into a tmp dir."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import xarray as xr

import meanfield
from meanfield import figures

CHEAP = "fig02_phase_p3_mean"  # thresholds only: no AMP simulation


def test_registry_lists_the_figures_with_compute_and_plot():
    assert set(figures.DEMO) <= set(figures.FIGURES)
    for name, mod in figures.FIGURES.items():
        assert name.startswith("fig")
        assert callable(mod.compute) and callable(mod.plot) and callable(mod.params)
        assert isinstance(mod.params(True), dict)


def test_quick_figure_writes_png_nc_json(tmp_path):
    paths = figures.run(CHEAP, quick=True, out=tmp_path)
    assert set(paths) == {"png", "nc", "json"}
    for kind, path in paths.items():
        assert path.endswith(f"{CHEAP}.{kind}")
        assert (tmp_path / f"{CHEAP}.{kind}").stat().st_size > 0
    meta = json.loads((tmp_path / f"{CHEAP}.json").read_text())
    assert meta["version"] == meanfield.__version__
    assert meta["params"] == json.loads(json.dumps(figures.FIGURES[CHEAP].params(True)))
    assert meta["quick"] is True
    assert isinstance(meta["git_sha"], str) and meta["git_sha"]
    with xr.open_dataset(tmp_path / f"{CHEAP}.nc", engine="scipy") as ds:
        assert ds.attrs["figure"] == CHEAP
        assert (ds.status.values == "ok").all()
    assert (tmp_path / f"{CHEAP}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_unknown_figure():
    with pytest.raises(KeyError, match="unknown figure"):
        figures.run("fig99_nope", quick=True)
    r = subprocess.run([sys.executable, "-m", "meanfield.figures", "fig99_nope"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert r.stderr.strip().startswith("error: unknown figure") and len(r.stderr.splitlines()) == 1
