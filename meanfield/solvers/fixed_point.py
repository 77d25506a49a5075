"""Fixed points of a declared map: safeguarded Newton, compiled and batched.

:func:`iterate` solves ``F(s) = s`` for a batch of (initial state, parameter)
rows in one compiled call. The default method is Newton on ``F(s) - s`` with
the sympy Jacobian, safeguarded (:mod:`meanfield.solvers.newton`) so that it
returns the fixed point the damped iteration from the same start converges
to, with plain iteration (and a straight-orbit escape search) as the
fallback; ``method="iteration"`` is the plain damped iteration alone.

A status is always reported per row: ``ok`` (``max |F(s) - s| <= tol``: the
residual, not the step, is judged), ``not_converged`` (``max_iter`` plain
iterations without reaching it) or ``diverged`` (a non-finite state). Nothing
is silently NaN, and a slow crawl is never reported ``ok``.
"""

from __future__ import annotations

import math

import numpy as np

from .._codegen import njit
from .._model import Model, SolveResult, System
from .newton import STATUS, newton_driver

__all__ = [
    "iterate",
    "solve_batch",
    "solve_model",
    "solve_models",
    "all_fixed_points",
    "STATUS",
    "METHODS",
]

METHODS = ("newton", "iteration")
PARALLEL_ROWS = 512
"""Batches at least this large run over rows in parallel (numba prange)."""
_DRIVERS: dict[str, object] = {}


def _driver(system: System):
    """The plain damped-iteration driver (``method="iteration"``)."""
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


def _rows(system: System, state0, theta):
    state0 = np.asarray(state0, dtype=float)
    theta = np.asarray(theta, dtype=float)
    shape = np.broadcast_shapes(state0.shape[:-1], theta.shape[:-1])
    # writeable C copies: a read-only broadcast view (one row) is another numba
    # type and would compile the driver a second time
    S0 = np.require(
        np.broadcast_to(state0, shape + state0.shape[-1:]).reshape(-1, system.dim),
        requirements=("C", "W", "O"),
    )
    TH = np.require(
        np.broadcast_to(theta, shape + theta.shape[-1:]).reshape(-1, theta.shape[-1]),
        requirements=("C", "W", "O"),
    )
    return shape, S0, TH


def solve_batch(
    system: System,
    state0: np.ndarray,
    theta: np.ndarray,
    *,
    damping: float = 1.0,
    tol: float = 1e-12,
    max_iter: int = 100_000,
    method: str = "newton",
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Fixed points from each start, batched; also returns the residuals.

    Parameters are those of :func:`iterate`.

    Returns
    -------
    state, iterations, status, residual
        ``residual`` is ``max |F(s) - s|`` at the returned state (for
        ``method="iteration"``: at the last iterate).
    """
    if system.kind != "map":
        raise ValueError(f"iterate needs a 'map' system; got {system.kind!r}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    shape, S0, TH = _rows(system, state0, theta)
    n = S0.shape[0]
    S = np.empty_like(S0)
    IT = np.zeros(n, dtype=np.int64)
    ST = np.zeros(n, dtype=np.int64)
    RES = np.zeros(n)
    if method == "newton":
        drv = newton_driver(system, parallel=n >= PARALLEL_ROWS)
        drv(S0, TH, float(damping), float(tol), int(max_iter), True, S, IT, ST, RES)
    else:
        _driver(system)(S0, TH, float(damping), float(tol), int(max_iter), S, IT, ST)
        if n:
            F = system.evaluate("rhs", S, TH)
            RES = np.max(np.abs(F - S), axis=-1)
            RES = np.where(np.isfinite(RES), RES, np.inf)
    status = np.array(STATUS, dtype=object)[ST]
    return (
        S.reshape(shape + (system.dim,)),
        IT.reshape(shape),
        status.reshape(shape),
        RES.reshape(shape),
    )


def iterate(
    system: System,
    state0: np.ndarray,
    theta: np.ndarray,
    *,
    damping: float = 1.0,
    tol: float = 1e-12,
    max_iter: int = 100_000,
    method: str = "newton",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fixed point of ``s <- damping F(s) + (1 - damping) s`` from each start, batched.

    Parameters
    ----------
    system : System
        A ``map`` system.
    state0 : array, shape (..., dim)
    theta : array, shape (..., n_params)
        Broadcast against ``state0``'s leading dimensions.
    damping : float in (0, 1]
    tol : float
        Convergence threshold on the residual ``max |F(s) - s|``.
    max_iter : int
        Plain (fallback) iterations allowed.
    method : {'newton', 'iteration'}
        Safeguarded Newton (default; the same branch as the iteration,
        :mod:`meanfield.solvers.newton`) or the plain damped iteration.

    Returns
    -------
    state : array (..., dim)
    iterations : int array (...)
        Map iterations (plain steps, plus one for an accepted Newton solve).
    status : str array (...) with entries of :data:`STATUS`
    """
    S, IT, ST, _ = solve_batch(
        system, state0, theta, damping=damping, tol=tol, max_iter=max_iter, method=method
    )
    return S, IT, ST


def _prepare(model: Model, init: str | None):
    """What :func:`solve_model` solves for ``model``: the system, its parameters,
    the starts (one per declared initialisation), the requested start's index
    and the solver options."""
    system = model.system()
    theta = model.theta()
    inits = list(getattr(model, "inits", ()))
    init = init or model.values.get("init") or (inits[0] if inits else None)
    names = inits if init in inits else [init]
    s0 = np.stack([model.initial_state(i) for i in names])
    return system, theta, names, init, s0, model.solver_options()


def _result(model, system, names, init, S, IT, ST, RES, phi) -> SolveResult:
    """The :class:`SolveResult` of one model from its rows of a batch solve
    (``S`` etc. of shape ``(len(names), ...)``; ``phi`` the requested start's
    free energy or ``None`` without a potential)."""
    k = names.index(init)
    state = S[k]
    values = model.observables(state)
    values["residual"] = float(RES[k])
    if phi is not None:
        values["free_energy"] = float(phi)
    if len(names) > 1:
        spread = np.max(np.abs(S - S[k]))
        values["branch"] = "unique" if spread < 1e-7 else model.branches.get(init, init)
    else:
        values["branch"] = init
    return SolveResult(state=state, iterations=int(IT[k]), status=str(ST[k]), values=values)


def solve_model(model: Model, init: str | None = None) -> SolveResult:
    """Fixed point of ``model``'s system from the requested initialisation.

    Every initialisation the model declares is iterated; ``branch`` reports
    ``unique`` when they all reach the same fixed point and otherwise the
    branch of the requested one (``Model.branches``).
    """
    system, theta, names, init, s0, opts = _prepare(model, init)
    S, IT, ST, RES = solve_batch(system, s0, theta, **opts)
    k = names.index(init)
    phi = None
    if system.potential is not None:
        phi = system.evaluate("potential", S[k], theta)
    return _result(model, system, names, init, S, IT, ST, RES, phi)


def solve_models(models: list[Model], init: str | None = None) -> list[SolveResult | Exception]:
    """:func:`solve_model` for many models, batched: one compiled call per shared system.

    Models that share a compiled :class:`~meanfield._model.System` (the same
    structure, other parameter values: e.g. the points of a sweep), the same
    solver options and the same starts are solved together, all their starts
    as rows of one :func:`solve_batch` call (and one batched evaluation of
    the free energy). Every row runs the same compiled per-row solver as
    :func:`solve_model`, so each result equals ``solve_model(model, init)``.

    Returns
    -------
    list
        One entry per model, in order: its :class:`SolveResult`, or the
        exception that :func:`solve_model` would have raised for it (a
        failing model never fails the others).
    """
    out: list[SolveResult | Exception | None] = [None] * len(models)
    groups: dict[tuple, list] = {}
    for j, m in enumerate(models):
        try:
            system, theta, names, ini, s0, opts = _prepare(m, init)
            key = (id(system), tuple(names), s0.shape, repr(sorted(opts.items())))
        except Exception as e:
            out[j] = e
            continue
        groups.setdefault(key, []).append((j, system, theta, names, ini, s0, opts))
    for rows in groups.values():
        system, names, opts = rows[0][1], rows[0][3], rows[0][6]
        try:
            S0 = np.stack([r[5] for r in rows])  # (n, len(names), dim)
            TH = np.stack([np.asarray(r[2], dtype=float) for r in rows])
            S, IT, ST, RES = solve_batch(system, S0, TH[:, None, :], **opts)
            phi = None
            if system.potential is not None:
                ks = np.array([r[3].index(r[4]) for r in rows])
                phi = system.evaluate("potential", S[np.arange(len(rows)), ks], TH)
        except Exception:
            # attribute the failure to the model(s) that cause it
            for j, *_ in rows:
                try:
                    out[j] = solve_model(models[j], init)
                except Exception as e:
                    out[j] = e
            continue
        for q, (j, _, _, nm, ini, _, _) in enumerate(rows):
            try:
                out[j] = _result(
                    models[j], system, nm, ini, S[q], IT[q], ST[q], RES[q],
                    None if phi is None else phi[q],
                )
            except Exception as e:
                out[j] = e
    return out  # type: ignore[return-value]


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
    S, _, ST, _ = solve_batch(
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
