"""The dataset a sweep returns: shape, coordinates, attributes, statuses, seeds."""

from __future__ import annotations

import json

import numpy as np
import pytest
from _sweep_toy import GRID, point, ragged

from meanfield._params import ParamError
from meanfield.sweep import config_hash, point_seed, sweep


@pytest.fixture(scope="module")
def ds():
    return sweep(
        "toy", {"c": 0.25}, GRID, executor="serial", point_fn=point, seed=7, progress=False
    )


def test_dims_coords_and_variables(ds):
    assert dict(ds.sizes) == {"a": 3, "b": 4, "mode": 3}
    assert list(ds["x"].dims) == ["a", "b"]
    assert list(ds["y"].dims) == ["a", "b", "mode"]
    np.testing.assert_array_equal(ds["a"], GRID["a"])
    np.testing.assert_array_equal(ds["b"], GRID["b"])
    assert set(ds.data_vars) == {"x", "y", "noise", "sim_flag", "status", "error"}
    assert ds["status"].dtype.kind == "U" and ds["error"].dtype.kind == "U"


def test_values_are_the_point_values(ds):
    a, b = np.meshgrid(GRID["a"], GRID["b"], indexing="ij")
    ok = ds["status"].values != "error"
    ok &= ds["status"].values != "invalid"
    np.testing.assert_allclose(ds["x"].values[ok], (a * b + 0.25)[ok])
    np.testing.assert_allclose(ds["y"].values[ok], np.stack([a, b, a + b], -1)[ok])
    assert (ds["sim_flag"].values[ok] == 0).all()


def test_statuses_are_recorded_never_swallowed(ds):
    st = ds["status"]
    assert (st.sel(a=1.0) == "not_converged").all()
    # a point that did not converge still keeps its values
    assert np.isfinite(ds["x"].sel(a=1.0)).all()
    assert st.sel(a=0.5, b=2.0) == "error"
    assert "boom at a=0.5" in str(ds["error"].sel(a=0.5, b=2.0).values)
    assert "RuntimeError" in str(ds["error"].sel(a=0.5, b=2.0).values)
    assert st.sel(a=0.0, b=4.0) == "invalid"
    assert "b must be" in str(ds["error"].sel(a=0.0, b=4.0).values)
    for where in ({"a": 0.5, "b": 2.0}, {"a": 0.0, "b": 4.0}):
        assert np.isnan(ds["x"].sel(**where)) and np.isnan(ds["y"].sel(**where)).all()
    others = (st != "error") & (st != "invalid") & (st != "not_converged")
    assert (st.where(others, "ok") == "ok").all() and int(others.sum()) == 6
    # every NaN has a status that explains it
    assert (st.where(np.isnan(ds["x"]), "error").isin(["error", "invalid"])).all()
    assert (ds["error"].where(st.isin(["ok", "not_converged"]), "") == "").all()


def test_attrs(ds):
    assert ds.attrs["model"] == "toy"
    assert ds.attrs["seed"] == 7
    assert isinstance(ds.attrs["meanfield_version"], str) and ds.attrs["meanfield_version"]
    cfg = json.loads(ds.attrs["config"])
    assert cfg["model"] == "toy" and cfg["seed"] == 7 and cfg["base"] == {"c": 0.25}
    assert list(cfg["grid"]) == ["a", "b"] and cfg["grid"]["b"] == GRID["b"]
    assert cfg["simulate"] is False and cfg["sim"] == {}
    assert ds.attrs["config_hash"] == config_hash(cfg)


def test_seeds_derive_from_seed_and_flat_index(ds):
    flat = ds["noise"].values.reshape(-1)
    for i in (0, 5, 11):
        if np.isnan(flat[i]):
            continue
        want = np.random.default_rng(point_seed(7, i)).random()
        assert flat[i] == want
    assert point_seed(7, 3) == int(np.random.SeedSequence(7, spawn_key=(3,)).generate_state(1)[0])
    other = sweep(
        "toy", {"c": 0.25}, GRID, executor="serial", point_fn=point, seed=8, progress=False
    )
    assert not np.allclose(other["noise"], ds["noise"], equal_nan=True)
    assert other.attrs["config_hash"] != ds.attrs["config_hash"]


def test_simulate_and_sim_reach_the_point_function():
    ds = sweep(
        "toy",
        {},
        {"a": [0.0], "b": [1.0, 2.0]},
        simulate=True,
        sim={"trials": 2},
        executor="serial",
        point_fn=point,
        progress=False,
    )
    assert (ds["sim_flag"] == 2.0).all()
    assert json.loads(ds.attrs["config"])["sim"] == {"trials": 2}


def test_grid_order_sets_dimension_order():
    ds = sweep(
        "toy",
        {},
        {"b": [1.0, 2.0], "a": [0.0, 1.0]},
        executor="serial",
        point_fn=point,
        progress=False,
    )
    assert list(ds["y"].dims) == ["b", "a", "mode"]


def test_grid_accepts_cli_strings():
    ds = sweep(
        "toy", {}, {"a": "0:1:3", "b": "1,3"}, executor="serial", point_fn=point, progress=False
    )
    np.testing.assert_allclose(ds["a"], [0.0, 0.5, 1.0])
    np.testing.assert_allclose(ds["b"], [1, 3])


def test_inconsistent_values_become_errors():
    ds = sweep(
        "toy", {}, {"b": [1.0, 2.0, 3.0, 4.0]}, executor="serial", point_fn=ragged, progress=False
    )
    assert list(ds["status"].values) == ["ok", "ok", "error", "error"]
    assert "float or a list of floats" in str(ds["error"].values[2])
    assert "3 modes" in str(ds["error"].values[3])
    assert ds.sizes["mode"] == 2
    assert np.isnan(ds["x"].values[2:]).all()


def test_progress_bar_runs(capsys):
    ds = sweep(
        "toy", {}, {"a": [0.0], "b": [1.0]}, executor="serial", point_fn=point, progress=True
    )
    assert ds["status"].item() == "ok"


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"executor": "threads"}, "executor"),
        ({"workers": 0}, "workers"),
        ({"seed": -1}, "seed"),
        ({"grid": {}}, "grid"),
        ({"grid": {"a": []}}, "grid a"),
        ({"grid": {"a": [[1.0, 2.0]]}}, "grid a"),
        ({"grid": {"status": [1.0]}}, "grid"),
        ({"grid": {"a": "0.9:0.1:5"}}, "grid a"),
    ],
)
def test_bad_arguments_name_the_parameter(kwargs, name):
    kw = {
        "grid": {"a": [0.0], "b": [1.0]},
        "executor": "serial",
        "point_fn": point,
        "progress": False,
    }
    kw.update(kwargs)
    grid = kw.pop("grid")
    with pytest.raises(ParamError) as e:
        sweep("toy", {}, grid, **kw)
    assert e.value.name == name
    assert str(e.value).startswith(f"{name} must be ")


def test_process_executors_need_an_importable_point_fn():
    with pytest.raises(ParamError, match="point_fn must be"):
        sweep(
            "toy",
            {},
            {"a": [0.0]},
            executor="local",
            point_fn=lambda *a, **k: {"status": "ok", "values": {}},
            progress=False,
        )
