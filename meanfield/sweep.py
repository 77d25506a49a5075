"""Generic, resumable parameter sweeps.

:func:`sweep` evaluates a point function (by default
:func:`meanfield.api.evaluate_point`) on the Cartesian product of a grid of
parameter values and returns an :class:`xarray.Dataset` with one dimension per
swept parameter, one variable per returned value, and a ``status`` (and
``error``) string per point. A failed point is recorded, never swallowed.

With ``store=`` the results go to a zarr store as they arrive: a template is
written once (metadata only, chunk 1 along every grid dimension, the
configuration hash in its attributes and a boolean ``done`` mask), each
finished point is written into its own chunks, and a rerun computes only the
points not yet done. A store made with another configuration is refused.

Seeds are derived from ``(seed, flat grid index)`` alone, so results do not
depend on the executor, the order of completion, or on resuming.

With the default point function and no simulation, points are sent to the
workers in chunks (at most :data:`CHUNK_MAX`, about :data:`CHUNKS_PER_WORKER`
per worker), and the points of a chunk that share a compiled system (the same
model structure, other parameter values) are solved together in one compiled
call (:func:`meanfield.solvers.fixed_point.solve_models`); each point's values
and status are exactly those of :func:`meanfield.api.evaluate_point`. Other
point functions and simulations run one point per task.

Examples
--------
>>> from meanfield.sweep import parse_grid
>>> parse_grid("delta=0.1:0.5:3")
('delta', array([0.1, 0.3, 0.5]))
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import pickle
import shutil
import sys
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ._params import ParamError

if TYPE_CHECKING:  # pragma: no cover
    import xarray

__all__ = ["sweep", "parse_grid", "point_seed", "config_of", "config_hash"]

#: Width of the fixed-width unicode ``status`` variable (longer statuses are cut).
STATUS_WIDTH = 32
#: Width of the fixed-width unicode ``error`` variable (longer messages are cut).
ERROR_WIDTH = 256
#: Variable and dimension names a point function may not use for its values.
RESERVED = ("status", "error", "done", "mode")
#: Environment set in worker processes against oversubscription.
THREAD_ENV = {
    "NUMBA_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
}
EXECUTORS = ("serial", "local", "dask")

_GRID_SPEC = "name=lo:hi:n or name=v1,v2,..."
_RANGE = "lo:hi:n with lo <= hi and n >= 1"
_LIST = "lo:hi:n or a comma-separated list v1,v2,..."


# --------------------------------------------------------------------------- grid parsing
def parse_grid(spec: str) -> tuple[str, np.ndarray]:
    """Parse a CLI grid specification.

    Parameters
    ----------
    spec : str
        ``name=lo:hi:n`` (``n`` evenly spaced values from ``lo`` to ``hi``
        inclusive, :func:`numpy.linspace`) or ``name=v1,v2,v3`` (an explicit
        list: integers, floats, or else strings, which the model validates).

    Returns
    -------
    name : str
    values : numpy.ndarray
        One-dimensional.

    Raises
    ------
    meanfield._params.ParamError
        Named ``grid <name>`` (or ``grid`` when there is no name), e.g.
        ``grid delta must be lo:hi:n with lo <= hi and n >= 1; got '0.9:0.1:5'``.

    Examples
    --------
    >>> parse_grid("delta=0.1,0.2")
    ('delta', array([0.1, 0.2]))
    """
    if not isinstance(spec, str) or "=" not in spec:
        raise ParamError("grid", _GRID_SPEC, spec)
    name, _, rhs = spec.partition("=")
    name, rhs = name.strip(), rhs.strip()
    if not name:
        raise ParamError("grid", _GRID_SPEC, spec)
    return name, _parse_values(name, rhs)


def _parse_values(name: str, rhs: str) -> np.ndarray:
    label = f"grid {name}"
    if ":" in rhs:
        parts = [p.strip() for p in rhs.split(":")]
        if len(parts) != 3:
            raise ParamError(label, _RANGE, rhs)
        try:
            lo, hi, n = float(parts[0]), float(parts[1]), int(parts[2])
        except ValueError:
            raise ParamError(label, _RANGE, rhs) from None
        if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi or n < 1:
            raise ParamError(label, _RANGE, rhs)
        return np.linspace(lo, hi, n)
    items = [s.strip() for s in rhs.split(",")]
    if not rhs or not all(items):
        raise ParamError(label, _LIST, rhs)
    for conv in (int, float):
        try:
            vals = [conv(s) for s in items]
        except ValueError:
            continue
        if conv is float and not all(math.isfinite(v) for v in vals):
            raise ParamError(label, _LIST, rhs)
        return np.array(vals)
    # names (or a mix such as 0.5,auto): kept as strings, validated by the model
    return np.array(items)


def _check_grid(grid: Mapping[str, Any]) -> dict[str, np.ndarray]:
    if not isinstance(grid, Mapping) or not grid:
        raise ParamError("grid", "a non-empty mapping of parameter name to values", grid)
    out: dict[str, np.ndarray] = {}
    for name, values in grid.items():
        if not isinstance(name, str) or not name or name in RESERVED:
            raise ParamError("grid", f"keyed by parameter names (not {', '.join(RESERVED)})", name)
        if isinstance(values, str):
            arr = _parse_values(name, values.strip())
        else:
            arr = np.asarray(values)
            if arr.ndim != 1 or arr.size == 0 or arr.dtype.kind not in "biufUS":
                raise ParamError(f"grid {name}", "a non-empty 1-D sequence of values", values)
            if arr.dtype.kind == "S":
                arr = arr.astype(str)
        out[name] = arr
    return out


# --------------------------------------------------------------------------- seeds / config
def point_seed(seed: int, index: int) -> int:
    """The seed passed to the point at flat (C-order) grid index ``index``.

    ``numpy.random.SeedSequence(seed, spawn_key=(index,)).generate_state(1)[0]``.
    """
    return int(np.random.SeedSequence(seed, spawn_key=(int(index),)).generate_state(1)[0])


def _jsonable(x: Any, *, sort: bool = True) -> Any:
    if isinstance(x, Mapping):
        items = [(str(k), _jsonable(v)) for k, v in x.items()]
        return dict(sorted(items) if sort else items)
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    if isinstance(x, os.PathLike):
        return os.fspath(x)
    return repr(x)


def _fn_name(fn: Callable) -> str:
    return f"{getattr(fn, '__module__', '?')}:{getattr(fn, '__qualname__', repr(fn))}"


def config_of(
    model: str,
    base: Mapping[str, Any],
    grid: Mapping[str, Any],
    *,
    simulate: bool = False,
    sim: Mapping[str, Any] | None = None,
    seed: int = 0,
    point_fn: Callable | None = None,
) -> dict[str, Any]:
    """The JSON-ready configuration that identifies a sweep (and its store).

    ``base`` and ``sim`` are key-sorted; the grid keeps its order (it fixes the
    dimensions and the flat index that seeds each point).
    """
    grid = _check_grid(grid)
    return {
        "model": model,
        "base": _jsonable(dict(base or {})),
        "grid": {k: v.tolist() for k, v in grid.items()},
        "simulate": bool(simulate),
        "sim": _jsonable(dict(sim or {})),
        "seed": int(seed),
        "point_fn": _fn_name(point_fn) if point_fn is not None else _DEFAULT_FN,
    }


_DEFAULT_FN = "meanfield.api:evaluate_point"


def config_hash(config: Mapping[str, Any]) -> str:
    """A short SHA-256 hex digest of ``config`` (as returned by :func:`config_of`)."""
    text = json.dumps(config, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("meanfield")
    except PackageNotFoundError:
        return "unknown"


# --------------------------------------------------------------------------- per-point work
@dataclass
class _Result:
    index: int
    status: str
    values: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    retry: bool = False  # the worker died: not marked done, a rerun retries it


def _limit_threads() -> None:
    """One thread per worker process (numba, OpenMP, BLAS)."""
    numba = sys.modules.get("numba")
    for k, v in THREAD_ENV.items():
        if k == "NUMBA_NUM_THREADS" and numba is not None:
            continue  # numba refuses a changed NUMBA_NUM_THREADS once its threads run
        os.environ[k] = v
    if numba is not None:
        try:
            numba.set_num_threads(1)
        except Exception:  # pragma: no cover - best effort
            pass


def _init_worker(owner_pid: int | None = None) -> None:
    """Process-pool worker start-up: one thread, and die with the sweeping process."""
    _limit_threads()
    if owner_pid is not None:
        from ._lifetime import init_worker_lifetime

        init_worker_lifetime(owner_pid)


def _normalize(index: int, out: Any) -> _Result:
    if not isinstance(out, Mapping) or "status" not in out:
        raise TypeError(
            "point_fn must return a dict {'status': str, 'values': {...}}; "
            f"got {type(out).__name__}"
        )
    raw = out.get("values") or {}
    if not isinstance(raw, Mapping):
        raise TypeError(f"point_fn 'values' must be a dict; got {type(raw).__name__}")
    values: dict[str, Any] = {}
    for k, v in raw.items():
        k = str(k)
        if k in RESERVED:
            raise ValueError(f"value name {k!r} is reserved ({', '.join(RESERVED)})")
        want = f"value {k!r} must be a float or a list of floats"
        try:
            arr = np.asarray(np.nan if v is None else v, dtype=float)
        except (TypeError, ValueError):
            raise TypeError(f"{want}; got {v!r}") from None
        if arr.ndim > 1:
            raise TypeError(f"{want}; got an array of shape {arr.shape}")
        values[k] = float(arr) if arr.ndim == 0 else arr
    return _Result(index, str(out["status"]), values, str(out.get("error") or ""))


def _run_point(
    point_fn: Callable | None,
    model: str,
    params: dict[str, Any],
    simulate: bool,
    sim: dict[str, Any],
    seed: int,
    index: int,
    limit_threads: bool,
) -> _Result:
    """Evaluate one point; exceptions become a recorded status."""
    if limit_threads:
        _limit_threads()
    try:
        if point_fn is None:
            from .api import evaluate_point as point_fn
        out = point_fn(model, params, simulate=simulate, sim=sim, seed=seed)
        return _normalize(index, out)
    except ParamError as e:  # parameters outside their ranges at this point
        return _Result(index, "invalid", error=str(e))
    except Exception as e:
        return _Result(index, "error", error=f"{type(e).__name__}: {e}")


def _evaluate_chunk(model: str, items: list[tuple[int, dict, int]]) -> list[_Result]:
    """The default point function on many points at once (theory only).

    Each point's model is built (and validated) on its own; the models whose
    theory is the fixed point of a declared system (:meth:`Model.solve` not
    overridden) are solved by :func:`meanfield.solvers.fixed_point.solve_models`,
    one compiled call per shared system, and the others one by one. Every
    result is what :func:`meanfield.api.evaluate_point` returns at that point.
    """
    from ._model import Model
    from .api import _numeric, build
    from .solvers.fixed_point import solve_models

    results: dict[int, _Result] = {}
    batch: list[tuple[int, Any]] = []
    single: list[tuple[int, dict, int]] = []
    template: tuple[dict, Any] | None = None  # a built point: the others differ in a few values
    for index, params, seed in items:
        try:
            if template is not None and params.keys() == template[0].keys():
                base_params, base = template
                m = base.replace(**{k: v for k, v in params.items() if v != base_params[k]})
            else:
                m = build(model, params)
                template = (params, m)
        except ParamError as e:
            results[index] = _Result(index, "invalid", error=str(e))
            continue
        except Exception as e:
            results[index] = _Result(index, "error", error=f"{type(e).__name__}: {e}")
            continue
        if type(m).solve is Model.solve:
            batch.append((index, m))
        else:
            single.append((index, params, seed))
    solved = solve_models([m for _, m in batch]) if batch else []
    for (index, _), out in zip(batch, solved, strict=True):
        try:
            if isinstance(out, Exception):
                raise out
            res = out.to_dict()
            values = {k: v for k, v in res.items() if k != "status" and _numeric(v)}
            results[index] = _normalize(index, {"status": res["status"], "values": values})
        except ParamError as e:
            results[index] = _Result(index, "invalid", error=str(e))
        except Exception as e:
            results[index] = _Result(index, "error", error=f"{type(e).__name__}: {e}")
    for index, params, seed in single:
        results[index] = _run_point(None, model, params, False, {}, seed, index, False)
    return [results[index] for index, _, _ in items]


def _run_chunk(
    point_fn: Callable | None,
    model: str,
    items: list[tuple[int, dict, int]],
    simulate: bool,
    sim: dict[str, Any],
    limit_threads: bool,
) -> list[_Result]:
    """Evaluate a chunk of points ``(index, params, seed)``: batched where the
    default point function solves theory only, else point by point."""
    if limit_threads:
        _limit_threads()
    if point_fn is None and not simulate:
        try:
            return _evaluate_chunk(model, items)
        except Exception:  # pragma: no cover - defensive: per point records the error
            pass
    return [
        _run_point(point_fn, model, params, simulate, sim, seed, index, False)
        for index, params, seed in items
    ]


#: Most points in one batched chunk (a killed run loses at most one chunk per worker).
CHUNK_MAX = 1024
#: Chunks per worker for process executors (load balance against chunk overhead).
CHUNKS_PER_WORKER = 4


def _chunk_size(common: Mapping[str, Any], n_todo: int, workers: int) -> int:
    """Points per task: 1 unless the default point function runs theory only
    (then the points of a chunk are solved as batches)."""
    if common["point_fn"] is not None or common["simulate"] or n_todo == 0:
        return 1
    per = math.ceil(n_todo / max(1, workers * CHUNKS_PER_WORKER))
    return max(1, min(CHUNK_MAX, per))


def _chunks(tasks, size: int):
    chunk: list = []
    for t in tasks:
        chunk.append(t)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# --------------------------------------------------------------------------- result sinks
class _Sink:
    """Collects point results into arrays (in memory or in a zarr store)."""

    def __init__(self, dims: tuple[str, ...], shape: tuple[int, ...]):
        self.dims, self.shape = dims, shape
        self.is_list: dict[str, bool] = {}
        self.mode_len: int | None = None

    def accept(self, r: _Result) -> None:
        problems = []
        for k, v in r.values.items():
            lst = isinstance(v, np.ndarray)
            if k in self.dims:
                problems.append(f"value name {k!r} is a grid dimension")
            elif k in self.is_list and self.is_list[k] != lst:
                want = "a list" if self.is_list[k] else "a float"
                problems.append(f"value {k!r} was {want} at other points")
            elif lst and self.mode_len is not None and v.shape[0] != self.mode_len:
                problems.append(
                    f"value {k!r} has {v.shape[0]} modes; other points have {self.mode_len}"
                )
        if problems:
            r = _Result(r.index, "error", error="; ".join(problems), retry=r.retry)
        for k, v in r.values.items():
            if k not in self.is_list:
                lst = isinstance(v, np.ndarray)
                if lst and self.mode_len is None:
                    self.mode_len = int(v.shape[0])
                self.is_list[k] = lst
                self.add_var(k, lst)
        idx = np.unravel_index(r.index, self.shape)
        self.write(tuple(int(i) for i in idx), r)

    def add_var(self, name: str, is_list: bool) -> None:
        raise NotImplementedError

    def write(self, idx: tuple[int, ...], r: _Result) -> None:
        raise NotImplementedError

    def _var_shape(self, is_list: bool) -> tuple[int, ...]:
        return self.shape + ((self.mode_len,) if is_list else ())


class _MemorySink(_Sink):
    def __init__(self, dims, shape):
        super().__init__(dims, shape)
        self.arrays: dict[str, np.ndarray] = {}
        self.status = np.full(shape, "", dtype=f"<U{STATUS_WIDTH}")
        self.error = np.full(shape, "", dtype=f"<U{ERROR_WIDTH}")

    def add_var(self, name, is_list):
        self.arrays[name] = np.full(self._var_shape(is_list), np.nan)

    def write(self, idx, r):
        for k, a in self.arrays.items():
            a[idx] = r.values.get(k, np.nan)
        self.status[idx] = r.status
        self.error[idx] = r.error

    def dataset(self, coords: dict[str, np.ndarray], attrs: dict[str, Any]) -> xarray.Dataset:
        import xarray as xr

        data = {
            k: (self.dims + (("mode",) if self.is_list[k] else ()), self.arrays[k])
            for k in sorted(self.arrays)
        }
        data["status"] = (self.dims, self.status)
        data["error"] = (self.dims, self.error)
        return xr.Dataset(data, coords=coords, attrs=attrs)


class _ZarrSink(_Sink):
    """Writes each point into its own chunks of a local zarr (format 2) store.

    Arrays are created atomically (built beside the store, then renamed in),
    and ``done`` is set only after a point's values, status and error are
    written, so a kill at any moment leaves a readable store in which every
    ``done`` point is complete.
    """

    def __init__(self, path: Path, dims, shape, is_list: dict[str, bool], mode_len: int | None):
        super().__init__(dims, shape)
        import zarr

        self._zarr = zarr
        self.path = path
        self.is_list = dict(is_list)
        self.mode_len = mode_len
        self.arrays = {k: self._open(k) for k in self.is_list}
        self.status = self._open("status")
        self.error = self._open("error")
        self.done = self._open("done")

    def _open(self, name):
        return self._zarr.open_array(self.path / name, mode="r+", zarr_format=2)

    def add_var(self, name, is_list):
        dims = self.dims + (("mode",) if is_list else ())
        tmp = _tmp_sibling(self.path, "var")
        try:
            g = self._zarr.open_group(tmp, mode="w", zarr_format=2)
            _create(g, name, dims, self._var_shape(is_list), "f8", np.nan)
            os.rename(tmp / name, self.path / name)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        self.arrays[name] = self._open(name)

    def write(self, idx, r):
        for k, a in self.arrays.items():
            if self.is_list[k]:
                a[idx] = r.values.get(k, np.full(self.mode_len, np.nan))
            else:
                a[idx] = r.values.get(k, np.nan)
        self.status[idx] = r.status[:STATUS_WIDTH]
        self.error[idx] = r.error[:ERROR_WIDTH]
        if not r.retry:
            self.done[idx] = True


def _tmp_sibling(path: Path, what: str) -> Path:
    return path.parent / f".{path.name}.{what}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def _create(group, name, dims, shape, dtype, fill) -> None:
    # chunk 1 along every grid dimension; the mode dimension stays whole
    nd_grid = len([d for d in dims if d != "mode"])
    chunks = (1,) * nd_grid + tuple(shape[nd_grid:])
    group.create_array(
        name,
        shape=shape,
        chunks=chunks,
        dtype=dtype,
        fill_value=fill,
        attributes={"_ARRAY_DIMENSIONS": list(dims)},
    )


def _is_store(path: Path) -> bool:
    return (path / ".zgroup").exists() or (path / "zarr.json").exists()


def _make_store(path: Path, dims, coords, attrs) -> None:
    """Write the template: coordinates, attributes, status/error/done (metadata only)."""
    import xarray as xr
    import zarr

    shape = tuple(len(coords[d]) for d in dims)
    tmp = _tmp_sibling(path, "template")
    try:
        xr.Dataset(coords=coords, attrs=attrs).to_zarr(
            tmp, mode="w-", consolidated=False, zarr_format=2
        )
        g = zarr.open_group(tmp, mode="r+", zarr_format=2)
        _create(g, "status", dims, shape, f"<U{STATUS_WIDTH}", None)
        _create(g, "error", dims, shape, f"<U{ERROR_WIDTH}", None)
        _create(g, "done", dims, shape, "bool", None)
        if path.is_dir() and not any(path.iterdir()):
            path.rmdir()
        try:
            os.rename(tmp, path)
        except OSError:
            if not _is_store(path):  # not another run that just made it
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _open_store(path: Path, chash: str):
    import xarray as xr

    try:
        ds = xr.open_zarr(path, consolidated=False, chunks=None)
    except Exception as e:
        raise ValueError(
            f"store {os.fspath(path)} exists but is not a readable sweep store ({e}); "
            "use a new store path"
        ) from None
    got = ds.attrs.get("config_hash")
    if got != chash or "done" not in ds:
        raise ValueError(
            f"store {os.fspath(path)} was made with another configuration "
            f"(config_hash {got}, this sweep {chash}); use a new store path or delete it"
        )
    return ds


def _load_store(path: Path) -> xarray.Dataset:
    import xarray as xr

    with xr.open_zarr(path, consolidated=False, chunks=None) as ds:
        ds = ds.load()
    values = sorted(k for k in ds.data_vars if k not in ("status", "error", "done"))
    return ds[[*values, "status", "error"]]


# --------------------------------------------------------------------------- executors
def _run_serial(tasks, common, on_result, size=1):
    for chunk in _chunks(tasks, size):
        for r in _run_chunk(
            common["point_fn"], common["model"], chunk, common["simulate"], common["sim"], False
        ):
            on_result(r)


def _crash(index: int, e: BaseException) -> _Result:
    return _Result(index, "error", error=f"worker failed: {type(e).__name__}: {e}", retry=True)


def _run_local(tasks, common, on_result, workers, size=1):
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    methods = mp.get_all_start_methods()
    ctx = mp.get_context("forkserver" if "forkserver" in methods else "spawn")
    if ctx.get_start_method() == "forkserver":
        # the forkserver (if this call starts it) dies with this process, and
        # does not preload the caller's script
        ctx.set_forkserver_preload(["meanfield._forkserver_preload"])
    ex = ProcessPoolExecutor(
        max_workers=workers, mp_context=ctx, initializer=_init_worker, initargs=(os.getpid(),)
    )
    futs = {}
    finished = False
    try:
        for chunk in _chunks(tasks, size):
            f = ex.submit(
                _run_chunk,
                common["point_fn"],
                common["model"],
                chunk,
                common["simulate"],
                common["sim"],
                True,
            )
            futs[f] = [t[0] for t in chunk]
        for f in as_completed(futs):
            try:
                rs = f.result()
            except Exception as e:  # the worker process died (BrokenProcessPool, ...)
                rs = [_crash(i, e) for i in futs[f]]
            for r in rs:
                on_result(r)
        finished = True
    finally:
        # on an interrupt, do not wait for the points still running
        ex.shutdown(wait=finished, cancel_futures=True)


SCHEDULER_TIMEOUT = 10.0
"""Seconds to wait for a dask scheduler to answer before refusing the address."""


def connect(scheduler: str, timeout: float = SCHEDULER_TIMEOUT):
    """A ``distributed.Client`` for ``scheduler``, or a :class:`ParamError` naming it.

    An address where no scheduler answers within ``timeout`` seconds, or one
    that is not an address at all, is refused in one line (the connection
    attempts' log records are silenced).
    """
    import logging

    from distributed import Client

    allowed = (
        f"the address of a running dask.distributed scheduler (e.g. tcp://HOST:8786); "
        f"none answered within {timeout:g} s"
    )
    loggers = [logging.getLogger(n) for n in ("distributed", "tornado", "asyncio")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    try:
        return Client(scheduler, timeout=timeout)
    except (OSError, TimeoutError) as e:
        raise ParamError("scheduler", allowed, scheduler) from e
    except (ValueError, TypeError) as e:
        raise ParamError("scheduler", f"a scheduler address such as tcp://HOST:8786 ({e})",
                         scheduler) from e
    finally:
        for lg, lv in zip(loggers, levels, strict=True):
            lg.setLevel(lv)


def _run_dask(tasks, common, on_result, workers, scheduler, size=1):
    import logging

    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError as e:  # pragma: no cover
        raise ImportError(
            "executor='dask' needs dask.distributed: pip install 'meanfield[dask]'"
        ) from e
    cluster = None
    if scheduler is not None:
        client = connect(scheduler)
    else:
        cluster = LocalCluster(
            n_workers=workers or 2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
            env=dict(THREAD_ENV),
        )
        client = Client(cluster)
    futs = {}
    try:
        for chunk in _chunks(tasks, size):
            f = client.submit(
                _run_chunk,
                common["point_fn"],
                common["model"],
                chunk,
                common["simulate"],
                common["sim"],
                True,
                pure=False,
            )
            futs[f] = [t[0] for t in chunk]
        for f in as_completed(list(futs)):
            try:
                rs = f.result()
            except Exception as e:  # KilledWorker, CancelledError, ...
                rs = [_crash(i, e) for i in futs[f]]
            for r in rs:
                on_result(r)
    finally:
        if futs:
            client.cancel(list(futs))
        client.close()
        if cluster is not None:
            cluster.close()


# --------------------------------------------------------------------------- sweep
def sweep(
    model: str,
    base: Mapping[str, Any] | None,
    grid: Mapping[str, Sequence | np.ndarray | str],
    *,
    simulate: bool = False,
    sim: Mapping[str, Any] | None = None,
    store: str | os.PathLike | None = None,
    executor: str = "local",
    scheduler: str | None = None,
    workers: int | None = None,
    seed: int = 0,
    progress: bool | None = None,
    point_fn: Callable | None = None,
) -> xarray.Dataset:
    """Evaluate a model on every point of a parameter grid.

    Parameters
    ----------
    model : str
        A registered model name, passed to ``point_fn``.
    base : dict or None
        Parameter values held fixed; each point's ``params`` is ``base``
        updated with the point's grid values.
    grid : dict of str to sequence
        Swept parameters, in dimension order. Values are 1-D sequences (or a
        string ``lo:hi:n`` / ``v1,v2,...`` as in :func:`parse_grid`).
    simulate : bool, default False
        Also run the simulator at each point (passed to ``point_fn``).
    sim : dict, optional
        Simulator options (``size``, ``trials``, ``backend``, ...).
    store : str or os.PathLike, optional
        A local zarr directory. Results are written there point by point as
        they finish, and a rerun with the same configuration computes only
        the points not yet done. A store made with another configuration is
        refused (:class:`ValueError`).
    executor : {'local', 'serial', 'dask'}, default 'local'
        ``'serial'`` runs in this process; ``'local'`` a
        :class:`concurrent.futures.ProcessPoolExecutor`; ``'dask'`` a
        ``dask.distributed`` cluster. Process executors need ``point_fn`` to
        be an importable module-level function.
    scheduler : str, optional
        A ``dask.distributed`` scheduler address; implies ``executor='dask'``.
        Without it, ``'dask'`` starts (and afterwards closes) a local cluster.
    workers : int, optional
        Worker processes (default: ``os.cpu_count()`` for ``'local'``, 2 for
        a local dask cluster).
    seed : int, default 0
        Root seed; point ``i`` (flat C-order index) gets
        :func:`point_seed` ``(seed, i)``.
    progress : bool, optional
        Show a progress bar (default: when stderr is a terminal).
    point_fn : callable, optional
        ``point_fn(model, params, simulate=, sim=, seed=) -> {"status": str,
        "values": {name: float | list[float]}}``; default
        :func:`meanfield.api.evaluate_point`. A status other than ``"ok"`` is
        recorded as given; a :class:`~meanfield._params.ParamError` raised at
        a point is recorded as ``"invalid"`` and any other exception as
        ``"error"``, with the message in the ``error`` variable.

    Returns
    -------
    xarray.Dataset
        Dimensions: the grid parameters (with coordinates), plus ``mode`` for
        list values. Variables: each value (float64, NaN where a point gave
        none), ``status`` and ``error`` (fixed-width strings). Attributes:
        ``model``, ``seed``, ``meanfield_version``, ``config`` (JSON) and
        ``config_hash``.

    Raises
    ------
    meanfield._params.ParamError
        For a bad grid, executor, workers or seed (named in the message).
    ValueError
        For a store made with another configuration.

    Notes
    -----
    A point whose worker process died is recorded as ``"error"`` but not
    marked done in the store, so a rerun retries it; a point whose
    ``point_fn`` raised is done (rerunning would raise again).

    Theory-only sweeps with the default ``point_fn`` are batched: chunks of
    points go to each worker and the points of a chunk that share a compiled
    system are solved in one compiled call (see the module docstring); the
    results are those of the point-by-point path, bit for bit. A killed
    worker loses its whole chunk (its points are retried by a rerun).
    """
    grid_arrays = _check_grid(grid)
    base = dict(base or {})
    sim = dict(sim or {})
    if scheduler is not None:
        executor = "dask"
    if executor not in EXECUTORS:
        raise ParamError("executor", "one of " + ", ".join(EXECUTORS), executor)
    if workers is not None and (
        isinstance(workers, bool) or not isinstance(workers, int) or workers < 1
    ):
        raise ParamError("workers", "a positive integer", workers)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ParamError("seed", "a non-negative integer", seed)
    seed = int(seed)
    if point_fn is None:
        _check_model_params(model, base, grid_arrays)
    elif executor != "serial":
        try:
            pickle.dumps(point_fn)
        except Exception as e:
            raise ParamError(
                "point_fn",
                "an importable module-level function (or executor='serial')",
                _fn_name(point_fn),
            ) from e

    config = config_of(
        model, base, grid_arrays, simulate=simulate, sim=sim, seed=seed, point_fn=point_fn
    )
    chash = config_hash(config)
    attrs = {
        "model": model,
        "seed": seed,
        "meanfield_version": _version(),
        "config": json.dumps(config),
        "config_hash": chash,
    }
    dims = tuple(grid_arrays)
    shape = tuple(len(v) for v in grid_arrays.values())
    coords = dict(grid_arrays)
    n_total = int(np.prod(shape))

    path = None
    if store is not None:
        path = Path(os.fspath(store)).expanduser().absolute()
        if not _is_store(path):
            if path.exists() and not (path.is_dir() and not any(path.iterdir())):
                raise ValueError(
                    f"store {os.fspath(path)} exists and is not a zarr store; use a new store path"
                )
            try:
                _make_store(path, dims, coords, attrs)
            except OSError as e:
                raise ParamError(
                    "store", "a zarr directory path that can be created and written", str(store)
                ) from e
        ds = _open_store(path, chash)
        with ds:
            done = ds["done"].values.reshape(-1).copy()
            is_list = {
                k: "mode" in ds[k].dims
                for k in ds.data_vars
                if k not in ("status", "error", "done")
            }
            mode_len = int(ds.sizes["mode"]) if "mode" in ds.sizes else None
        sink: _Sink = _ZarrSink(path, dims, shape, is_list, mode_len)
        todo = np.flatnonzero(~done)
    else:
        sink = _MemorySink(dims, shape)
        todo = np.arange(n_total)

    values_by_dim = [grid_arrays[d].tolist() for d in dims]  # Python scalars, as .item()

    # the default point function uses its seed only to simulate
    seeded = point_fn is not None or bool(simulate)

    def tasks():
        for i in todo:
            idx = np.unravel_index(int(i), shape)
            params = dict(base)
            for d, vals, j in zip(dims, values_by_dim, idx, strict=True):
                params[d] = vals[j]
            yield int(i), params, (point_seed(seed, int(i)) if seeded else 0)

    if progress is None:
        progress = bool(getattr(sys.stderr, "isatty", lambda: False)())
    from tqdm.auto import tqdm

    bar = tqdm(
        total=n_total,
        initial=n_total - len(todo),
        disable=not progress,
        desc=f"sweep {model}",
        unit="pt",
    )

    def on_result(r: _Result) -> None:
        sink.accept(r)
        bar.update(1)

    common = {"point_fn": point_fn, "model": model, "simulate": bool(simulate), "sim": sim}
    if len(todo) and (executor == "local" or (executor == "dask" and scheduler is None)):
        from ._lifetime import unguarded_main

        why = unguarded_main()
        if why is not None:
            print(
                f"meanfield.sweep: running the {len(todo)} points in this process: {why}. "
                "To use worker processes, call sweep under `if __name__ == \"__main__\":` "
                "in a script file; executor='serial' silences this.",
                file=sys.stderr,
            )
            executor = "serial"
    try:
        if len(todo) == 0:
            pass
        elif executor == "serial":
            _run_serial(tasks(), common, on_result, _chunk_size(common, len(todo), 1))
        elif executor == "local":
            n_workers = workers or os.cpu_count() or 1
            size = _chunk_size(common, len(todo), n_workers)
            _run_local(tasks(), common, on_result, n_workers, size)
        else:
            size = _chunk_size(common, len(todo), workers or 2)
            _run_dask(tasks(), common, on_result, workers, scheduler, size)
    finally:
        bar.close()

    if path is not None:
        return _load_store(path)
    return sink.dataset(coords, attrs)


def _check_model_params(model: str, base: dict, grid: dict[str, np.ndarray]) -> None:
    """Fail fast on unknown parameter names and out-of-range grid values."""
    from ._model import get_model

    cls = get_model(model)
    specs = getattr(cls, "params", None)
    if not isinstance(specs, Mapping):  # pragma: no cover
        return
    known = "a known parameter (" + ", ".join(specs) + ")"
    for name, value in [*base.items(), *((k, v.tolist()) for k, v in grid.items())]:
        if name not in specs:
            raise ParamError(name, known, value)
    for name, values in grid.items():
        for v in values:
            specs[name].validate(v.item())
