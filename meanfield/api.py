"""The Python API that the CLI mirrors, one function per command.

Every function takes a model name and a ``dict`` of parameter values (Python
values or the strings the CLI passes), validates them through the model's
declaration, and returns JSON-ready ``dict``s whose keys are the stable
``--json`` contract. The keys are declared by each model and listed by
:func:`describe` (``describe(name)["json"]``: one list of keys per command,
with the model's observables under ``"observables"`` and its simulator's
options under ``"simulate_options"``); the README's tables are generated from
the same declarations.

Bad input raises :class:`meanfield._params.ParamError` (a ``ValueError``) whose
message names the parameter, the allowed values and the value given.
"""

from __future__ import annotations

from typing import Any

from ._model import Model, get_model, registry
from ._params import ParamError

__all__ = [
    "models",
    "describe",
    "solve",
    "threshold",
    "simulate",
    "evaluate_point",
    "fixed_points",
    "phase",
    "branch",
    "ParamError",
]


def models() -> list[str]:
    """Names of the registered models."""
    return sorted(registry())


def build(model: str, params: dict[str, Any] | None = None) -> Model:
    """Validate ``params`` and return the model instance."""
    return get_model(model)(**(params or {}))


def describe(model: str) -> dict[str, Any]:
    """Parameters (with ranges and defaults), order parameters and equations."""
    return get_model(model).describe()


def solve(model: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Solve the model's theory (state evolution / mean field) at one point."""
    return build(model, params).solve().to_dict()


def threshold(
    model: str,
    params: dict[str, Any] | None = None,
    *,
    param: str | None = None,
    kind: str | None = None,
    lo: float | None = None,
    hi: float | None = None,
) -> dict[str, Any]:
    """A phase-transition threshold in ``param`` (the model's :meth:`Model.threshold`).

    ``kind`` is one of the model's threshold kinds (default: the first), and
    ``param`` defaults to the parameter that kind is usually located in; both
    are listed by :func:`describe` under ``"thresholds"``.
    """
    m = build(model, params)
    cls = type(m)
    kinds = cls.threshold_kinds
    if not kinds:
        raise ParamError("model", "a model that declares thresholds", model)
    if kind is None:
        kind = kinds[0]
    if kind not in kinds:
        raise ParamError("kind", "one of " + ", ".join(kinds), kind)
    if param is None:
        param = cls.threshold_params.get(kind)
        if param is None:
            raise ParamError("param", f"a parameter of {model} (no default for {kind})", param)
    return m.threshold(param=param, kind=kind, lo=lo, hi=hi).to_dict()


def simulate(
    model: str,
    params: dict[str, Any] | None = None,
    *,
    size: int | None = None,
    trials: int = 8,
    seed: int = 0,
    backend: str = "cpu",
    **engine: Any,
) -> dict[str, Any]:
    """Run the model's simulator on sampled instances; means and standard errors.

    ``size`` defaults to 256, or to the model's size parameter (e.g. the network
    size ``n``). Extra keyword arguments go to the engine (the model's
    ``simulate_options``, listed by :func:`describe`).
    """
    from meanfield.sims import simulate as _simulate

    return _simulate(
        build(model, params), size=size, trials=trials, seed=seed, backend=backend, **engine
    )


def fixed_points(model: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every fixed point of the theory (stable and unstable branches).

    Returns ``{"fixed_points": [{"overlap", "stable", "spectral_radius", "free_energy"}, ...]}``
    sorted by overlap.
    """
    from .solvers.fixed_point import all_fixed_points

    m = build(model, params)
    out = []
    for f in all_fixed_points(m):
        d = m.observables(f["state"])
        d.update(
            stable=bool(f["stable"]),
            spectral_radius=f["spectral_radius"],
            free_energy=f["free_energy"],
        )
        out.append(d)
    return {"fixed_points": out}


def phase(
    model: str,
    params: dict[str, Any] | None = None,
    *,
    x: str,
    xs,
    y: str = "delta",
    ys,
):
    """Phase diagram (:func:`meanfield.solvers.phase.phase_diagram`) as an ``xarray.Dataset``."""
    from .solvers.phase import phase_diagram

    m = build(model, params)
    if x not in m.params or m.params[x].kind != "float":
        floats = ", ".join(k for k, p in m.params.items() if p.kind == "float")
        raise ParamError("x", f"a float parameter of {model} ({floats})", x)
    return phase_diagram(m, x, xs, y=y, ys=ys, method="curves")


def branch(
    model: str,
    params: dict[str, Any] | None = None,
    *,
    param: str,
    lo: float,
    hi: float,
) -> dict[str, Any]:
    """Fixed-point branches in ``param`` over ``[lo, hi]`` by pseudo-arclength continuation.

    Returns ``{"param", "points": [{"branch", "value", "state", "stable",
    "free_energy", <observables>}, ...], "folds": [values], "bifurcations",
    "crossings", "status"}`` (:func:`meanfield.solvers.continuation.branch_report`).
    """
    from .solvers.continuation import branch_report

    return branch_report(build(model, params), param, lo, hi)


def evaluate_point(
    model: str,
    params: dict[str, Any],
    *,
    simulate: bool = False,
    sim: dict[str, Any] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Everything a sweep records at one grid point.

    Returns
    -------
    dict
        ``{"status": str, "values": {name: float | list[float]}}``. Theory
        values are named as in :func:`solve`; simulation values carry a
        ``sim_`` prefix. List values have one entry per mode.
    """
    m = build(model, params)
    res = m.solve().to_dict()
    values: dict[str, Any] = {
        k: v for k, v in res.items() if k != "status" and _numeric(v)
    }  # strings (e.g. ``branch``) are not sweep variables
    status = res["status"]
    if simulate:
        sim = dict(sim or {})
        out = simulate_fn(m, seed=seed, **sim)
        for k, v in out.items():
            if k != "status" and _numeric(v):
                values[f"sim_{k}"] = v
        if out.get("status", "ok") != "ok" and status == "ok":
            status = "sim_" + out["status"]
    return {"status": status, "values": values}


def _numeric(v: Any) -> bool:
    import numpy as np

    try:
        arr = np.asarray(np.nan if v is None else v, dtype=float)
    except (TypeError, ValueError):
        return False
    return arr.ndim <= 1


def simulate_fn(m: Model, **kw):
    from meanfield.sims import simulate as _simulate

    return _simulate(m, **kw)
