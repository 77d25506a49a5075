"""Continuous-time flows ``ds/dt = F(s)``: adaptive, stiff-aware integration.

Shared by every model whose theory or simulator is an ODE (learning dynamics
of student--teacher and feedback-alignment networks, mean-field relaxation).
The right-hand side and its Jacobian come from a declared
:class:`~meanfield._model.System` of kind ``'flow'`` (the Jacobian derived by
sympy and compiled once), or from plain callables for flows whose state is a
matrix best written with numpy.

Implicit methods (``Radau``, ``BDF``, ``LSODA``) receive the Jacobian, so stiff
flows (strong balance, widely separated learning time scales) cost no more
than non-stiff ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._model import System
from .._params import ParamError

__all__ = ["FlowResult", "integrate", "integrate_system"]

METHODS = ("RK45", "DOP853", "Radau", "BDF", "LSODA")


@dataclass
class FlowResult:
    """A trajectory: times ``t`` (n,), states ``s`` (n, dim), status and solver info."""

    t: np.ndarray
    s: np.ndarray
    status: str
    message: str = ""
    nfev: int = 0
    njev: int = 0
    events: list = field(default_factory=list)

    @property
    def final(self) -> np.ndarray:
        return self.s[-1]


def integrate(
    rhs: Callable[[float, np.ndarray], np.ndarray],
    s0,
    t_eval,
    *,
    jac: Callable[[float, np.ndarray], np.ndarray] | None = None,
    method: str = "LSODA",
    rtol: float = 1e-8,
    atol: float = 1e-10,
    events: Any = None,
    max_step: float = np.inf,
) -> FlowResult:
    """Integrate ``ds/dt = rhs(t, s)`` from ``s0`` and report the states at ``t_eval``.

    Parameters
    ----------
    rhs, jac : callable
        ``rhs(t, s) -> (dim,)`` and (optional) ``jac(t, s) -> (dim, dim)``.
    s0 : array_like (dim,)
    t_eval : array_like
        Increasing output times; the integration runs from ``t_eval[0]``.
    method : {'LSODA', 'Radau', 'BDF', 'RK45', 'DOP853'}
        ``LSODA`` switches between stiff and non-stiff methods by itself.
    rtol, atol : float
    events : callable or list, optional
        :func:`scipy.integrate.solve_ivp` events (e.g. an error threshold).

    Returns
    -------
    FlowResult
        ``status`` is ``'ok'``, ``'not_converged'`` (the solver stopped early;
        the message says why) or ``'diverged'`` (non-finite state). The
        trajectory holds the times actually reached, never NaN padding.
    """
    from scipy.integrate import solve_ivp

    if method not in METHODS:
        raise ParamError("method", "one of " + ", ".join(METHODS), method)
    t_eval = np.asarray(t_eval, dtype=float).ravel()
    if t_eval.size < 1 or np.any(np.diff(t_eval) < 0) or not np.all(np.isfinite(t_eval)):
        raise ParamError("t_eval", "finite, non-decreasing times", t_eval.tolist())
    s0 = np.asarray(s0, dtype=float).ravel()
    if t_eval.size == 1:
        return FlowResult(t_eval.copy(), s0[None].copy(), "ok")
    kw: dict[str, Any] = {"rtol": rtol, "atol": atol, "max_step": max_step}
    if jac is not None and method in ("Radau", "BDF", "LSODA"):
        kw["jac"] = jac
    with np.errstate(over="ignore", invalid="ignore"):
        sol = solve_ivp(
            rhs, (t_eval[0], t_eval[-1]), s0, method=method, t_eval=t_eval, events=events, **kw
        )
    s = sol.y.T
    t = sol.t
    status = "ok" if sol.status >= 0 else "not_converged"
    if sol.status == 1:  # a terminal event: the trajectory ends there
        status = "ok"
    if s.size and not np.all(np.isfinite(s)):
        good = np.all(np.isfinite(s), axis=1)
        stop = int(np.argmin(good)) if not good.all() else len(t)
        t, s, status = t[:stop], s[:stop], "diverged"
    return FlowResult(
        t,
        s,
        status,
        str(sol.message),
        int(sol.nfev),
        int(getattr(sol, "njev", 0) or 0),
        list(sol.t_events or []) if events is not None else [],
    )


def integrate_system(
    system: System, theta, s0, t_eval, *, method: str = "LSODA", **kw: Any
) -> FlowResult:
    """:func:`integrate` a declared flow with its compiled right-hand side and sympy Jacobian."""
    if system.kind != "flow":
        raise ParamError("system", "a System of kind 'flow'", system.kind)
    theta = np.asarray(theta, dtype=float)

    def rhs(t, s):
        return system.evaluate("rhs", s, theta)

    def jac(t, s):
        return system.evaluate("jacobian", s, theta)

    return integrate(rhs, s0, t_eval, jac=jac, method=method, **kw)
