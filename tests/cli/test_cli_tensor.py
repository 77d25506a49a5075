"""End to end through the real tensor model (Kadmon & Ganguli 2018)."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from meanfield import cli

runner = CliRunner()

RADEMACHER = "--set order=2 --set shape=1,1 --set delta=0.5 --set prior=rademacher"


def run(*args: str):
    """``run("solve tensor --json")`` or ``run("solve", "tensor", "--json")``."""
    argv = shlex.split(args[0]) if len(args) == 1 else list(args)
    return runner.invoke(cli.app, argv)


def test_models_lists_tensor():
    r = run("models --json")
    assert r.exit_code == 0
    assert "tensor" in json.loads(r.stdout)["models"]
    assert "tensor" in run("models").stdout.split()


def test_describe_tensor():
    r = run("describe tensor --json")
    assert r.exit_code == 0
    d = json.loads(r.stdout)
    assert d["name"] == "tensor" and {"order", "shape", "delta", "prior"} <= set(d["params"])
    human = run("describe tensor").stdout
    assert "delta" in human and "a float in (0, inf)" in human


def test_solve_tensor_json():
    r = run(f"solve tensor {RADEMACHER} --json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert {"status", "overlap", "mse", "iterations", "free_energy", "branch"} <= set(d)
    assert d["status"] == "ok" and isinstance(d["iterations"], int)
    assert len(d["overlap"]) == len(d["mse"]) == 2
    for m, e in zip(d["overlap"], d["mse"], strict=True):
        assert 0 < m < 1
        assert m + e == pytest.approx(1.0)  # Rademacher: E[x^2] = 1


def test_threshold_tensor_bbp():
    """p = 2, Gaussian priors of unit variance, shape 1,1: BBP at delta = 1."""
    r = run(
        "threshold tensor --param delta --kind algorithmic"
        " --set order=2 --set prior=gaussian --json"
    )
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert list(d) == ["param", "kind", "value", "status"]
    assert d["param"] == "delta" and d["kind"] == "algorithmic" and d["status"] == "ok"
    assert d["value"] == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize(
    "sets, needle",
    [
        (["delta=-1"], "delta must be a float in (0, inf); got '-1'"),
        (["prior=cauchy"], "prior must be one of"),
        (["order=3", "shape=1,1"], "shape must be"),
        (["bogus=1"], "bogus"),
        (["delta"], "--set expects NAME=VALUE; got 'delta'"),
    ],
)
def test_bad_parameters(sets, needle):
    args = ["solve", "tensor", "--json"]
    for s in sets:
        args += ["--set", s]
    r = run(*args)
    assert r.exit_code == 2
    assert r.stdout == ""
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("error: ")
    assert needle in r.stderr


def test_unknown_model():
    r = run("solve nosuchmodel")
    assert r.exit_code == 2
    assert r.stderr.startswith("error: model must be one of ") and "tensor" in r.stderr
    assert "'nosuchmodel'" in r.stderr and r.stderr.count("\n") == 1


def test_unknown_threshold_kind():
    r = run("threshold tensor --kind spinodal")
    assert r.exit_code == 2 and "kind" in r.stderr and "spinodal" in r.stderr


def test_simulate_tensor_json():
    pytest.importorskip("meanfield.sims.engines.amp")
    r = run("simulate tensor --set delta=0.5 --set prior=rademacher --size 64 --trials 4 --json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert {"overlap", "overlap_sem", "mse", "mse_sem", "status"} <= set(d)
    assert len(d["overlap"]) == len(d["overlap_sem"]) == 2


def test_simulate_bad_size():
    r = run("simulate tensor --size 1 --json")
    assert r.exit_code == 2 and r.stdout == "" and r.stderr.startswith("error: size")


@pytest.mark.parametrize(
    "extra, needle",
    [
        ("--grid delta=2:1:3", "grid delta must be lo:hi:n with lo <= hi"),
        ("--grid delta=-1:1:3", "delta must be a float in (0, inf)"),
        ("--grid bogus=0:1:2", "bogus must be a known parameter"),
        ("--grid delta=0.5:1:2 --grid delta=1:2:2", "--grid names 'delta' twice"),
        ("--grid delta=0.5:1:2 --workers 0", "workers must be a positive integer"),
        ("--grid delta=0.5:1:2 --executor threads", "executor must be one of"),
        ("--grid delta", "grid must be name=lo:hi:n"),
    ],
)
def test_sweep_bad_input(extra, needle):
    pytest.importorskip("meanfield.sweep")
    r = run(f"sweep tensor --quiet {extra}")
    assert r.exit_code == 2 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("error: ")
    assert needle in r.stderr


def test_sweep_tensor(tmp_path):
    """Gaussian priors, p = 2: informative below the BBP point delta = 1, not above."""
    pytest.importorskip("meanfield.sweep")
    xr = pytest.importorskip("xarray")
    base = "sweep tensor --set order=2 --set prior=gaussian --grid delta=0.5:1.5:3"
    base += " --executor serial --quiet"
    r = run(f"{base} --json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert {"dims", "coords", "variables", "status", "attrs"} <= set(d)
    assert d["dims"] == {"delta": 3, "mode": 2}
    assert d["coords"]["delta"] == pytest.approx([0.5, 1.0, 1.5])
    assert d["status"] == ["ok"] * 3 and d["error"] == [""] * 3
    assert d["variable_dims"]["overlap"] == ["delta", "mode"]
    overlap = d["variables"]["overlap"]
    assert overlap[0][0] > 0.1 and abs(overlap[2][0]) < 1e-6

    out = tmp_path / "sweep.nc"
    r = run(f"{base} --out {shlex.quote(str(out))}")
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0].split()[:2] == ["delta", "status"] and "overlap" in lines[0]
    assert len(lines) == 4 and all(" ok " in line for line in lines[1:])
    with xr.open_dataset(out) as back:
        assert back.sizes["delta"] == 3
        assert [str(s) for s in back["status"].values] == ["ok"] * 3
        assert back.attrs["model"] == "tensor"


# -- the installed console script ---------------------------------------------------------
def _script() -> list[str]:
    exe = Path(sys.executable).with_name("meanfield")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "meanfield.cli"]


@pytest.mark.parametrize(
    "args, needle",
    [
        (["solve", "tensor", "--set", "delta=-1", "--json"], "delta must be a float"),
        (["solve", "tensor", "--no-such-option"], "--no-such-option"),
    ],
)
def test_console_script_bad_input(args, needle):
    env = {**os.environ, "COLUMNS": "80"}
    p = subprocess.run(_script() + args, capture_output=True, text=True, timeout=120, env=env)
    assert p.returncode == 2
    assert p.stdout == ""
    assert "Traceback" not in p.stderr
    lines = p.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0]
