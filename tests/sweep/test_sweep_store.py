"""zarr store: template, point-by-point writes, resume after SIGKILL, refusal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from _sweep_toy import GRID, point, slow_point

from meanfield.sweep import sweep

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def _plain(ds: xr.Dataset) -> xr.Dataset:
    return ds.drop_attrs(deep=False)


def test_store_matches_memory_and_a_rerun_computes_nothing(tmp_path):
    log = tmp_path / "log"
    base = {"sleep": 0.0, "log": str(log)}
    mem = sweep("toy", base, GRID, executor="serial", point_fn=slow_point, progress=False)
    log.unlink()
    store = tmp_path / "s.zarr"
    first = sweep(
        "toy", base, GRID, executor="serial", point_fn=slow_point, store=store, progress=False
    )
    xr.testing.assert_identical(first, mem)
    assert len(_lines(log)) == 12
    raw = xr.open_zarr(store, consolidated=False, chunks=None)
    assert raw["done"].values.all()
    assert raw["x"].encoding["chunks"] == (1, 1)
    assert raw["y"].encoding["chunks"] == (1, 1, 3)
    assert raw["status"].dtype.kind == "U" and raw.attrs["config_hash"] == mem.attrs["config_hash"]
    again = sweep(
        "toy", base, GRID, executor="serial", point_fn=slow_point, store=store, progress=False
    )
    assert len(_lines(log)) == 12  # nothing recomputed
    xr.testing.assert_identical(again, mem)


def test_store_with_other_config_is_refused(tmp_path):
    store = tmp_path / "s.zarr"
    grid = {"a": [0.0], "b": [1.0, 2.0]}
    sweep("toy", {}, grid, executor="serial", point_fn=point, store=store, progress=False)
    for kwargs in (
        {"seed": 1},
        {"base": {"c": 2.0}},
        {"grid": {"a": [0.0], "b": [1.0]}},
        {"grid": {"b": [1.0, 2.0], "a": [0.0]}},
    ):
        kw = {
            "base": {},
            "grid": grid,
            "executor": "serial",
            "point_fn": point,
            "progress": False,
            **kwargs,
        }
        with pytest.raises(ValueError) as e:
            sweep("toy", kw.pop("base"), kw.pop("grid"), store=store, **kw)
        msg = str(e.value)
        assert "made with another configuration" in msg
        assert str(store) in msg and "\n" not in msg


def test_non_store_path_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(ValueError, match="is not a zarr store"):
        sweep(
            "toy",
            {},
            {"a": [0.0]},
            executor="serial",
            point_fn=point,
            store=tmp_path,
            progress=False,
        )


SCRIPT = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {here!r})
    from _sweep_toy import GRID, slow_point
    from meanfield.sweep import sweep
    sweep("toy", {base!r}, GRID, executor="serial", point_fn=slow_point, store={store!r},
          seed=5, progress=False)
    """
)


def test_resume_after_sigkill_recomputes_only_missing_points(tmp_path):
    log, store = tmp_path / "log", tmp_path / "s.zarr"
    base = {"sleep": 0.15, "log": str(log)}
    script = SCRIPT.format(here=str(HERE), base=base, store=str(store))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(HERE)])}
    proc = subprocess.Popen(
        [sys.executable, "-c", script], env=env, cwd=ROOT, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 60
    while len(_lines(log)) < 4:
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline, "the sweep subprocess made no progress"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL

    before = _lines(log)
    raw = xr.open_zarr(store, consolidated=False, chunks=None).load()
    done = raw["done"].values
    a, b = np.meshgrid(GRID["a"], GRID["b"], indexing="ij")
    done_pts = {f"{float(x)!r} {float(y)!r}" for x, y in zip(a[done], b[done], strict=True)}
    assert 3 <= len(done_pts) < 12
    assert done_pts <= set(before)  # a done point was computed
    assert len(set(before) - done_pts) <= 1  # at most the point in flight was lost
    assert (raw["status"].values[done] != "").all()

    resumed = sweep(
        "toy",
        base,
        GRID,
        executor="serial",
        point_fn=slow_point,
        store=store,
        seed=5,
        progress=False,
    )
    after = _lines(log)[len(before) :]
    assert not done_pts & set(after), "a point done before the kill was recomputed"
    assert len(after) == len(set(after)) == 12 - len(done_pts)
    assert xr.open_zarr(store, consolidated=False, chunks=None)["done"].values.all()

    clean = sweep(
        "toy",
        {"sleep": 0.0, "log": str(tmp_path / "log2")},
        GRID,
        executor="serial",
        point_fn=slow_point,
        seed=5,
        progress=False,
    )
    xr.testing.assert_identical(_plain(resumed), _plain(clean))
    assert (resumed["status"] != "").all()
