"""Compiled, batched, safeguarded Newton solver for fixed points of a declared map.

For a map ``F`` (state evolution) the fixed points solve ``G(s) = F(s) - s = 0``.
Plain iteration slows down critically near a transition (the contraction
factor tends to one); Newton on ``G`` with the sympy Jacobian ``J - I``
converges quadratically there. Newton alone, however, may land on *another*
fixed point than the iteration from the same start (an unstable middle
branch, or a branch beyond one the iteration would stop at). The driver
therefore accepts a Newton limit ``x`` from the current iterate ``s`` only if

1. ``max |F(x) - x| <= tol`` (convergence is judged on the residual);
2. ``x`` is *stable for the damped iteration*: every eigenvalue ``l`` of
   ``J(x)`` has ``|1 - eta + eta l| <= 1`` (``eta`` the damping), so the
   iteration can converge to it at all;
3. ``x`` lies *ahead* of ``s`` in the direction the iteration moves,
   ``(x - s) . G(s) > 0``;
4. no fixed point lies between: the residual projected on the chord,
   ``p(tau) = G(s + tau (x - s)) . (x - s)``, stays positive on ``(0, 1)``:
   either its quadratic model (from ``p(0)``, ``p(1) = 0`` and ``p'(1)`` by
   the Jacobian at ``x``, which then has no zero inside) is confirmed by
   ``p(1/2)`` to :data:`CHORD_QUAD_TOL`, or ``p`` is positive at
   :data:`SEGMENT` - 1 sample points.

For a monotone map (Bayes-optimal state evolution is one: ``F`` is
order-preserving, Nishimori) the iteration from a start with ``F(s0) >= s0``
increases to the *least* fixed point above ``s0`` (Kleene/Tarski), which on a
branch traced along the chord is the first zero of the projected residual:
conditions 3-4 select it (up to the chord resolution). For a general map the
conditions are a safeguard, not a proof; when any of them fails the driver
falls back to the iteration itself, so the answer is never a different branch
than the one the checks allow, and it stays correct (only slower) when Newton
cannot be trusted.

Escape from a weakly unstable point (the BBP regime, where the iteration grows
by a factor ``1/delta`` per step from ``M = eps``) is accelerated by a search
along the iteration direction: the step ``s + alpha G(s)`` grows (by
:data:`RAY_GROWTH` per stretch, up to :data:`RAY_FAST` while the residual
along the ray stays within :data:`RAY_LINEAR` of its linear model) while the
projected residual stays positive and the residual keeps its direction
(cosine > :data:`RAY_COS`), i.e. while the orbit is straight and no fixed
point has been crossed; the iterate moves to the last such point, refined by
:data:`RAY_BISECT` bisections of the bracket where a sample failed.

A Newton run whose first step goes against the iteration direction
(``dx . G(s) <= 0``: towards the unstable point an orbit escapes from) is
abandoned at once, since its limit could not pass check 3.
"""

from __future__ import annotations

from .._codegen import njit
from . import _newton_kernels as _kernels
from ._newton_kernels import (
    CHORD_QUAD_TOL,
    NEWTON_STEPS,
    RAY_BISECT,
    RAY_COS,
    RAY_FAST,
    RAY_GROWTH,
    RAY_LINEAR,
    RAY_SAMPLES,
    SEGMENT,
)

__all__ = [
    "newton_driver",
    "STATUS",
    "SEGMENT",
    "CHORD_QUAD_TOL",
    "RAY_COS",
    "RAY_GROWTH",
    "RAY_SAMPLES",
    "RAY_FAST",
    "RAY_LINEAR",
    "RAY_BISECT",
    "NEWTON_STEPS",
]

STATUS = ("ok", "not_converged", "diverged")

_DRIVERS: dict[tuple, object] = {}

_EV_SIG_F = "void(float64[::1], float64[::1], float64[::1])"
_EV_SIG_J = "void(float64[::1], float64[::1], float64[:, ::1])"


def _evaluator_source(d: int, k: int) -> str:
    """``ev_f``/``ev_j``: the system's map and Jacobian written into arrays."""
    args = ", ".join([f"s[{i}]" for i in range(d)] + [f"th[{j}]" for j in range(k)])
    return "\n".join([
        "def ev_f(s, th, out):",
        f"    r = f_({args})",
        *[f"    out[{i}] = r[{i}]" for i in range(d)],
        "",
        "",
        "def ev_j(s, th, out):",
        f"    r = j_({args})",
        *[f"    out[{i}, {j}] = r[{i * d + j}]" for i in range(d) for j in range(d)],
    ]) + "\n"


def _disk_evaluators(src: str, f, jf):
    """The evaluators as a disk-cached generated module (see
    :func:`meanfield._codegen.disk_module`), compiled once per machine; ``None``
    without the cache."""
    from .. import _codegen

    imp_f, imp_j = _codegen.cpu_import(f), _codegen.cpu_import(jf)
    if imp_f is None or imp_j is None:
        return None
    head = ["import numba", f"{imp_f} as f_", f"{imp_j} as j_"]
    body = _codegen.jit_decorated(src, "numba.njit(cache=True)", {
        "ev_f": f"numba.cfunc({_EV_SIG_F!r}, cache=True)",
        "ev_j": f"numba.cfunc({_EV_SIG_J!r}, cache=True)",
    })
    try:
        mod = _codegen.disk_module("\n".join(head) + "\n\n\n" + body)
    except Exception:  # pragma: no cover - a broken cache folder never breaks a run
        return None
    return None if mod is None else (mod.ev_f, mod.ev_j)


def newton_driver(system, parallel: bool = False):
    """The compiled batch driver for ``system`` (cached per system and mode).

    ``drive(S0, TH, damping, tol, max_iter, use_newton, S, IT, ST, RES)``
    solves each row of ``S0``/``TH`` in place of ``S`` and reports the map
    evaluations ``IT``, the status index ``ST`` (into :data:`STATUS`) and the
    final residual ``RES = max |F(s) - s|``.

    The algorithm is compiled once per machine
    (:mod:`meanfield.solvers._newton_kernels`, system-independent, disk-cached);
    a system adds only its two evaluators, passed to it as first-class
    functions (``numba.cfunc``).
    """
    import numba

    f = system._fn("rhs")
    jf = system._fn("jacobian")
    key = (f.key, jf.key, bool(parallel))
    if key in _DRIVERS:
        return _DRIVERS[key]
    src = _evaluator_source(system.dim, len(system.params))
    evs = _disk_evaluators(src, f, jf)
    if evs is None:
        ns = {"f_": njit(f), "j_": njit(jf)}
        exec(compile(src, f"<newton evaluators {f.name}>", "exec"), ns)
        evs = (numba.cfunc(_EV_SIG_F)(ns["ev_f"]), numba.cfunc(_EV_SIG_J)(ns["ev_j"]))
    ev_f, ev_j = evs
    kernel = _kernels.drive_parallel if parallel else _kernels.drive

    def drive(S0, TH, damping, tol, max_iter, use_newton, S, IT, ST, RES):
        kernel(ev_f, ev_j, S0, TH, damping, tol, max_iter, use_newton, S, IT, ST, RES)

    drive.kernel, drive.ev_f, drive.ev_j = kernel, ev_f, ev_j
    _DRIVERS[key] = drive
    return drive
