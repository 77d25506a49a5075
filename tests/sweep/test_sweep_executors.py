"""Serial, process-pool and dask executors give identical datasets."""

from __future__ import annotations

import pytest
import xarray as xr
from _sweep_toy import GRID, point

from meanfield.sweep import sweep

KW = {"point_fn": point, "seed": 3, "progress": False}


@pytest.fixture(scope="module")
def serial():
    return sweep("toy", {"c": 1.0}, GRID, executor="serial", **KW)


def test_local_pool_matches_serial(serial, tmp_path):
    local = sweep("toy", {"c": 1.0}, GRID, executor="local", workers=2, **KW)
    xr.testing.assert_identical(local, serial)
    stored = sweep(
        "toy", {"c": 1.0}, GRID, executor="local", workers=2, store=tmp_path / "s.zarr", **KW
    )
    xr.testing.assert_identical(stored, serial)


def test_dask_local_cluster_matches_serial(serial):
    pytest.importorskip("distributed")
    ds = sweep("toy", {"c": 1.0}, GRID, executor="dask", workers=2, **KW)
    xr.testing.assert_identical(ds, serial)
