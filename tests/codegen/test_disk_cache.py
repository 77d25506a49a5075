"""The generated-code disk cache: a second process loads machine code, never stale code.

`meanfield._codegen.disk_module` writes each generated CPU module once under a
content-hash name; numba's on-disk cache then serves later processes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

SCRIPT = r"""
import json, sys, time
t = time.process_time()
import meanfield
from meanfield.solvers import newton
r = meanfield.solve("tensor", {"delta": 0.7, "order": 2, "prior": "rademacher"})
drv = next(iter(newton._DRIVERS.values()))
stats = drv.kernel.stats  # the system-independent algorithm
print(json.dumps({"overlap": r["overlap"], "status": r["status"],
                  "hits": sum(stats.cache_hits.values()),
                  "misses": sum(stats.cache_misses.values()),
                  "ev_hits": drv.ev_f.cache_hits + drv.ev_j.cache_hits,
                  "module": drv.ev_f._pyfunc.__module__}))
"""


def _run(env_extra):
    env = {**os.environ, **env_extra}
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                         env=env, timeout=600, check=False)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_second_process_loads_the_compiled_driver(tmp_path):
    # a private numba cache too, so that the first process really compiles
    env = {"MEANFIELD_CACHE_DIR": str(tmp_path / "gen"), "NUMBA_CACHE_DIR": str(tmp_path / "nb")}
    first = _run(env)
    second = _run(env)
    assert first["module"].startswith("mfgen_")
    assert first["misses"] >= 1 and first["hits"] == 0 and first["ev_hits"] == 0
    # the algorithm and both evaluators (numba.cfunc, cache=True) come from disk
    assert second["hits"] >= 1 and second["misses"] == 0 and second["ev_hits"] == 2
    # identical numbers from the cached machine code (bitwise: same compiled code)
    assert second["overlap"] == first["overlap"] and second["status"] == "ok"
    assert len(list((tmp_path / "gen").glob("mfgen_*.py"))) >= 3


@pytest.mark.parametrize("setting", ["off", "/proc/not-writable"])
def test_disabled_or_unwritable_cache_means_in_memory_compilation(setting, monkeypatch):
    from meanfield import _codegen

    monkeypatch.setenv("MEANFIELD_CACHE_DIR", setting)
    monkeypatch.setattr(_codegen, "_GEN_DIR", [])
    assert _codegen.gen_dir() is None
    assert _codegen.disk_module("X = 1\n") is None
    # and the generated CPU build then comes from exec (no mfgen_ module)
    monkeypatch.setattr(_codegen, "_DISK", {})
    monkeypatch.setattr(_codegen, "_JIT", {})
    import sympy as sp

    x = sp.Symbol("x")
    fn = _codegen.scalar_function([x**2 + 1], [x], name="cachetest")
    assert _codegen.cpu_import(fn) is None
    assert _codegen.njit(fn)(3.0) == (10.0,)


def test_disk_module_never_rewrites_a_file(tmp_path, monkeypatch):
    from meanfield import _codegen

    monkeypatch.setattr(_codegen, "_GEN_DIR", [tmp_path])
    src = "X = 1\n"
    mod = _codegen.disk_module(src)
    path = tmp_path / f"{mod.__name__}.py"
    stamp = path.stat().st_mtime_ns
    sys.modules.pop(mod.__name__)
    again = _codegen.disk_module(src)
    assert again.X == 1 and path.stat().st_mtime_ns == stamp
    other = _codegen.disk_module("X = 2\n")
    assert other.__name__ != mod.__name__ and other.X == 2
