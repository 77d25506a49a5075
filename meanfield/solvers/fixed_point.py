"""Damped fixed-point iteration of a declared map, compiled once per system.

The driver is generated for the system's arity and runs in numba over a batch
of (initial state, parameter) rows, reporting per row the number of iterations
and a status: ``ok`` (``max |s_{t+1} - s_t| <= tol``), ``not_converged``
(``max_iter`` reached) or ``diverged`` (a non-finite state). A status is always
reported; nothing is silently NaN.
"""

from __future__ import annotations

import math

import numpy as np

from .._codegen import njit
from .._model import Model, SolveResult, System

__all__ = ["iterate", "solve_model", "STATUS"]

STATUS = ("ok", "not_converged", "diverged")
_DRIVERS: dict[str, object] = {}


def _driver(system: System):
    fn = system._fn("rhs")
    if fn.key in _DRIVERS:
        return _DRIVERS[fn.key]
    import numba

    d, k = system.dim, len(system.params)
    s = [f"s{i}" for i in range(d)]
    args = ", ".join(s + [f"TH[b, {j}]" for j in range(k)])
    lines = [
        "def drive(S0, TH, damping, tol, max_iter, S, IT, ST):",
        "    for b in range(S0.shape[0]):",
        *[f"        s{i} = S0[b, {i}]" for i in range(d)],
        "        it = 0",
        "        st = 1",
        "        while it < max_iter:",
        "            it += 1",
        f"            r = f_({args})",
        "            err = 0.0",
        "            fin = True",
    ]
    for i in range(d):
        lines += [
            f"            n{i} = damping * r[{i}] + (1.0 - damping) * s{i}",
            f"            err = max(err, abs(n{i} - s{i}))",
            f"            fin = fin and math.isfinite(n{i})",
            f"            s{i} = n{i}",
        ]
    lines += [
        "            if not fin:",
        "                st = 2",
        "                break",
        "            if err <= tol:",
        "                st = 0",
        "                break",
        *[f"        S[b, {i}] = s{i}" for i in range(d)],
        "        IT[b] = it",
        "        ST[b] = st",
    ]
    ns = {"f_": njit(fn), "math": math}
    exec(compile("\n".join(lines) + "\n", f"<driver {fn.name}>", "exec"), ns)
    out = numba.njit(cache=False)(ns["drive"])
    _DRIVERS[fn.key] = out
    return out


def iterate(
    system: System,
    state0: np.ndarray,
    theta: np.ndarray,
    *,
    damping: float = 1.0,
    tol: float = 1e-12,
    max_iter: int = 100_000,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Iterate ``s <- damping F(s) + (1 - damping) s`` to a fixed point, batched.

    Parameters
    ----------
    system : System
        A ``map`` system.
    state0 : array, shape (..., dim)
    theta : array, shape (..., n_params)
        Broadcast against ``state0``'s leading dimensions.
    damping : float in (0, 1]
    tol : float
        Convergence threshold on ``max |s_{t+1} - s_t|``.
    max_iter : int

    Returns
    -------
    state : array (..., dim)
    iterations : int array (...)
    status : str array (...) with entries of :data:`STATUS`
    """
    if system.kind != "map":
        raise ValueError(f"iterate needs a 'map' system; got {system.kind!r}")
    state0 = np.asarray(state0, dtype=float)
    theta = np.asarray(theta, dtype=float)
    shape = np.broadcast_shapes(state0.shape[:-1], theta.shape[:-1])
    S0 = np.ascontiguousarray(
        np.broadcast_to(state0, shape + state0.shape[-1:]).reshape(-1, system.dim)
    )
    TH = np.ascontiguousarray(
        np.broadcast_to(theta, shape + theta.shape[-1:]).reshape(-1, theta.shape[-1])
    )
    n = S0.shape[0]
    S = np.empty_like(S0)
    IT = np.zeros(n, dtype=np.int64)
    ST = np.zeros(n, dtype=np.int64)
    _driver(system)(S0, TH, float(damping), float(tol), int(max_iter), S, IT, ST)
    status = np.array(STATUS, dtype=object)[ST]
    return S.reshape(shape + (system.dim,)), IT.reshape(shape), status.reshape(shape)


def solve_model(model: Model, init: str | None = None) -> SolveResult:
    """Fixed point of ``model``'s system from the requested initialisation.

    Every initialisation the model declares is iterated; ``branch`` reports
    ``unique`` when they all reach the same fixed point and otherwise the
    branch of the requested one (``Model.branches``).
    """
    system = model.system()
    theta = model.theta()
    inits = list(getattr(model, "inits", ()))
    init = init or model.values.get("init") or (inits[0] if inits else None)
    names = inits if init in inits else [init]
    s0 = np.stack([model.initial_state(i) for i in names])
    opts = model.solver_options()
    S, IT, ST = iterate(system, s0, theta, **opts)
    k = names.index(init)
    state = S[k]
    values = model.observables(state)
    if system.potential is not None:
        values["free_energy"] = float(system.evaluate("potential", state, theta))
    if len(names) > 1:
        spread = np.max(np.abs(S - S[k]))
        values["branch"] = "unique" if spread < 1e-7 else model.branches.get(init, init)
    else:
        values["branch"] = init
    status = str(ST[k])
    return SolveResult(state=state, iterations=int(IT[k]), status=status, values=values)


def all_fixed_points(model: Model, starts: int = 48, tol: float = 1e-11) -> list[dict]:
    """Every fixed point reachable by Newton from starts spread between branches.

    Stable branches come from iteration; unstable ones (the middle branch of a
    coexistence window) are invisible to iteration, so ``F(s) = s`` is also
    solved by ``scipy.optimize.root`` with the sympy Jacobian from ``starts``
    points on the segment between the uninformative and the informed states.

    Returns
    -------
    list of dict
        ``state``, ``stable`` (spectral radius of the Jacobian < 1),
        ``spectral_radius`` and ``free_energy`` (NaN without a potential),
        sorted by the mean order parameter.
    """
    from scipy.optimize import root

    from .stability import spectral_radius

    system = model.system()
    theta = model.theta()
    lo = (
        model.uninformative_state()
        if hasattr(model, "uninformative_state")
        else model.initial_state(model.inits[0])
    )
    hi = model.initial_state(model.inits[-1])
    found: list[np.ndarray] = []
    S, _, ST = iterate(
        system,
        np.stack([model.initial_state(i) for i in model.inits]),
        theta,
        **model.solver_options(),
    )
    found += [s for s, st in zip(S, ST, strict=True) if st == "ok"]

    def fun(s):
        return system.evaluate("rhs", s, theta) - s

    def jac(s):
        return system.evaluate("jacobian", s, theta) - np.eye(system.dim)

    for w in np.linspace(0.0, 1.0, starts):
        sol = root(fun, (1 - w) * lo + w * hi, jac=jac, method="hybr", tol=tol)
        if sol.success and np.all(np.isfinite(sol.x)) and np.max(np.abs(fun(sol.x))) < 1e-9:
            found.append(sol.x)
    unique: list[np.ndarray] = []
    for s in found:
        if all(np.max(np.abs(s - u)) > 1e-7 for u in unique):
            unique.append(s)
    out = []
    for s in sorted(unique, key=lambda x: float(np.mean(x))):
        rho = float(spectral_radius(system, s, theta))
        phi = (
            float(system.evaluate("potential", s, theta))
            if system.potential is not None
            else float("nan")
        )
        out.append({"state": s, "stable": rho < 1.0, "spectral_radius": rho, "free_energy": phi})
    return out
