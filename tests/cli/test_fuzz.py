"""Fuzzing the CLI and the Python API: a result or one clean line, never a traceback or a hang.

Every registered model, every command that computes at one point (``describe``,
``solve``, ``simulate``, ``threshold``), every declared parameter plus unknown
ones, with extreme and malformed values (``0``, ``-1``, ``1e-300``, ``1e308``,
``inf``, ``nan``, words, empty strings, comma lists). Each call must either
succeed (exit 0, one JSON document) or fail with exit status 2 and exactly one
line ``error: ...`` on stderr, within a per-call time limit. The Python API
must return a dict or raise :class:`meanfield.ParamError` (a ``ValueError``).

The default run draws a bounded number of examples from cheap corners (tensor
orders up to 4, simulations of at most 40 units); ``slow`` explores everything
for longer.
"""

from __future__ import annotations

import contextlib
import io
import json
import signal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import meanfield
from meanfield.cli import main

LIMIT_S = 60  # per call

VALUES = [
    "0", "-1", "1", "2", "3", "0.5", "1e-300", "-1e-300", "1e308", "-1e308", "1e400",
    "inf", "-inf", "nan", "abc", "", " ", "1,2", "0.5,0.5,0.5", "auto", "true", "None",
    "1e-12", "1e12", "7", "100000",
]
CHEAP_BOUNDS = {"order": 4, "rank": 2, "n": 400, "hidden": 20, "d": 4, "r": 4,
                "epochs": 2000, "samples": 1000, "k": 64, "m": 64, "t": 100}


class _Timeout(BaseException):  # not caught by the CLI safety net
    pass


@contextlib.contextmanager
def _time_limit(seconds: int):
    def on_alarm(signum, frame):
        raise _Timeout(f"call took more than {seconds} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        with _time_limit(LIMIT_S):
            rc = main(argv)
    return rc, out.getvalue(), err.getvalue()


def _cheap(name: str, value: str) -> bool:
    """Keep the default run fast: no huge structural parameters."""
    bound = CHEAP_BOUNDS.get(name)
    if bound is None:
        return True
    try:
        return all(float(v) <= bound for v in value.split(","))
    except ValueError:
        return True


MODELS = {m: meanfield.describe(m) for m in meanfield.models()}


@st.composite
def invocations(draw, cheap: bool):
    model = draw(st.sampled_from(sorted(MODELS)))
    desc = MODELS[model]
    names = [*desc["params"], "bogus"]
    sets = {}
    for _ in range(draw(st.integers(0, 3))):
        name = draw(st.sampled_from(names))
        value = draw(st.sampled_from(VALUES) | st.floats(allow_nan=True).map(repr))
        if cheap and not _cheap(name, value):
            continue
        sets[name] = value
    command = draw(st.sampled_from(["describe", "solve", "simulate", "threshold"]))
    argv = [command, model]
    if command != "describe":
        for k, v in sets.items():
            argv += ["--set", f"{k}={v}"]
    if command == "simulate":
        size = draw(st.sampled_from(["2", "8", "40", "0", "-5", "x"]))
        trials = draw(st.sampled_from(["1", "2", "0", "-1"]))
        argv += ["--trials", trials]
        if desc.get("size_param") is None:
            argv += ["--size", size]
    if command == "threshold":
        kinds = list(desc.get("thresholds") or {}) + ["bogus"]
        argv += ["--kind", draw(st.sampled_from(kinds))]
    argv.append("--json")
    return argv


def _check(argv: list[str]) -> None:
    try:
        rc, out, err = _run(argv)
    except _Timeout as e:
        pytest.fail(f"meanfield {' '.join(argv)}: {e}")
    shown = f"meanfield {' '.join(argv)} -> rc={rc}\nstdout={out[:500]}\nstderr={err[:2000]}"
    assert "Traceback" not in err, shown
    assert rc in (0, 2), shown
    if rc == 0:
        json.loads(out)  # exactly one JSON document
    else:
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), shown
        assert out == "", shown


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(invocations(cheap=True))
def test_cli_fuzz(argv):
    _check(argv)


@pytest.mark.slow
@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=300)
@given(invocations(cheap=False))
def test_cli_fuzz_long(argv):
    _check(argv)


@pytest.mark.parametrize(
    "argv",
    [
        ["solve", "tensor", "--set", "delta=1e-300", "--json"],
        ["solve", "tensor", "--set", "order=3", "--set", "mean=1e308", "--json"],
        ["solve", "tensor", "--set", "delta=inf", "--json"],
        ["simulate", "tensor", "--set", "order=3", "--size", "5000", "--json"],
        ["simulate", "tensor", "--size", "8", "--trials", "1", "--backend", "cuda", "--json"],
        ["sweep", "tensor", "--grid", "delta=0.5:1:2", "--store", "/proc/nope.zarr", "--json"],
        ["sweep", "tensor", "--grid", "delta=0.5:1:2", "--out", "/proc/x.nc", "--json"],
        ["sweep", "tensor", "--grid", "delta=0.5:1:2", "--scheduler", "garbage", "--json"],
    ],
)
def test_reported_crashes_are_clean(argv, monkeypatch):
    """The inputs of issue 7 (found by hand): a result or one line, exit 2."""
    monkeypatch.delenv("NUMBA_ENABLE_CUDASIM", raising=False)
    rc, out, err = _run(argv)
    assert "Traceback" not in err
    assert rc in (0, 2), err
    if rc == 2:
        assert err.count("\n") == 1 and err.startswith("error: ")
    else:
        d = json.loads(out)
        assert d["status"] in ("ok", "non_finite"), d  # never a false ok on inf/NaN
        if d["status"] == "ok":
            assert all(v is not None for v in d.values())
    if "size" in " ".join(argv) and "5000" in argv:
        assert rc == 2 and "size" in err and "needed" in err and "trials" in err
    if "cuda" in argv:
        assert rc == 2 and "NVIDIA" in err


@pytest.mark.parametrize(
    "params",
    [{"delta": -1}, {"delta": float("inf")}, {"order": 99}, {"prior": "nope"}, {"nope": 1}],
)
def test_api_bad_input_raises_param_error(params):
    with pytest.raises(meanfield.ParamError) as e:
        meanfield.solve("tensor", params)
    name = next(iter(params))
    assert str(e.value).startswith(f"{name} must be")
