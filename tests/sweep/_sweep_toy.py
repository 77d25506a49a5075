"""Module-level toy point functions for the sweep tests (importable by workers)."""

from __future__ import annotations

import time

import numpy as np

from meanfield._params import ParamError

A = [0.0, 0.5, 1.0]
B = [1.0, 2.0, 3.0, 4.0]
GRID = {"a": A, "b": B}


def point(model, params, *, simulate=False, sim=None, seed=0):
    """Closed-form values; not_converged for a == 1, raises at (0.5, 2), invalid at (0, 4)."""
    a, b = params["a"], params["b"]
    if (a, b) == (0.5, 2.0):
        raise RuntimeError("boom at a=0.5, b=2")
    if (a, b) == (0.0, 4.0):
        raise ParamError("b", "a float in [0, 3]", b)
    noise = float(np.random.default_rng(seed).random())
    status = "not_converged" if a == 1.0 else "ok"
    return {
        "status": status,
        "values": {
            "x": a * b + params.get("c", 0.0),
            "y": [a, b, a + b],
            "noise": noise,
            "sim_flag": float(bool(simulate)) + len(sim or {}),
        },
    }


def slow_point(model, params, *, simulate=False, sim=None, seed=0):
    """:func:`point` after a sleep; appends ``a b`` to the log file when done."""
    time.sleep(params["sleep"])
    try:
        return point(model, params, simulate=simulate, sim=sim, seed=seed)
    finally:
        with open(params["log"], "a") as f:
            f.write(f"{params['a']!r} {params['b']!r}\n")


def ragged(model, params, *, simulate=False, sim=None, seed=0):
    """Mode lists of inconsistent length, and a non-numeric value at b == 3."""
    b = params["b"]
    if b == 3.0:
        return {"status": "ok", "values": {"x": "not a number"}}
    n = 2 if b < 2.5 else 3
    return {"status": "ok", "values": {"x": b, "y": [b] * n}}
