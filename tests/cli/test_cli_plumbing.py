"""CLI plumbing against a stubbed API: options reach the API, output follows the contract."""

from __future__ import annotations

import json
import math
import shlex
import types

import numpy as np
import pytest
import xarray as xr
from typer.testing import CliRunner

from meanfield import api, cli

runner = CliRunner()


def run(*args: str):
    """``run("solve tensor --json")`` or ``run("solve", "tensor", "--json")``."""
    argv = shlex.split(args[0]) if len(args) == 1 else list(args)
    return runner.invoke(cli.app, argv)


def one_json(result) -> dict:
    """stdout holds exactly one JSON document (and nothing else)."""
    return json.loads(result.stdout)


@pytest.fixture
def calls(monkeypatch):
    """Replace the API by recorders returning contract-shaped dicts."""
    seen: dict[str, tuple] = {}

    def solve(model, params=None):
        seen["solve"] = (model, params)
        print("stray print from the solver")  # must not reach stdout
        return {
            "status": "ok",
            "overlap": np.array([0.25, 0.5]),
            "mse": [0.75, float("nan")],
            "free_energy": np.float64(0.125),
            "branch": "unique",
            "iterations": np.int64(7),
        }

    def threshold(model, params=None, *, param, kind, lo, hi):
        seen["threshold"] = (model, params, param, kind, lo, hi)
        return {"param": param, "kind": kind, "value": 1.5, "status": "ok"}

    def simulate(model, params=None, *, size, trials, seed, backend):
        seen["simulate"] = (model, params, size, trials, seed, backend)
        return {
            "overlap": [0.5],
            "overlap_sem": [0.01],
            "mse": [0.5],
            "mse_sem": [0.01],
            "status": "ok",
        }

    for name, fn in [("solve", solve), ("threshold", threshold), ("simulate", simulate)]:
        monkeypatch.setattr(api, name, fn)
    return seen


def test_parse_sets():
    assert cli.parse_sets(["delta=0.5", "shape=1,1", " prior = a,b ", "delta=2", "x="]) == {
        "delta": "2",
        "shape": "1,1",
        "prior": "a,b",
        "x": "",
    }
    assert cli.parse_sets(None) == {}
    for bad in ["delta", "=1"]:
        with pytest.raises(ValueError, match="--set"):
            cli.parse_sets([bad])


def test_solve_json_contract(calls):
    r = run("solve tensor --set delta=0.5 -s shape=1,2 --json")
    assert r.exit_code == 0, r.output
    d = one_json(r)
    assert list(d)[:6] == ["status", "overlap", "mse", "iterations", "free_energy", "branch"]
    assert d["overlap"] == [0.25, 0.5] and d["mse"] == [0.75, None] and d["iterations"] == 7
    assert "stray print" in r.stderr
    # values reach the API as strings, for the model to parse
    assert calls["solve"] == ("tensor", {"delta": "0.5", "shape": "1,2"})


def test_solve_human(calls):
    r = run("solve tensor")
    assert r.exit_code == 0
    assert "overlap" in r.stdout and "0.25, 0.5" in r.stdout and "stray" not in r.stdout
    assert calls["solve"] == ("tensor", {})


def test_threshold_forwards_options(calls):
    r = run("threshold tensor --param delta --kind dynamic --lo 0.1 --hi 3 --set order=3 --json")
    assert r.exit_code == 0, r.output
    assert one_json(r) == {"param": "delta", "kind": "dynamic", "value": 1.5, "status": "ok"}
    assert calls["threshold"] == ("tensor", {"order": "3"}, "delta", "dynamic", 0.1, 3.0)


def test_threshold_bracket_checked(calls):
    r = run("threshold tensor --lo 2 --hi 1")
    assert r.exit_code == 2 and r.stderr.startswith("error: --lo") and "threshold" not in calls


def test_simulate_forwards_options(calls):
    r = run("simulate tensor --set delta=0.4 --size 64 --trials 3 --seed 5 --backend cuda --json")
    assert r.exit_code == 0, r.output
    assert list(one_json(r)) == ["overlap", "overlap_sem", "mse", "mse_sem", "status"]
    assert calls["simulate"] == ("tensor", {"delta": "0.4"}, 64, 3, 5, "cuda")


@pytest.mark.parametrize(
    "args, needle",
    [
        (["solve", "tensor", "--set", "delta"], "--set"),
        (["sweep", "tensor"], "--grid"),
    ],
)
def test_cli_bad_input(calls, args, needle):
    r = run(*args)
    assert r.exit_code == 2
    assert r.stdout == ""
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("error: ") and needle in r.stderr


def test_api_value_error_is_one_line(monkeypatch):
    def boom(model, params=None):
        raise ValueError("delta must be\na float in (0, inf); got '-1'")

    monkeypatch.setattr(api, "solve", boom)
    r = run("solve tensor --json")
    assert r.exit_code == 2 and r.stdout == ""
    assert r.stderr == "error: delta must be a float in (0, inf); got '-1'\n"


# -- usage errors through main() --------------------------------------------------------
@pytest.mark.parametrize(
    "args, needle",
    [
        (["solve", "tensor", "--bogus"], "--bogus"),
        (["solve"], "MODEL"),
        (["nonsense"], "nonsense"),
        (["simulate", "tensor", "--size", "many"], "--size"),
    ],
)
def test_main_usage_errors_are_one_line(capsys, args, needle):
    assert cli.main(args) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("error: ") and needle in err
    assert "Traceback" not in err


def test_main_help_and_version(capsys):
    assert cli.main(["--help"]) == 0
    out, _ = capsys.readouterr()
    for cmd in ["models", "describe", "solve", "threshold", "simulate", "sweep", "figure"]:
        assert cmd in out
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.strip()


def test_main_returns_zero_on_success(capsys, calls):
    assert cli.main(["solve", "tensor", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "ok"


# -- sweep --------------------------------------------------------------------------------
def _fake_dataset(grid: dict) -> xr.Dataset:
    ((name, values),) = grid.items()
    n = len(values)
    overlap = np.linspace(0, 1, 2 * n).reshape(n, 2)
    overlap[-1, :] = np.nan
    status = np.array(["ok"] * (n - 1) + ["not_converged"])
    return xr.Dataset(
        {
            "overlap": ((name, "mode"), overlap),
            "iterations": ((name,), np.arange(n)),
            "status": ((name,), status),
        },
        coords={name: np.asarray(values, dtype=float)},
        attrs={"model": "tensor", "params": {"order": 2}, "simulate": False},
    )


@pytest.fixture
def fake_sweep(monkeypatch):
    seen = {}

    def parse_grid(text):
        name, _, spec = text.partition("=")
        lo, hi, n = spec.split(":")
        if float(lo) > float(hi):
            raise ValueError(f"grid {name}: lo must not exceed hi; got {lo} > {hi}")
        return name, np.linspace(float(lo), float(hi), int(n))

    def sweep(model, base, grid, **kw):
        seen.update(model=model, base=base, grid=grid, **kw)
        return _fake_dataset(grid)

    mod = types.ModuleType("meanfield.sweep")
    mod.parse_grid, mod.sweep = parse_grid, sweep
    monkeypatch.setitem(__import__("sys").modules, "meanfield.sweep", mod)
    return seen


def test_sweep_json(fake_sweep):
    r = run("sweep tensor --set order=2 --grid delta=0.5:1.5:3 --quiet --json")
    assert r.exit_code == 0, r.output
    d = one_json(r)
    assert set(d) >= {"dims", "coords", "variables", "status", "attrs"}
    assert d["dims"] == {"delta": 3, "mode": 2}
    assert d["coords"]["delta"] == [0.5, 1.0, 1.5]
    assert d["variables"]["overlap"][2] == [None, None] and len(d["variables"]["overlap"]) == 3
    assert d["variables"]["iterations"] == [0, 1, 2]
    assert d["variable_dims"]["overlap"] == ["delta", "mode"]
    assert d["status"] == ["ok", "ok", "not_converged"]
    assert d["attrs"]["params"] == {"order": 2}
    assert fake_sweep["model"] == "tensor" and fake_sweep["base"] == {"order": "2"}
    assert list(fake_sweep["grid"]) == ["delta"] and fake_sweep["progress"] is False  # --quiet
    assert fake_sweep["simulate"] is False and fake_sweep["sim"] is None
    assert "executor" not in fake_sweep  # the sweep's own default


def test_sweep_table_and_netcdf(fake_sweep, tmp_path):
    out = tmp_path / "s.nc"
    r = run(
        "sweep tensor -g delta=0.5:1.5:3 --simulate --size 32 --trials 2 --executor serial"
        f" --workers 2 --seed 3 --out {shlex.quote(str(out))}"
    )
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["delta", "status", "overlap", "iterations"]
    assert len(lines) == 4 and "not_converged" in lines[3]
    assert fake_sweep["sim"] == {"size": 32, "trials": 2, "backend": "cpu"}
    assert fake_sweep["executor"] == "serial" and fake_sweep["workers"] == 2
    assert fake_sweep["seed"] == 3 and fake_sweep["scheduler"] is None
    with xr.open_dataset(out) as back:
        assert list(back["status"].values.astype(str)) == ["ok", "ok", "not_converged"]
        assert json.loads(back.attrs["params"]) == {"order": 2}
        np.testing.assert_allclose(back["delta"].values, [0.5, 1.0, 1.5])


@pytest.mark.parametrize(
    "grid, needle",
    [(["delta=2:1:3"], "lo"), (["delta=0.5:1:2", "delta=1:2:2"], "twice")],
)
def test_sweep_bad_grid(fake_sweep, grid, needle):
    args = ["sweep", "tensor"]
    for g in grid:
        args += ["--grid", g]
    r = run(*args)
    assert r.exit_code == 2 and r.stdout == "" and needle in r.stderr
    assert r.stderr.count("\n") == 1 and "model" not in fake_sweep


# -- figure -------------------------------------------------------------------------------
def test_figure(monkeypatch, tmp_path):
    from meanfield import figures

    seen = {}

    def fake_run(name, quick=False, out="figures/out"):
        if name != "fig01":
            raise KeyError(f"unknown figure {name!r}")
        seen["args"] = (name, quick, str(out))
        return {"png": f"{out}/fig01.png", "nc": f"{out}/fig01.nc"}

    monkeypatch.setattr(figures, "run", fake_run, raising=False)
    monkeypatch.chdir(tmp_path)  # output goes under the current directory
    r = run("figure fig01 --quick --json")
    assert r.exit_code == 0, r.output
    assert one_json(r) == {
        "figure": "fig01",
        "paths": {"png": "figures/out/fig01.png", "nc": "figures/out/fig01.nc"},
    }
    assert seen["args"] == ("fig01", True, "figures/out")
    assert (tmp_path / "figures" / "out").is_dir()
    r = run(f"figure fig01 --out {tmp_path / 'elsewhere'}")
    assert r.exit_code == 0 and seen["args"][2] == str(tmp_path / "elsewhere")
    r = run("figure fig01 --out /proc/nope")
    assert r.exit_code == 2 and r.stderr.startswith("error: --out must be a directory")
    assert r.stderr.count("\n") == 1
    r = run("figure nope")
    assert r.exit_code == 2 and r.stderr.startswith("error: unknown figure")


def test_jsonable_is_strict():
    d = cli._jsonable({"a": np.float32(1.5), "b": [np.inf, 1], "c": (np.int8(3),), 1: None})
    assert d == {"a": 1.5, "b": [None, 1], "c": [3], "1": None}
    assert json.loads(json.dumps(d, allow_nan=False)) == d
    assert not any(isinstance(x, float) and math.isnan(x) for x in d["b"])
