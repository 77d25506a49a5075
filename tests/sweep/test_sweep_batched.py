"""Batched sweeps: points sharing a compiled system are solved in one call per chunk.

The default point function (theory only) runs chunks of points through
:func:`meanfield.solvers.fixed_point.solve_models`; every recorded value and
status must be exactly what the per-point path
(:func:`meanfield.api.evaluate_point`, one Python call per point) records.
Comparisons are bitwise (``xarray.testing.assert_identical``): both paths run
the same compiled per-row solver, so any difference is a batching bug.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from meanfield import get_model
from meanfield.api import evaluate_point
from meanfield.solvers.fixed_point import solve_batch, solve_model, solve_models
from meanfield.sweep import _chunk_size, sweep

# BBP at delta = 1 (Rademacher, order 2): points on both sides and next to it;
# mean 1.0 is outside the Rademacher prior's range (an "invalid" point); the
# two priors are two compiled systems in one chunk
BASE = {"order": 2}
GRID = {
    "prior": ["rademacher", "gaussian"],
    "mean": [0.0, 0.4, 1.0],
    "delta": [0.3, 0.95, 1.0, 1.05, 1.6],
}


def _plain(ds: xr.Dataset) -> xr.Dataset:
    return ds.drop_attrs(deep=False)


@pytest.fixture(scope="module")
def per_point():
    # an explicit point_fn takes the one-call-per-point path
    return sweep(
        "tensor", BASE, GRID, executor="serial", point_fn=evaluate_point, progress=False
    )


def test_batched_sweep_equals_point_by_point(per_point):
    batched = sweep("tensor", BASE, GRID, executor="serial", progress=False)
    xr.testing.assert_identical(_plain(batched), _plain(per_point))
    st = batched["status"].values
    # the grid really has the cases it claims: invalid points, and ok ones on both systems
    assert (st[0, 2] == "invalid").all() and "rademacher" in str(batched["error"].values[0, 2, 0])
    assert (st[1, 2] == "ok").all()  # a Gaussian prior takes any mean
    assert (st[:, :2] == "ok").all()
    ov = batched["overlap"].values
    assert np.all(ov[0, 0, 0, :] > 0.5) and np.all(ov[0, 0, 1, :] > 0.01)  # below BBP
    assert np.all(np.abs(ov[0, 0, 3:, :]) < 1e-6)  # above it


def test_batched_store_and_resume_equal_point_by_point(per_point, tmp_path):
    import zarr

    store = tmp_path / "s.zarr"
    first = sweep("tensor", BASE, GRID, executor="serial", store=store, progress=False)
    xr.testing.assert_identical(_plain(first), _plain(per_point))
    # forget a scattered third of the points, as a kill would (values stay; done cleared)
    done = zarr.open_array(store / "done", mode="r+", zarr_format=2)
    mask = np.ones(done.shape, dtype=bool)
    mask.reshape(-1)[::3] = False
    done[...] = mask
    resumed = sweep("tensor", BASE, GRID, executor="serial", store=store, progress=False)
    xr.testing.assert_identical(_plain(resumed), _plain(per_point))
    assert zarr.open_array(store / "done", mode="r", zarr_format=2)[...].all()


def test_local_pool_chunks_equal_serial(per_point):
    ds = sweep("tensor", BASE, GRID, executor="local", workers=2, progress=False)
    xr.testing.assert_identical(_plain(ds), _plain(per_point))


def test_chunk_sizes():
    theory = {"point_fn": None, "simulate": False}
    assert _chunk_size(theory, 10_000, 2) == 1024  # capped
    assert _chunk_size(theory, 100, 2) == 13  # 4 chunks per worker
    assert _chunk_size(theory, 3, 8) == 1
    # a custom point function or a simulation: one point per task, as before
    assert _chunk_size({"point_fn": evaluate_point, "simulate": False}, 10_000, 2) == 1
    assert _chunk_size({"point_fn": None, "simulate": True}, 10_000, 2) == 1


def test_solve_models_equals_solve_model():
    T = get_model("tensor")
    ms = [
        T(order=2, prior="rademacher", delta=d, mean=mu, init=init)
        for d in (0.4, 0.99, 1.3)
        for mu in (0.0, 0.5)
        for init in ("random", "informed")
    ]
    ms.append(T(order=3, prior="gaussian", delta=0.2))  # another system in the same call
    outs = solve_models(ms)
    for m, out in zip(ms, outs, strict=True):
        want = solve_model(m)
        assert out.to_dict() == want.to_dict()
        np.testing.assert_array_equal(out.state, want.state)


def test_solve_models_keeps_a_failure_to_its_model():
    T = get_model("tensor")
    good = T(order=2, prior="rademacher", delta=0.5)

    class Broken:
        """A model whose initial state cannot be built."""

        values = {"init": "random"}
        inits = ("random",)

        def system(self):
            return good.system()

        def theta(self):
            return good.theta()

        def initial_state(self, init):
            raise RuntimeError("no start")

        def solver_options(self):
            return good.solver_options()

    outs = solve_models([good, Broken(), good])
    assert isinstance(outs[1], RuntimeError)
    assert outs[0].to_dict() == outs[2].to_dict() == solve_model(good).to_dict()


def test_parallel_rows_equal_serial_rows():
    """Large batches run over rows in parallel (prange): the same numbers as one by one."""
    from meanfield.solvers import fixed_point

    m = get_model("tensor")(order=2, prior="rademacher")
    theta = np.repeat(m.theta()[None], fixed_point.PARALLEL_ROWS, axis=0)
    theta[:, 0] = np.linspace(0.2, 1.8, len(theta))
    s0 = np.stack([m.initial_state(i) for i in m.inits])
    big = solve_batch(m.system(), s0[None], theta[:, None, :], **m.solver_options())
    for j in (0, 100, 255, 256, 300, 511):
        one = solve_batch(m.system(), s0, theta[j], **m.solver_options())
        for a, b in zip(big, one, strict=True):
            np.testing.assert_array_equal(a[j], b)
