"""The ``meanfield`` command line: a thin typer layer over :mod:`meanfield.api`.

Commands mirror the Python API one to one::

    meanfield models
    meanfield describe MODEL
    meanfield solve MODEL --set name=value ...
    meanfield threshold MODEL --param delta --kind algorithmic --set ...
    meanfield simulate MODEL --set ... --size N --trials T --seed S --backend cpu
    meanfield sweep MODEL --set ... --grid name=lo:hi:n ... [--simulate] [--out F.nc]
    meanfield figure NAME [--quick]

Parameter values given with ``--set`` are passed to the model as strings; the
model's declaration validates and parses them (numbers, comma lists such as
``shape=1,1``). ``--json`` prints exactly one JSON document on stdout, with the
keys of the corresponding :mod:`meanfield.api` function; everything else
(warnings, progress) goes to stderr.

Bad input -- any :class:`ValueError`, :class:`meanfield.ParamError` included,
and usage errors -- prints one line ``error: <message>`` on stderr and exits
with status 2, without a traceback.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import sys
from collections.abc import Callable, Iterable
from typing import Annotated, Any

import typer

__all__ = ["app", "main", "parse_sets"]

EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 1


def _click_exception(name: str) -> type[Exception]:
    """A click exception class (recent typer vendors click; older typer re-exports it)."""
    for cls in typer.BadParameter.__mro__:
        if cls.__name__ == name:
            return cls
    raise ImportError(name)  # pragma: no cover


_UsageError = _click_exception("UsageError")
_ClickException = _click_exception("ClickException")

app = typer.Typer(
    name="meanfield",
    help="Theory-first statistical physics: solve, threshold, simulate and sweep models.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


# -- shared options -------------------------------------------------------------------
ModelArg = Annotated[
    str, typer.Argument(metavar="MODEL", help="model name (see `meanfield models`)")
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        "-s",
        metavar="NAME=VALUE",
        help="parameter value (repeatable); comma lists give one value per mode",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="print one JSON document on stdout")]


# -- helpers --------------------------------------------------------------------------
class BadInput(ValueError):
    """Bad command-line input detected by the CLI itself."""


def parse_sets(items: Iterable[str] | None) -> dict[str, str]:
    """``["delta=0.5", "shape=1,1"]`` -> ``{"delta": "0.5", "shape": "1,1"}``.

    Values stay strings: the model's declaration parses and validates them.
    A later ``--set`` of the same name wins.
    """
    out: dict[str, str] = {}
    for item in items or ():
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise BadInput(f"--set expects NAME=VALUE; got {item!r}")
        out[name] = value.strip()
    return out


def _one_line(msg: str) -> str:
    return " ".join(str(msg).split()) or "bad input"


def _fail(msg: str) -> None:
    typer.echo(f"error: {_one_line(msg)}", err=True)


def _guard(fn: Callable) -> Callable:
    """Turn a :class:`ValueError` into ``error: <message>`` on stderr and exit 2.

    Anything printed to stdout while the command computes is sent to stderr, so
    that ``--json`` output stays a single document.
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ValueError as e:
            _fail(str(e))
            raise typer.Exit(EXIT_BAD_INPUT) from None

    return wrapper


@contextlib.contextmanager
def _quiet_stdout():
    """Send stray prints of the computation to stderr."""
    with contextlib.redirect_stdout(sys.stderr):
        yield


def _jsonable(x: Any) -> Any:
    """Plain, strictly valid JSON values (non-finite floats become ``null``)."""
    try:
        import numpy as np
    except ImportError:  # pragma: no cover
        np = None
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if np is not None:
        if isinstance(x, np.ndarray):
            return _jsonable(x.tolist())
        if isinstance(x, np.generic):
            x = x.item()
    if isinstance(x, bool) or x is None or isinstance(x, (int, str)):
        return x
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, bytes):
        return x.decode(errors="replace")
    return str(x)


def _emit_json(obj: Any) -> None:
    typer.echo(json.dumps(_jsonable(obj), indent=2, allow_nan=False))


def _fmt(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, (list, tuple)):
        return ", ".join(_fmt(x) for x in v)
    try:
        import numpy as np

        if isinstance(v, np.ndarray):
            return _fmt(v.tolist())
        if isinstance(v, np.generic):
            return _fmt(v.item())
    except ImportError:  # pragma: no cover
        pass
    return str(v)


def _emit_kv(d: dict[str, Any]) -> None:
    width = max((len(k) for k in d), default=0)
    for k, v in d.items():
        typer.echo(f"{k:<{width}}  {_fmt(v)}")


def _emit_table(header: list[str], rows: list[list[str]]) -> None:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)
    ]
    typer.echo("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip())
    for r in rows:
        typer.echo("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


def _ordered(d: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """The contract keys first (in order), then any others the API returned."""
    out = {k: d.get(k) for k in keys}
    out.update({k: v for k, v in d.items() if k not in out})
    return out


def _api():
    from . import api

    return api


def _keys(model: str, command: str) -> tuple[str, ...]:
    """The model's declared ``--json`` keys of ``command`` (its contract)."""
    from ._model import get_model

    return tuple(get_model(model).contract.get(command, ()))


# -- commands -------------------------------------------------------------------------
def _version(value: bool) -> None:
    if value:
        from . import __version__

        typer.echo(__version__)
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="print the version"),
    ] = False,
) -> None:
    """Theory-first statistical physics: solve, threshold, simulate and sweep models."""


@app.command("models")
@_guard
def models_cmd(as_json: JsonOpt = False) -> None:
    """List the registered models."""
    with _quiet_stdout():
        names = _api().models()
    if as_json:
        _emit_json({"models": names})
    else:
        for n in names:
            typer.echo(n)


@app.command("describe")
@_guard
def describe_cmd(model: ModelArg, as_json: JsonOpt = False) -> None:
    """Parameters (allowed values, defaults) and references of a model."""
    with _quiet_stdout():
        d = _api().describe(model)
    if as_json:
        _emit_json(d)
        return
    typer.echo(f"{d.get('name', model)}: {d.get('description', '')}".rstrip(": "))
    if d.get("reference"):
        typer.echo(f"reference: {d['reference']}")
    params = d.get("params") or {}
    if params:
        typer.echo("")
        rows = [
            [k, _fmt(p.get("default")), str(p.get("allowed", "")), str(p.get("doc", ""))]
            for k, p in params.items()
        ]
        _emit_table(["param", "default", "allowed", "doc"], rows)
    for k, v in d.items():
        if k not in ("name", "description", "reference", "params"):
            typer.echo(f"{k}: {_fmt(v)}")


@app.command("solve")
@_guard
def solve_cmd(model: ModelArg, sets: SetOpt = None, as_json: JsonOpt = False) -> None:
    """Solve the theory (state evolution / mean field) at one point."""
    params = parse_sets(sets)
    with _quiet_stdout():
        res = _api().solve(model, params)
    res = _ordered(res, _keys(model, "solve"))
    if as_json:
        _emit_json(res)
    else:
        _emit_kv(res)


@app.command("threshold")
@_guard
def threshold_cmd(
    model: ModelArg,
    param: Annotated[
        str | None,
        typer.Option("--param", help="parameter to scan (default: the kind's usual one)"),
    ] = None,
    kind: Annotated[
        str | None,
        typer.Option("--kind", help="threshold kind (see `meanfield describe MODEL`)"),
    ] = None,
    lo: Annotated[float | None, typer.Option("--lo", help="lower end of the scan")] = None,
    hi: Annotated[float | None, typer.Option("--hi", help="upper end of the scan")] = None,
    sets: SetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A phase-transition threshold in one parameter."""
    params = parse_sets(sets)
    if lo is not None and hi is not None and not lo < hi:
        raise BadInput(f"--lo must be below --hi; got lo={lo!r}, hi={hi!r}")
    with _quiet_stdout():
        res = _api().threshold(model, params, param=param, kind=kind, lo=lo, hi=hi)
    res = _ordered(res, _keys(model, "threshold"))
    if as_json:
        _emit_json(res)
    else:
        _emit_kv(res)


@app.command("fixed-points")
@_guard
def fixed_points_cmd(model: ModelArg, sets: SetOpt = None, as_json: JsonOpt = False) -> None:
    """Every fixed point of the theory, stable and unstable, with its free energy."""
    params = parse_sets(sets)
    with _quiet_stdout():
        res = _api().fixed_points(model, params)
    if as_json:
        _emit_json(res)
        return
    rows = [
        [
            _fmt(f.get("overlap")),
            "stable" if f["stable"] else "unstable",
            _fmt(f["spectral_radius"]),
            _fmt(f["free_energy"]),
        ]
        for f in res["fixed_points"]
    ]
    _emit_table(["overlap", "stability", "spectral_radius", "free_energy"], rows)


@app.command("phase")
@_guard
def phase_cmd(
    model: ModelArg,
    x: Annotated[str, typer.Option("--x", help="first axis, name=lo:hi:n")],
    y: Annotated[str, typer.Option("--y", help="threshold axis, name=lo:hi:n")] = "delta=0.01:1:64",
    sets: SetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Phase diagram: easy/hard/impossible regions and the three thresholds along --y."""
    import importlib

    parse_grid = importlib.import_module("meanfield.sweep").parse_grid
    params = parse_sets(sets)
    xname, xs = parse_grid(x)
    yname, ys = parse_grid(y)
    with _quiet_stdout():
        ds = _api().phase(model, params, x=xname, xs=xs, y=yname, ys=ys)
    keys = ("algorithmic", "information", "dynamic")
    if as_json:
        _emit_json(
            {
                "x": xname,
                "y": yname,
                "xs": [float(v) for v in xs],
                "ys": [float(v) for v in ys],
                **{k: [None if v != v else float(v) for v in ds[k].values] for k in keys},
                "status": [str(v) for v in ds["status"].values],
                "region": ds["region"].values.tolist(),
                "regions": {"0": "easy", "1": "hard", "2": "impossible"},
            }
        )
        return
    rows = [
        [_fmt(float(xv))]
        + [_fmt(float(ds[k].values[i])) for k in keys]
        + [str(ds["status"].values[i])]
        for i, xv in enumerate(xs)
    ]
    _emit_table([xname, *keys, "status"], rows)


@app.command("simulate")
@_guard
def simulate_cmd(
    model: ModelArg,
    sets: SetOpt = None,
    size: Annotated[
        int | None,
        typer.Option("--size", help="system size N (default 256, or the model's size parameter)"),
    ] = None,
    trials: Annotated[int, typer.Option("--trials", help="independent instances")] = 8,
    seed: Annotated[int, typer.Option("--seed", help="random seed")] = 0,
    backend: Annotated[str, typer.Option("--backend", help="cpu or cuda")] = "cpu",
    as_json: JsonOpt = False,
) -> None:
    """Simulate sampled instances; means and standard errors over trials."""
    params = parse_sets(sets)
    with _quiet_stdout():
        res = _api().simulate(model, params, size=size, trials=trials, seed=seed, backend=backend)
    res = _ordered(res, _keys(model, "simulate"))
    if as_json:
        _emit_json(res)
    else:
        _emit_kv(res)


# -- sweep ----------------------------------------------------------------------------
def dataset_to_json(ds, grid_dims: Iterable[str] = ()) -> dict[str, Any]:
    """A sweep's :class:`xarray.Dataset` as plain JSON.

    ``dims`` maps dimension names to sizes (grid dimensions first),
    ``coords`` each dimension coordinate to its values, ``variables`` each
    numeric data variable to nested lists in the order of
    ``variable_dims[name]`` (grid dimensions, then e.g. ``mode``), ``status``
    and ``error`` the per-point status and error message (nested lists over
    the grid dimensions), ``attrs`` the dataset attributes.
    """
    grid_dims = [d for d in grid_dims if d in ds.dims]
    order = grid_dims + [d for d in ds.dims if d not in grid_dims]
    out: dict[str, Any] = {
        "dims": {d: int(ds.sizes[d]) for d in order},
        "coords": {str(k): ds[k].values.tolist() for k in ds.coords},
        "variables": {},
        "variable_dims": {},
        "status": None,
        "error": None,
        "attrs": dict(ds.attrs),
    }
    for name, da in ds.data_vars.items():
        da = da.transpose(*[d for d in order if d in da.dims])
        if name in ("status", "error"):
            out[name] = da.values.astype(str).tolist()
            continue
        if name == "done":  # resume bookkeeping of a store
            continue
        out["variables"][str(name)] = da.values.tolist()
        out["variable_dims"][str(name)] = [str(d) for d in da.dims]
    return out


def _sweep_rows(ds, grid_dims: list[str]) -> tuple[list[str], list[list[str]]]:
    import numpy as np

    grid_dims = [d for d in grid_dims if d in ds.dims] or [d for d in ds.dims][:1]
    names = [str(n) for n in ds.data_vars if n not in ("status", "error", "done")]
    if "error" in ds.data_vars and (ds["error"].values.astype(str) != "").any():
        names.append("error")  # last: the messages of failed points
    header = [*grid_dims, "status", *names]
    shape = tuple(ds.sizes[d] for d in grid_dims)
    arrays = {}
    for n in [*names, "status"]:
        if n not in ds.data_vars:
            continue
        da = ds[n]
        rest = [d for d in da.dims if d not in grid_dims]
        lead = [d for d in grid_dims if d in da.dims]
        da = da.transpose(*lead, *rest)
        arrays[n] = (lead, np.asarray(da.values))
    rows = []
    for idx in np.ndindex(*shape):
        pos = dict(zip(grid_dims, idx, strict=True))
        row = [_fmt(ds[d].values[i]) if d in ds.coords else str(i) for d, i in pos.items()]
        cells = {}
        for n, (lead, arr) in arrays.items():
            v = arr[tuple(pos[d] for d in lead)]
            cells[n] = _fmt_cell(v)
        row.append(cells.get("status", ""))
        row += [cells[n] for n in names]
        rows.append(row)
    return header, rows


def _fmt_cell(v: Any) -> str:
    import numpy as np

    v = np.asarray(v)
    if v.dtype.kind in "US":
        return ",".join(str(x) for x in v.ravel()) if v.ndim else str(v)
    if v.dtype.kind == "O":
        return ",".join(str(x) for x in v.ravel()) if v.ndim else str(v.item())
    flat = v.ravel().tolist() if v.ndim else [v.item()]
    return ",".join(f"{x:.4g}" if isinstance(x, float) else str(x) for x in flat)


def _netcdf_safe(ds):
    """A copy whose attributes netCDF can store (others become JSON strings)."""
    import numpy as np

    def fix(attrs: dict) -> dict:
        out = {}
        for k, v in attrs.items():
            if isinstance(v, bool | np.bool_):
                v = int(v)
            elif (
                v is None
                or isinstance(v, dict)
                or (
                    isinstance(v, list | tuple)
                    and not all(isinstance(x, int | float) and not isinstance(x, bool) for x in v)
                )
            ):
                v = json.dumps(_jsonable(v))
            out[k] = v
        return out

    ds = ds.copy()
    ds.attrs = fix(ds.attrs)
    for name in ds.variables:
        ds[name].attrs = fix(ds[name].attrs)
    return ds


@app.command("sweep")
@_guard
def sweep_cmd(
    model: ModelArg,
    sets: SetOpt = None,
    grid: Annotated[
        list[str] | None,
        typer.Option("--grid", "-g", metavar="NAME=LO:HI:N", help="swept parameter (repeatable)"),
    ] = None,
    simulate: Annotated[bool, typer.Option("--simulate", help="also simulate every point")] = False,
    size: Annotated[
        int | None, typer.Option("--size", help="system size N (with --simulate; default 256)")
    ] = None,
    trials: Annotated[int, typer.Option("--trials", help="instances (with --simulate)")] = 8,
    backend: Annotated[str, typer.Option("--backend", help="cpu or cuda")] = "cpu",
    store: Annotated[
        str | None, typer.Option("--store", help="zarr store to write to and resume from")
    ] = None,
    scheduler: Annotated[
        str | None, typer.Option("--scheduler", help="dask.distributed scheduler address")
    ] = None,
    executor: Annotated[
        str | None, typer.Option("--executor", help="serial, local or dask")
    ] = None,
    workers: Annotated[int | None, typer.Option("--workers", help="worker processes")] = None,
    seed: Annotated[int, typer.Option("--seed", help="random seed")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")] = False,
    out: Annotated[str | None, typer.Option("--out", help="write the dataset to netCDF")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Evaluate the theory (and optionally simulations) on a parameter grid."""
    params = parse_sets(sets)
    if not grid:
        raise BadInput("sweep needs at least one --grid NAME=LO:HI:N")
    if simulate and ((size is not None and size < 1) or trials < 1):
        raise BadInput(f"--size and --trials must be positive integers; got {size!r}, {trials!r}")
    import importlib

    # not `from . import sweep`: the package also exports a function named `sweep`
    _sweep = importlib.import_module("meanfield.sweep")

    axes: dict[str, Any] = {}
    for g in grid:
        name, values = _sweep.parse_grid(g)
        if name in axes:
            raise BadInput(f"--grid names {name!r} twice")
        axes[name] = values
    if out:
        from ._paths import writable_file

        writable_file(out, "--out")
    sim = {"trials": trials, "backend": backend} if simulate else None
    if simulate and size is not None:
        sim["size"] = size
    kw: dict[str, Any] = {"executor": executor} if executor is not None else {}
    with _quiet_stdout():
        ds = _sweep.sweep(
            model,
            params,
            axes,
            simulate=simulate,
            sim=sim,
            store=store,
            scheduler=scheduler,
            workers=workers,
            seed=seed,
            progress=False if quiet else None,  # None: on when stderr is a terminal
            **kw,
        )
        if out:
            _netcdf_safe(ds).to_netcdf(out)
    if as_json:
        _emit_json(dataset_to_json(ds, list(axes)))
        return
    header, rows = _sweep_rows(ds, list(axes))
    _emit_table(header, rows)
    if out:
        typer.echo(f"wrote {out}", err=True)


# -- figures --------------------------------------------------------------------------
@app.command("figure")
@_guard
def figure_cmd(
    name: Annotated[str, typer.Argument(metavar="NAME", help="figure name")],
    quick: Annotated[bool, typer.Option("--quick", help="small, fast version")] = False,
    out: Annotated[
        str, typer.Option("--out", help="output folder (default: ./figures/out)")
    ] = "figures/out",
    as_json: JsonOpt = False,
) -> None:
    """Compute and draw one figure of the paper set (writes under ./figures/out or --out)."""
    from meanfield import figures

    from ._paths import writable_dir

    writable_dir(out, "--out")
    with _quiet_stdout():
        try:
            paths = figures.run(name, quick=quick, out=out)
        except KeyError as e:
            raise BadInput(e.args[0] if e.args else f"unknown figure {name!r}") from None
    paths = {str(k): str(v) for k, v in dict(paths or {}).items()}
    if as_json:
        _emit_json({"figure": name, "paths": paths})
    else:
        _emit_kv(paths)


# -- branch (continuation) -----------------------------------------------------------
@app.command("branch")
@_guard
def branch_cmd(
    model: ModelArg,
    param: Annotated[str, typer.Option("--param", help="the continuation parameter")],
    range_: Annotated[
        str, typer.Option("--range", metavar="LO:HI", help="parameter range, e.g. 0.01:1")
    ],
    sets: SetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Fixed-point branches by pseudo-arclength continuation: stability, folds, crossings."""
    params = parse_sets(sets)
    try:
        lo, hi = (float(v) for v in range_.split(":"))
    except ValueError:
        raise BadInput(f"--range must be LO:HI (two numbers); got {range_!r}") from None
    if not lo < hi:
        raise BadInput(f"--range needs LO below HI; got {range_!r}")
    with _quiet_stdout():
        res = _api().branch(model, params, param=param, lo=lo, hi=hi)
    if as_json:
        _emit_json(res)
        return
    rows = [
        [
            str(p["branch"]),
            _fmt(p["value"]),
            _fmt(p.get("overlap", p["state"])),
            "stable" if p["stable"] else "unstable",
            _fmt(p["free_energy"]),
        ]
        for p in res["points"]
    ]
    _emit_table(["branch", param, "overlap", "stability", "free_energy"], rows)
    typer.echo(f"folds: {_fmt(res['folds'])}")
    typer.echo(f"crossings: {_fmt(res['crossings'])}")
    typer.echo(f"status: {res['status']}")


# -- entry point ----------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    """Console entry point: run the app; usage errors become one line and status 2."""
    command = typer.main.get_command(app)
    try:
        rv = command.main(args=argv, prog_name="meanfield", standalone_mode=False)
    except _UsageError as e:
        if type(e).__name__ == "NoArgsIsHelpError":  # bare `meanfield`: show the help
            typer.echo(e.format_message(), err=True)
            return EXIT_BAD_INPUT
        where = f" (see '{e.ctx.command_path} --help')" if e.ctx is not None else ""
        _fail(e.format_message() + where)
        return EXIT_BAD_INPUT
    except _ClickException as e:
        _fail(e.format_message())
        return e.exit_code
    except typer.Abort:
        _fail("aborted")
        return 1
    except ValueError as e:  # raised outside a command (e.g. in a callback)
        _fail(str(e))
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        _fail("interrupted")
        return 130
    except Exception as e:  # a bug: one line for the user, the traceback on request
        import os

        if os.environ.get("MEANFIELD_DEBUG"):
            raise
        _fail(
            f"internal error: {type(e).__name__}: {e} "
            "(please report it; MEANFIELD_DEBUG=1 shows the traceback)"
        )
        return EXIT_INTERNAL
    return rv if isinstance(rv, int) and not isinstance(rv, bool) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
