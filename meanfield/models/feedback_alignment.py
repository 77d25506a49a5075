"""Low-dimensional feedback alignment: learning dynamics of linear networks.

Hanut & Kadmon, "(Efficiently) Training Large Neural Networks With
Low-Dimensional Error Feedback", arXiv:2502.20580 (2025); digest
``shared/papers/feedback_alignment.md`` (§ numbers below refer to it; the paper
body could not be read, so the reductions are derived here, not transcribed).

Two-layer linear network ``yhat = W2 W1 x`` (``W1`` k x n, ``W2`` m x k),
whitened inputs ``<x x^T> = I`` and task ``Sigma_yx = U S V^T`` of rank ``d``.
With ``D = Sigma_yx - W2 W1`` and time in units of ``tau = 1/eta``
(digest §2.2):

.. math::

    \\dot W_2 = D W_1^T - \\lambda W_2, \\qquad
    \\dot W_1 = B D - \\lambda W_1,

where the error reaches the hidden layer through ``B = W2^T`` (``bp``), a fixed
random ``k x m`` matrix (``fa``; ``dfa`` is the same in a two-layer network),
or a rank-``r`` pathway ``B = Q P`` (``Q`` k x r, ``P`` r x m) that is fixed
(``fixed``), descends ``1/2 |W2^T - QP|^2`` (``normative``), receives the
gradient a factorised copy ``W2 ~ (QP)^T`` would get (``local``,
Kolen--Pollack type) or learns ``P`` by Oja's subspace rule on the error
covariance (``oja``). Feedback runs ``kappa = eta_b / eta`` times faster.

Every right-hand side is **derived by sympy** from the loss with matrix
calculus (:func:`matrix_rules`); the mode-coordinate reduction
(:func:`mode_rhs`) substitutes a decoupled (diagonal) ansatz and reads the
diagonal off, and the scalar results -- Saxe's logistic for ``bp``, the
conserved ``q b - a^2/2`` of fixed feedback, the tracking equation
``q' = kappa (Q^2 + P^2)(b - q)`` of normative feedback -- are derived in
:func:`scalar_theory`. ``solve`` integrates the full matrix flow
(:mod:`meanfield.solvers.flow`; the stiff integrators get its Jacobian, derived by
sympy as directional derivatives in Kronecker form, :func:`matrix_jacobian_numeric`)
from one seeded realisation and reports the
loss, the normalised mode strengths ``sigma_hat_a = [U^T W2 W1 V]_aa / s_a``
and the spurious-solution diagnostics (``|P D|`` against ``|D|``, the
Eckart--Young floor ``1/2 sum_{a>r} s_a^2``).
"""

from __future__ import annotations

import time
from functools import cache
from typing import Any, ClassVar

import numpy as np
import sympy as sp

from .._model import Model, SolveResult, System
from .._params import Param, ParamError

__all__ = [
    "FeedbackAlignment",
    "RULES",
    "ADAPTIVE",
    "matrix_rules",
    "matrix_rhs_numeric",
    "matrix_jvp_rules",
    "matrix_jacobian_numeric",
    "mode_rhs",
    "scalar_theory",
    "realization",
    "eckart_young_floor",
    "metrics",
]

#: Learning rules: how the output error reaches the hidden layer.
RULES = ("bp", "fa", "dfa", "fixed", "normative", "local", "oja")
#: Rules whose feedback ``B = Q P`` learns.
ADAPTIVE = ("normative", "local", "oja")
#: Rules with a rank-``r`` pathway ``B = Q P``.
LOW_RANK = ("fixed", *ADAPTIVE)
#: Largest accepted singular value of the task (beyond it ``1/s`` is below any
#: useful time resolution of a run measured in ``tau``).
SPECTRUM_MAX = 1e4
#: Longest accepted time, in ``tau``.
T_MAX = 1e6
#: Largest accepted layer width.
DIM_MAX = 512
#: Work budget of one matrix-flow integration: right-hand-side evaluations and
#: wall-clock seconds. A flow that needs more (stiff blow-up of an unstable
#: rule, ``s_max t`` huge) ends with ``status = 'not_converged'`` and the time
#: reached, never a hang.
MAX_NFEV = 400_000
MAX_SECONDS = 20.0
#: Largest accepted ``s_max * max(1, kappa) * t`` (the stiffness-times-horizon of a run).
MAX_RATE_T = 5e4


class _Budget(Exception):
    """Raised inside the right-hand side when the integration budget is spent."""


# -- symbolic derivations ---------------------------------------------------------------
@cache
def _msyms():
    n, k, m, r = sp.symbols("n k m r", integer=True, positive=True)
    return {
        "dims": (n, k, m, r),
        "W1": sp.MatrixSymbol("W1", k, n),
        "W2": sp.MatrixSymbol("W2", m, k),
        "S": sp.MatrixSymbol("S", m, n),
        "B": sp.MatrixSymbol("B", k, m),
        "Q": sp.MatrixSymbol("Q", k, r),
        "P": sp.MatrixSymbol("P", r, m),
        "G": sp.MatrixSymbol("G", m, k),
        "C": sp.MatrixSymbol("C", m, m),
    }


@cache
def matrix_rules() -> dict[str, dict[str, sp.MatrixExpr]]:
    """Population gradient-flow right-hand sides of every rule (no decay terms).

    Derived with sympy's matrix calculus from the loss
    ``L = 1/2 tr(D^T D)``, ``D = S - W2 W1`` (digest §2.2):

    * ``W2`` always descends ``L``: ``-dL/dW2 = D W1^T``;
    * ``W1`` receives ``-dL/dW1 = W2^T D`` with the transported ``W2^T``
      replaced by the rule's feedback (``B`` or ``Q P``);
    * ``normative``: ``-d/d(Q, P)`` of ``1/2 |W2^T - QP|_F^2``;
    * ``local``: the chain rule of ``L`` through a factorised copy
      ``W2 = P^T Q^T`` (gradient ``G = dL/dW2`` at the actual ``W2``);
    * ``oja``: Oja's subspace rule ``P C - P C P^T P`` on the error covariance
      ``C`` (not a gradient; Oja 1989) and the local ``Q`` update.

    Returns
    -------
    dict
        ``rule -> {"W1": ..., "W2": ..., "Q": ..., "P": ...}`` (matrix expressions;
        feedback entries only for the rank-``r`` rules; ``fa``/``dfa`` use ``B``).
    """
    s = _msyms()
    W1, W2, S, B, Q, P, G, C = (s[k] for k in ("W1", "W2", "S", "B", "Q", "P", "G", "C"))
    D = S - W2 * W1
    L = sp.Trace(D.T * D) / 2
    dW2 = sp.expand(-sp.diff(L, W2))
    dW1_bp = sp.expand(-sp.diff(L, W1))
    out: dict[str, dict[str, sp.MatrixExpr]] = {}
    out["bp"] = {"W1": dW1_bp, "W2": dW2}
    fa = sp.expand(dW1_bp.xreplace({W2.T: B}))
    out["fa"] = {"W1": fa, "W2": dW2}
    out["dfa"] = {"W1": fa, "W2": dW2}
    lr = sp.expand(dW1_bp.xreplace({W2.T: Q * P}))
    out["fixed"] = {"W1": lr, "W2": dW2}
    E = W2.T - Q * P
    Lb = sp.Trace(E.T * E) / 2
    out["normative"] = {
        "W1": lr,
        "W2": dW2,
        "Q": sp.expand(-sp.diff(Lb, Q)),
        "P": sp.expand(-sp.diff(Lb, P)),
    }
    # chain rule through W2 = P^T Q^T: dL = tr(G^T dW2)
    Llin = sp.Trace(G.T * P.T * Q.T)
    gW2 = sp.diff(L, W2)
    dQ_loc = sp.expand((-sp.diff(Llin, Q)).xreplace({G: gW2}))
    dP_loc = sp.expand((-sp.diff(Llin, P)).xreplace({G: gW2}))
    out["local"] = {"W1": lr, "W2": dW2, "Q": dQ_loc, "P": dP_loc}
    out["oja"] = {"W1": lr, "W2": dW2, "Q": dQ_loc, "P": sp.expand(P * C - P * C * P.T * P)}
    return out


@cache
def _numeric_rule(rule: str):
    s = _msyms()
    args = [s[k] for k in ("W1", "W2", "S", "B", "Q", "P", "C")]
    return {
        key: sp.lambdify(args, expr, "numpy", docstring_limit=0)
        for key, expr in matrix_rules()[rule].items()
    }


def matrix_rhs_numeric(
    rule: str,
    W1: np.ndarray,
    W2: np.ndarray,
    S: np.ndarray,
    B: np.ndarray | None = None,
    Q: np.ndarray | None = None,
    P: np.ndarray | None = None,
    *,
    kappa: float = 1.0,
    lam: float = 0.0,
    lam_b: float = 0.0,
) -> dict[str, np.ndarray]:
    """The sympy-derived flow of ``rule`` evaluated on numpy matrices (time in ``tau``).

    Weight decay ``-lam W`` on ``W1, W2`` and ``-lam_b (Q, P)`` on learned
    feedback (``local``, ``oja``; the normative rule has its own fixed point);
    feedback terms are multiplied by ``kappa = eta_b / eta``. For ``oja`` the
    error covariance is ``C = D D^T / tr(D D^T)``.
    """
    fns = _numeric_rule(rule)
    C = None
    if rule == "oja":
        Dm = S - W2 @ W1
        C = Dm @ Dm.T
        tr = float(np.trace(C))
        C = C / tr if tr > 0 else np.zeros_like(C)
    zero = np.zeros((1, 1))
    args = [
        W1,
        W2,
        S,
        zero if B is None else B,
        zero if Q is None else Q,
        zero if P is None else P,
        zero if C is None else C,
    ]
    out = {key: np.asarray(f(*args), dtype=float) for key, f in fns.items()}
    out["W1"] = out["W1"] - lam * W1
    out["W2"] = out["W2"] - lam * W2
    if "Q" in out:
        dec = lam_b if rule in ("local", "oja") else 0.0
        out["Q"] = kappa * (out["Q"] - dec * Q)
        out["P"] = kappa * (out["P"] - (dec * P if rule == "local" else 0.0))
    return out


#: Rules whose matrix flow gets the sympy-derived Jacobian. ``oja``'s covariance
#: ``C = D D^T / tr(D D^T)`` depends on the weights through a trace normalisation that
#: :func:`matrix_rules` keeps as a symbol: its Jacobian is left to the solver's finite
#: differences.
JAC_RULES = ("bp", "fa", "dfa", "fixed", "normative", "local")


def _states(rule: str) -> list[str]:
    """The matrices a rule's flow evolves (fixed feedback ``Q, P`` is a constant)."""
    return ["W1", "W2"] + (["Q", "P"] if rule in ADAPTIVE else [])


def _vsyms():
    n, k, m, r = _msyms()["dims"]
    return {
        "W1": sp.MatrixSymbol("V1", k, n),
        "W2": sp.MatrixSymbol("V2", m, k),
        "Q": sp.MatrixSymbol("VQ", k, r),
        "P": sp.MatrixSymbol("VP", r, m),
    }


def _linear_part(expr, e: sp.Symbol):
    """The terms of an expanded matrix polynomial that are linear in the scalar ``e``, / e."""
    ex = sp.expand(expr)
    terms = ex.args if isinstance(ex, sp.MatAdd) else (ex,)
    keep = []
    for term in terms:
        c, mm = term.as_coeff_mmul()
        c = sp.sympify(c)
        if c.has(e) and sp.Poly(c, e).degree() == 1 and sp.Poly(c, e).TC() == 0:
            coeff = sp.expand(c / e)
            keep.append(mm if coeff == 1 else coeff * mm)
    return sp.MatAdd(*keep) if keep else None


@cache
def matrix_jvp_rules() -> dict[str, dict[str, sp.MatrixExpr]]:
    """Directional derivatives of :func:`matrix_rules` (the Jacobian applied to ``V``).

    For each rule of :data:`JAC_RULES` and each block of its flow, sympy expands the
    right-hand side at ``X + e V_X`` (``X`` over the evolving matrices ``W1, W2`` and,
    for learned feedback, ``Q, P``) and keeps the terms linear in ``e``: the exact
    ``d/de rhs(X + e V) |_{e=0}`` as a matrix expression in ``X``, ``V``, ``S``, ``B``.
    """
    s, V = _msyms(), _vsyms()
    e = sp.Symbol("e")
    out: dict[str, dict[str, sp.MatrixExpr]] = {}
    for rule, blocks in matrix_rules().items():
        if rule not in JAC_RULES:
            continue
        sub = {s[x]: s[x] + e * V[x] for x in _states(rule)}
        out[rule] = {key: _linear_part(expr.xreplace(sub), e) for key, expr in blocks.items()}
    return out


@cache
def _numeric_jvp(rule: str):
    """Kronecker form of the directional derivatives: for every (flow block, state) pair,
    the terms ``c L V R`` or ``c L V^T R`` with ``L``, ``R`` lambdified (``None``: identity)."""
    s, V = _msyms(), _vsyms()
    args = [s[k] for k in ("W1", "W2", "S", "B", "Q", "P")]
    by_symbol = {V[k]: k for k in V}
    out: dict[tuple[str, str], list] = {}
    for blk, expr in matrix_jvp_rules()[rule].items():
        if expr is None:
            continue
        for term in expr.args if isinstance(expr, sp.MatAdd) else (expr,):
            c, mm = term.as_coeff_mmul()
            factors = list(mm.args) if isinstance(mm, sp.MatMul) else [mm]
            pos = [
                i
                for i, f in enumerate(factors)
                if f in by_symbol or (isinstance(f, sp.Transpose) and f.arg in by_symbol)
            ]
            if len(pos) != 1:  # a linear part has exactly one direction factor per term
                raise AssertionError(f"{rule} {blk}: term {term} is not linear in V")
            i = pos[0]
            f = factors[i]
            transposed = isinstance(f, sp.Transpose)
            state = by_symbol[f.arg if transposed else f]

            def fn(parts):
                if not parts:
                    return None
                e = parts[0] if len(parts) == 1 else sp.MatMul(*parts)
                return sp.lambdify(args, e, "numpy", docstring_limit=0)

            out.setdefault((blk, state), []).append(
                (float(c), fn(factors[:i]), fn(factors[i + 1 :]), transposed)
            )
    return out


def matrix_jacobian_numeric(
    rule: str,
    W1: np.ndarray,
    W2: np.ndarray,
    S: np.ndarray,
    B: np.ndarray | None = None,
    Q: np.ndarray | None = None,
    P: np.ndarray | None = None,
    *,
    kappa: float = 1.0,
    lam: float = 0.0,
    lam_b: float = 0.0,
) -> np.ndarray:
    """Dense Jacobian of :func:`matrix_rhs_numeric` in the packed state (``W1, W2`` and,
    for learned feedback, ``Q, P``, each row-major).

    Every term of the sympy directional derivatives (:func:`matrix_jvp_rules`) is
    ``c L V R`` or ``c L V^T R``; with row-major vectorisation its block is
    ``c kron(L, R^T)`` (columns permuted for ``V^T``).
    """
    if rule not in JAC_RULES:
        raise ParamError("rule", "one of " + ", ".join(JAC_RULES), rule)
    terms = _numeric_jvp(rule)
    zero = np.zeros((1, 1))
    X = {"W1": W1, "W2": W2, "Q": zero if Q is None else Q, "P": zero if P is None else P}
    base = [W1, W2, S, zero if B is None else B, X["Q"], X["P"]]
    states = _states(rule)
    off = np.cumsum([0] + [X[k].size for k in states])
    at = {k: (int(off[i]), int(off[i + 1])) for i, k in enumerate(states)}
    J = np.zeros((off[-1], off[-1]))
    dec = lam_b if rule == "local" else 0.0
    for (blk, state), items in terms.items():
        (r0, r1), (c0, c1) = at[blk], at[state]
        a, b = X[state].shape
        block = np.zeros((r1 - r0, c1 - c0))
        for c, Lf, Rf, transposed in items:
            L = np.eye(X[blk].shape[0]) if Lf is None else np.asarray(Lf(*base), dtype=float)
            R = np.eye(X[blk].shape[1]) if Rf is None else np.asarray(Rf(*base), dtype=float)
            K = c * np.kron(L, R.T)
            if transposed:  # vec(V^T)[j a + i] = vec(V)[i b + j]
                K = K[:, (np.arange(b)[None, :] * a + np.arange(a)[:, None]).ravel()]
            block += K
        J[r0:r1, c0:c1] = block
    for k in states:  # decay, then the feedback's time scale kappa
        r0, r1 = at[k]
        J[np.arange(r0, r1), np.arange(r0, r1)] -= lam if k in ("W1", "W2") else dec
        if k in ("Q", "P"):
            J[r0:r1] *= kappa
    return J


def _mode_symbols(d: int):
    a = sp.symbols(f"a1:{d + 1}", real=True)
    b = sp.symbols(f"b1:{d + 1}", real=True)
    q = sp.symbols(f"Q1:{d + 1}", real=True)
    p = sp.symbols(f"P1:{d + 1}", real=True)
    s = sp.symbols(f"s1:{d + 1}", positive=True)
    fb = sp.symbols(f"q1:{d + 1}", real=True)
    kappa, lam, lam_b = sp.symbols("kappa lambda lambda_b", real=True)
    return a, b, q, p, s, fb, kappa, lam, lam_b


@cache
def mode_rhs(rule: str, d: int) -> tuple[tuple, tuple, tuple, dict]:
    """Mode-coordinate reduction of ``rule`` with ``d`` decoupled modes (digest §2.3–2.4).

    In the rotated frame ``W1 V``, ``U^T W2``, ``P U`` the decoupled ansatz puts
    mode ``a`` on hidden unit ``a``: ``W1 V = diag(a)``, ``U^T W2 = diag(b)``,
    ``B U = diag(q)`` (fixed) or ``Q = diag(Q_a)``, ``P U = diag(P_a)``
    (learned). The sympy matrix rules are evaluated on these explicit matrices;
    the diagonal is the reduced flow, and the off-diagonal entries must vanish
    (the decoupled manifold is invariant; ``offdiag`` is returned for the tests).

    Returns
    -------
    state, params, rhs, extra
        sympy symbols of the state and parameters, the right-hand sides, and
        ``{"offdiag": [...]}``.
    """
    if rule not in RULES:
        raise ParamError("rule", "one of " + ", ".join(RULES), rule)
    a, b, qs, ps, s, fb, kappa, lam, lam_b = _mode_symbols(d)
    W1 = sp.diag(*a)
    W2 = sp.diag(*b)
    S = sp.diag(*s)
    Dm = S - W2 * W1
    subs: dict[str, Any] = {"W1": W1, "W2": W2, "S": S}
    adaptive = rule in ADAPTIVE
    if adaptive:
        subs["Q"] = sp.diag(*qs)
        subs["P"] = sp.diag(*ps)
    elif rule in ("fa", "dfa"):
        subs["B"] = sp.diag(*fb)
    elif rule == "fixed":  # B = Q P with the fixed strengths q_a = Q_a P_a
        subs["Q"] = sp.eye(d)
        subs["P"] = sp.diag(*fb)
    if rule == "oja":
        C = Dm * Dm.T
        subs["C"] = C / C.trace()
    ms = _msyms()
    rep = {ms[k]: v for k, v in subs.items()}
    rules = matrix_rules()[rule]
    offdiag: list[sp.Expr] = []

    def reduce(key: str) -> list[sp.Expr]:
        M = rules[key].xreplace(rep).as_explicit()
        M = M.applyfunc(sp.expand)
        # expanded, not simplified (cheap; the tests simplify them to zero)
        offdiag.extend(M[i, j] for i in range(d) for j in range(d) if i != j)
        return [M[i, i] for i in range(d)]

    rhs = [e - lam * x for e, x in zip(reduce("W1"), a, strict=True)]
    rhs += [e - lam * x for e, x in zip(reduce("W2"), b, strict=True)]
    state = [*a, *b]
    params = [*s]
    if rule in ("fa", "dfa", "fixed"):
        params += [*fb]
    if adaptive:
        dec = lam_b if rule in ("local", "oja") else 0
        decp = lam_b if rule == "local" else 0
        rhs += [kappa * (e - dec * x) for e, x in zip(reduce("Q"), qs, strict=True)]
        rhs += [kappa * (e - decp * x) for e, x in zip(reduce("P"), ps, strict=True)]
        state += [*qs, *ps]
    params += [kappa, lam, lam_b]
    tidy = sp.together if rule == "oja" else sp.expand  # polynomial except oja's 1/tr C
    return tuple(state), tuple(params), tuple(tidy(e) for e in rhs), {"offdiag": offdiag}


@cache
def scalar_theory() -> dict[str, Any]:
    """Closed forms of the one-mode reductions (digest §2.4), derived by sympy.

    Returns a dict of sympy objects:

    ``saxe``
        ``u(t)`` solving ``u' = 2 u (s - u)`` (``bp`` with ``a = b``, ``u = ab``), by ``dsolve``.
    ``bp_conserved``
        ``a^2 - b^2`` (its time derivative under the ``bp`` mode flow is zero).
    ``fixed_conserved``
        ``q b - a^2 / 2`` (conserved by the fixed-feedback flow).
    ``fixed_point``
        ``(a*, b*)`` on ``c = 0``: ``a* = (2 q s)^(1/3)``, ``b* = a*^2/(2 q)``.
    ``reduced_fixed``
        ``q s - a^3/2``: the fixed-feedback flow of ``a`` on ``c = 0``.
    ``tracking``
        ``kappa (Q^2 + P^2)(b - Q P)``: the flow of ``q = QP`` under the normative rule.
    ``half_time``
        time for ``u`` to go from ``u0`` to ``s/2``.
    """
    t, s, u0, a, b, q, Q, P, kappa = sp.symbols("t s u0 a b q Q P kappa", positive=True)
    u = sp.Function("u")
    sol = sp.dsolve(sp.Eq(u(t).diff(t), 2 * u(t) * (s - u(t))), u(t), ics={u(0): u0})
    saxe = sp.simplify(sol.rhs)
    half = sp.solve(sp.Eq(saxe, s / 2), t)
    c_bp = a**2 - b**2
    c_fix = q * b - a**2 / 2
    astar = sp.cbrt(2 * q * s)
    bstar = astar**2 / (2 * q)
    # tracking: d(QP)/dt under the normative mode flow
    st, pa, rhs, _ = mode_rhs("normative", 1)
    Qs, Ps, bs = st[2], st[3], st[1]
    dq = sp.factor(rhs[2] * Ps + Qs * rhs[3])
    return {
        "t": t,
        "s": s,
        "u0": u0,
        "a": a,
        "b": b,
        "q": q,
        "Q": Q,
        "P": P,
        "kappa": kappa,
        "saxe": saxe,
        "half_time": sp.simplify(half[0]) if half else None,
        "bp_conserved": c_bp,
        "fixed_conserved": c_fix,
        "fixed_point": (astar, bstar),
        "reduced_fixed": q * s - a**3 / 2,
        "tracking": dq.xreplace({Qs: Q, Ps: P, bs: b, pa[1]: kappa}),
    }


def saxe_curve(s, u0, t) -> np.ndarray:
    """Saxe et al. (2014) logistic ``u(t) = s e^{2st} / (e^{2st} - 1 + s/u0)`` (numpy)."""
    s, u0, t = (np.asarray(x, dtype=float) for x in (s, u0, t))
    e = np.exp(np.minimum(2 * s * t, 700.0))
    return s * e / (e - 1.0 + s / u0)


def eckart_young_floor(spectrum, r: int) -> float:
    """Best loss of a rank-``r`` product: ``1/2 sum_{a > r} s_a^2`` (Eckart–Young)."""
    s = np.sort(np.asarray(spectrum, dtype=float))[::-1]
    return float(0.5 * np.sum(s[r:] ** 2))


# -- one seeded realisation (shared by theory and simulation) ----------------------------------
def _orth(rng: np.random.Generator, n: int) -> np.ndarray:
    q, rr = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(rr))


def realization(model: FeedbackAlignment, seed: int | None = None) -> dict[str, np.ndarray]:
    """Task and initial condition of one instance: ``U, V, S, Sigma_yx, W1, W2, B, Q, P``.

    ``start='random'``: ``U, V`` Haar, ``W`` entries ``N(0, init^2)``,
    fixed ``B ~ N(0, 1/m)``, ``Q ~ N(0, 1/r)``, ``P ~ N(0, 1/m)`` (digest §5.9).
    ``start='aligned'``: the decoupled initial condition of the mode reduction,
    ``W1 = sqrt(u0) e_a v_a^T``, ``W2 = sqrt(u0) u_a e_a^T`` (``a <= d``), feedback
    on the first ``r`` modes (``Q = e_a``, ``P = q0 u_a^T``; ``fa``: ``B = e u^T``).
    """
    v = model.values
    n, k, m, d = v["n"], v["k"], v["m"], model.d
    r = min(v["r"], k, m)  # only the rank-r rules use Q, P (and they check r <= min(k, m))
    seed = v["seed"] if seed is None else seed
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 12]))
    U, V = _orth(rng, m), _orth(rng, n)
    s = np.asarray(model.spectrum, dtype=float)
    S = np.zeros((m, n))
    S[np.arange(d), np.arange(d)] = s
    Syx = U @ S @ V.T
    out: dict[str, np.ndarray] = {"U": U, "V": V, "S": S, "Syx": Syx, "spectrum": s}
    if v["start"] == "random":
        out["W1"] = v["init"] * rng.standard_normal((k, n))
        out["W2"] = v["init"] * rng.standard_normal((m, k))
        out["B"] = rng.standard_normal((k, m)) / np.sqrt(m)
        out["Q"] = rng.standard_normal((k, r)) / np.sqrt(r)
        out["P"] = rng.standard_normal((r, m)) / np.sqrt(m)
    else:
        if k < d:
            raise ParamError("k", f"an integer >= d = {d} for start=aligned", k)
        g = np.sqrt(v["u0"])
        E1 = np.zeros((k, n))
        E1[np.arange(d), np.arange(d)] = g
        E2 = np.zeros((m, k))
        E2[np.arange(d), np.arange(d)] = g
        out["W1"] = E1 @ V.T
        out["W2"] = U @ E2
        Bm = np.zeros((k, m))
        Bm[np.arange(min(k, m)), np.arange(min(k, m))] = 1.0
        out["B"] = Bm @ U.T
        Qm = np.zeros((k, r))
        Qm[np.arange(r), np.arange(r)] = 1.0
        Pm = np.zeros((r, m))
        Pm[np.arange(r), np.arange(r)] = v["q0"]
        out["Q"] = Qm
        out["P"] = Pm @ U.T
    return out


def feedback_matrix(rule: str, W2: np.ndarray, B, Q, P) -> np.ndarray:
    """The ``k x m`` matrix that carries the error to the hidden layer."""
    if rule == "bp":
        return np.swapaxes(W2, -1, -2)
    if rule in ("fa", "dfa"):
        return B
    return Q @ P


def metrics(rule: str, Syx, U, V, spectrum, W1, W2, B=None, Q=None, P=None) -> dict[str, Any]:
    """Loss, ``sigma_hat`` and alignment diagnostics of one network (digest §2.6).

    Works on single matrices or on stacks with a leading trial axis.
    """
    s = np.asarray(spectrum, dtype=float)
    d = s.size
    Dm = Syx - W2 @ W1
    loss = 0.5 * np.sum(Dm**2, axis=(-2, -1))
    M = np.swapaxes(U, -1, -2) @ W2 @ W1 @ V
    sig = np.diagonal(M, axis1=-2, axis2=-1)[..., :d] / s
    Bf = feedback_matrix(rule, W2, B, Q, P)
    num = np.sum(Bf * np.swapaxes(W2, -1, -2), axis=(-2, -1))
    den = np.linalg.norm(Bf, axis=(-2, -1)) * np.linalg.norm(W2, axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        angle = np.degrees(np.arccos(np.clip(num / den, -1.0, 1.0)))
    out = {
        "loss": loss,
        "sigma_hat": sig,
        "d_norm": np.linalg.norm(Dm, axis=(-2, -1)),
        "bd_norm": np.linalg.norm(Bf @ Dm, axis=(-2, -1)),
        "angle": angle,
    }
    if rule in LOW_RANK:
        out["pd_norm"] = np.linalg.norm(P @ Dm, axis=(-2, -1))
        Ud = U[..., :, :d]
        # projector onto row(P): P^T (P P^T)^+ P
        Pt = np.swapaxes(P, -1, -2)
        proj = Pt @ np.linalg.pinv(P @ Pt) @ P
        r = P.shape[-2]
        out["overlap"] = np.sum((proj @ Ud) ** 2, axis=(-2, -1)) / min(r, d)
        out["recon"] = np.linalg.norm(np.swapaxes(W2, -1, -2) - Bf, axis=(-2, -1)) / np.maximum(
            np.linalg.norm(W2, axis=(-2, -1)), 1e-300
        )
    return out


# -- the model ----------------------------------------------------------------------------------
class FeedbackAlignment(Model):
    """Two-layer linear network trained with rank-``r`` feedback ``B = Q P`` (Hanut and Kadmon)."""

    name = "feedback_alignment"
    description = (
        "learning dynamics of linear networks trained with backprop, feedback alignment "
        "or low-dimensional (rank-r) feedback B = QP, fixed or adaptive"
    )
    reference = "Hanut & Kadmon 2025, arXiv:2502.20580"
    params: ClassVar[dict[str, Param]] = {
        "rule": Param("rule", "choice", "normative", choices=RULES, doc="learning rule"),
        "r": Param("r", "int", 2, lo=1, doc="feedback rank (B = QP; rank-r rules)"),
        "d": Param("d", "int", None, lo=1, doc="task rank (auto: len(spectrum), else 4)"),
        "spectrum": Param(
            "spectrum",
            "float",
            None,
            lo=0,
            lo_open=True,
            hi=SPECTRUM_MAX,
            per_mode=True,
            doc="singular values s_1..s_d of Sigma_yx (auto: d, d-1, .., 1)",
        ),
        "t": Param("t", "float", 10.0, lo=0, hi=T_MAX, doc="time in units of tau = 1/eta"),
        "n": Param("n", "int", 16, lo=1, hi=DIM_MAX, doc="input dimension"),
        "k": Param("k", "int", 16, lo=1, hi=DIM_MAX, doc="hidden width"),
        "m": Param("m", "int", 8, lo=1, hi=DIM_MAX, doc="output dimension"),
        "kappa": Param(
            "kappa",
            "float",
            None,
            lo=0,
            hi=1e3,
            doc="feedback rate eta_b / eta (auto: 10 for normative, 1 for local and oja)",
        ),
        "lam": Param(
            "lam", "float", 0.0, lo=0, hi=10, doc="weight decay on W1, W2 (units of 1/tau)"
        ),
        "lam_b": Param("lam_b", "float", 0.0, lo=0, hi=10, doc="decay on Q, P (local, oja)"),
        "init": Param(
            "init", "float", 1e-2, lo=0, hi=1, doc="std of initial W entries (random start)"
        ),
        "start": Param(
            "start",
            "choice",
            "random",
            choices=("random", "aligned"),
            doc="random init, or the decoupled (mode-aligned) start of the mode reduction",
        ),
        "u0": Param(
            "u0", "float", 1e-3, lo=0, lo_open=True, hi=1, doc="aligned start: a_a b_a at t=0"
        ),
        "q0": Param(
            "q0", "float", 1.0, lo=-100, hi=100, doc="aligned start: feedback strength per mode"
        ),
        "seed": Param(
            "seed", "int", 0, lo=0, hi=2**32 - 1, doc="realisation of U, V, init and feedback"
        ),
        "eta": Param("eta", "float", 0.01, lo=0, lo_open=True, hi=1, doc="simulator learning rate"),
        "rtol": Param("rtol", "float", 1e-8, lo=1e-12, hi=1e-2, doc="flow relative tolerance"),
    }
    simulator = "meanfield.sims.engines.learning.mlp:simulate_feedback"
    contract: ClassVar[dict[str, tuple[str, ...]]] = {
        "solve": ("loss", "sigma_hat", "status", "t", "floor", "pd_norm", "d_norm", "angle"),
        "simulate": (
            "loss",
            "loss_sem",
            "sigma_hat",
            "sigma_hat_sem",
            "status",
            "t",
            "floor",
            "pd_norm",
            "pd_norm_sem",
            "angle",
            "angle_sem",
        ),
        "threshold": ("param", "kind", "value", "status"),
    }
    observables_doc: ClassVar[dict[str, str]] = {
        "loss": "1/2 |Sigma_yx - W2 W1|_F^2 at time t (t in units of tau = 1/eta)",
        "sigma_hat": "normalised mode strengths [U^T W2 W1 V]_aa / s_a, a = 1..d",
        "floor": "Eckart-Young floor 1/2 sum_{a>r} s_a^2 (best rank-r loss)",
        "pd_norm": "|P D|_F (rank-r rules; ~0 with |D| > 0 is a spurious fixed point)",
        "spurious": "rank-r rule with |P D| < 1e-3 |D| while the loss is above 1 % of its "
        "initial value 1/2 sum s_a^2 (a spurious plateau; transient for adaptive rules)",
        "d_norm": "|D|_F = |Sigma_yx - W2 W1|_F",
        "angle": "matrix angle between B and W2^T, degrees",
        "overlap": "|Pi_row(P) U_d|_F^2 / min(r, d): feedback subspace vs task subspace",
    }
    simulate_options: ClassVar[dict[str, str]] = {
        "batch": "samples per minibatch (default 256)",
        "optimizer": "sgd (default; the theory's Euler steps) or adam",
        "noise": "std of additive output noise (default 0)",
        "vary_init": "draw a new realisation per trial (default False: one realisation, "
        "trials differ in their data)",
        "max_seconds": "wall-clock budget (default 45); beyond it status is not_converged",
    }
    size_param = "k"
    inits: ClassVar[tuple[str, ...]] = ("aligned",)

    def check(self, v: dict[str, Any]) -> None:
        d = self._d(v)
        if v["spectrum"] is not None:
            sp_ = v["spectrum"] if isinstance(v["spectrum"], tuple) else (v["spectrum"],)
            if len(sp_) != d:
                raise ParamError("spectrum", f"a list of d = {d} values", v["spectrum"])
        if d > min(v["n"], v["m"]):
            raise ParamError("d", f"an integer in [1, min(n, m) = {min(v['n'], v['m'])}]", d)
        if v["rule"] in LOW_RANK and v["r"] > min(v["k"], v["m"]):
            raise ParamError("r", f"an integer in [1, min(k, m) = {min(v['k'], v['m'])}]", v["r"])
        # explicit steps grow like s_max * t (and kappa for learned feedback):
        # refuse up front what no budget could integrate
        spec = self._spectrum(v)
        kap = v["kappa"] if v["kappa"] is not None else (10.0 if v["rule"] == "normative" else 1.0)
        rate = max(spec) * (max(1.0, kap) if v["rule"] in ADAPTIVE else 1.0)
        rate = max(rate, v["lam"], kap * v["lam_b"] if v["rule"] in ADAPTIVE else 0.0)
        if rate * v["t"] > MAX_RATE_T:
            raise ParamError(
                "t",
                f"at most {MAX_RATE_T:g} / (s_max * max(1, kappa)) = {MAX_RATE_T / rate:.4g} "
                f"for this spectrum (s_max = {max(spec):g})",
                v["t"],
            )

    @staticmethod
    def _d(v) -> int:
        if v["d"] is not None:
            return int(v["d"])
        s = v["spectrum"]
        if s is None:
            return 4
        return len(s) if isinstance(s, tuple) else 1

    @property
    def d(self) -> int:
        return self._d(self._values)

    @property
    def kappa(self) -> float:
        """Feedback rate ``eta_b / eta`` (auto: 10 for ``normative``, 1 otherwise)."""
        k = self["kappa"]
        if k is None:
            return 10.0 if self["rule"] == "normative" else 1.0
        return float(k)

    @classmethod
    def _spectrum(cls, v) -> tuple[float, ...]:
        s = v["spectrum"]
        if s is None:
            d = cls._d(v)
            return tuple(float(d - i) for i in range(d))
        return tuple(float(x) for x in (s if isinstance(s, tuple) else (s,)))

    @property
    def spectrum(self) -> tuple[float, ...]:
        """Singular values ``s_1..s_d`` of ``Sigma_yx`` (auto: ``d, d-1, .., 1``)."""
        return self._spectrum(self._values)

    # -- the declared (mode-reduced) system ----------------------------------------------
    @property
    def order_parameters(self) -> tuple[str, ...]:
        return tuple(str(x) for x in self.system().state)

    def system(self) -> System:
        """The decoupled mode reduction of the rule (:func:`mode_rhs`), a ``flow``."""
        state, params, rhs, _ = mode_rhs(self["rule"], self.d)
        return System("flow", state, params, rhs)

    def _mode_feedback(self) -> np.ndarray:
        d, r = self.d, self["r"]
        q = np.zeros(d)
        if self["rule"] in ("fa", "dfa"):
            q[:] = self["q0"]
        else:
            q[: min(r, d)] = self["q0"]
        return q

    def theta(self) -> np.ndarray:
        th = list(self.spectrum)
        if self["rule"] in ("fa", "dfa", "fixed"):
            th += list(self._mode_feedback())
        th += [self.kappa, self["lam"], self["lam_b"]]
        return np.asarray(th, dtype=float)

    def initial_state(self, init: str = "aligned") -> np.ndarray:
        d = self.d
        g = np.sqrt(self["u0"])
        st = [g] * (2 * d)
        if self["rule"] in ADAPTIVE:
            fb = np.zeros(d)
            fb[: min(self["r"], d)] = 1.0
            st += list(fb) + list(fb * self["q0"])
        return np.asarray(st, dtype=float)

    def observables(self, state: np.ndarray) -> dict[str, Any]:
        d = self.d
        s = np.asarray(self.spectrum)
        u = state[:d] * state[d : 2 * d]
        return {"loss": float(0.5 * np.sum((s - u) ** 2)), "sigma_hat": (u / s).tolist()}

    # -- theory: the matrix flow -------------------------------------------------------------
    def _pack(self, real: dict[str, np.ndarray]) -> tuple[np.ndarray, list]:
        keys = ["W1", "W2"] + (["Q", "P"] if self["rule"] in ADAPTIVE else [])
        shapes = [(k_, real[k_].shape) for k_ in keys]
        return np.concatenate([real[k_].ravel() for k_ in keys]), shapes

    def trajectory(
        self,
        times,
        *,
        method: str = "auto",
        seed: int | None = None,
        max_nfev: int = MAX_NFEV,
        max_seconds: float = MAX_SECONDS,
    ) -> dict:
        """Integrate the matrix flow of one realisation; metrics at ``times`` (units of tau).

        Returns a dict of arrays with a leading time axis (``t``, ``loss``,
        ``sigma_hat`` (n_t, d), ``pd_norm``, ``angle``, ...), plus ``status``,
        ``floor`` and the realisation.
        """
        from ..solvers.flow import FlowResult, integrate

        rule = self["rule"]
        real = realization(self, seed)
        s0, shapes = self._pack(real)
        sizes = [int(np.prod(sh)) for _, sh in shapes]
        kw = {"kappa": self.kappa, "lam": self["lam"], "lam_b": self["lam_b"]}
        Syx, B = real["Syx"], real["B"]
        fixedQ, fixedP = real["Q"], real["P"]

        def unpack(y):
            parts, i = {}, 0
            for (key, sh), sz in zip(shapes, sizes, strict=True):
                parts[key] = y[i : i + sz].reshape(sh)
                i += sz
            return parts

        _numeric_rule(rule)  # derive and compile first: the budget counts integration only
        clock = {"n": 0, "t0": time.perf_counter(), "t": 0.0}

        def rhs(t, y):
            clock["n"] += 1
            if clock["n"] > max_nfev or (
                clock["n"] % 64 == 0 and time.perf_counter() - clock["t0"] > max_seconds
            ):
                raise _Budget
            clock["t"] = max(clock["t"], t)
            p = unpack(y)
            Q = p.get("Q", fixedQ)
            P = p.get("P", fixedP)
            f = matrix_rhs_numeric(rule, p["W1"], p["W2"], Syx, B, Q, P, **kw)
            return np.concatenate([f[key].ravel() for key, _ in shapes])

        times = np.asarray(times, dtype=float)
        t_eval = np.concatenate([[0.0], times]) if times[0] > 0 else times
        if method == "auto":
            # explicit RK45 unless the flow is small enough for a dense
            # finite-difference Jacobian and fast feedback makes it stiff
            method = (
                "LSODA" if (s0.size <= 600 and rule in ADAPTIVE and self.kappa > 50) else ("RK45")
            )
        message = ""
        from threadpoolctl import threadpool_limits

        jac = None
        if method in ("LSODA", "Radau", "BDF") and rule in JAC_RULES:
            _numeric_jvp(rule)  # derived outside the budget, as the rhs
            clock["t0"] = time.perf_counter()

            def jac(t, y):
                p = unpack(y)
                return matrix_jacobian_numeric(
                    rule, p["W1"], p["W2"], Syx, B, p.get("Q", fixedQ), p.get("P", fixedP), **kw
                )

        try:
            with threadpool_limits(1, user_api="blas"):  # tiny matrices: threads only contend
                res = integrate(
                    rhs, s0, t_eval, jac=jac, method=method, rtol=self["rtol"], atol=1e-12
                )
        except _Budget:
            reached = clock["t"]
            message = (
                f"integration budget spent ({clock['n'] - 1} evaluations, "
                f"{time.perf_counter() - clock['t0']:.1f} s) at t = {reached:.3g} of "
                f"{t_eval[-1]:.3g}: a stiff or diverging flow (large s_max * t or kappa, "
                "or an unstable rule); shorten t"
            )
            res = FlowResult(
                t_eval[:0], np.zeros((0, s0.size)), "not_converged", message, clock["n"] - 1
            )
        if times[0] > 0:
            res.t, res.s = res.t[1:], res.s[1:]
        if message:
            res.message = message
        rows = []
        for y in res.s:
            p = unpack(y)
            Q = p.get("Q", fixedQ)
            P = p.get("P", fixedP)
            rows.append(
                metrics(
                    rule, Syx, real["U"], real["V"], real["spectrum"], p["W1"], p["W2"], B, Q, P
                )
            )
        out: dict[str, Any] = {"t": res.t}
        for key in rows[0] if rows else {}:
            out[key] = np.array([row[key] for row in rows])
        status = res.status
        if res.t.size < times.size:
            status = res.status if res.status != "ok" else "not_converged"
        out.update(
            status=status,
            message=res.message,
            nfev=res.nfev,
            floor=eckart_young_floor(self.spectrum, self["r"]) if rule in LOW_RANK else 0.0,
            realization=real,
        )
        return out

    def mode_trajectory(self, times) -> dict:
        """Integrate the declared mode reduction (sympy Jacobian) from the aligned start."""
        from ..solvers.flow import integrate_system

        times = np.asarray(times, dtype=float)
        t_eval = np.concatenate([[0.0], times]) if times[0] > 0 else times
        res = integrate_system(
            self.system(),
            self.theta(),
            self.initial_state(),
            t_eval,
            method="LSODA",
            rtol=self["rtol"],
            atol=1e-12,
        )
        if times[0] > 0:
            res.t, res.s = res.t[1:], res.s[1:]
        d = self.d
        s = np.asarray(self.spectrum)
        u = res.s[:, :d] * res.s[:, d : 2 * d]
        return {
            "t": res.t,
            "sigma_hat": u / s,
            "loss": 0.5 * np.sum((s - u) ** 2, axis=1),
            "state": res.s,
            "status": res.status,
        }

    def solve(self, init: str | None = None) -> SolveResult:
        """Loss and ``sigma_hat`` at time ``t`` from the matrix flow (units of tau)."""
        t = float(self["t"])
        tr = self.trajectory([0.0, t] if t > 0 else [0.0])
        status = tr["status"]
        if tr["t"].size == 0 or (t > 0 and tr["t"][-1] < t):
            vals = dict.fromkeys(("loss", "sigma_hat", "floor", "pd_norm", "d_norm", "angle"))
            vals.update(t=t, floor=tr["floor"], message=tr["message"])
            return SolveResult(
                np.zeros(0), tr["nfev"], status if status != "ok" else "not_converged", vals
            )
        last = {k_: v[-1] for k_, v in tr.items() if isinstance(v, np.ndarray)}
        vals = {
            "loss": float(last["loss"]),
            "sigma_hat": [float(x) for x in last["sigma_hat"]],
            "t": t,
            "floor": tr["floor"],
            "pd_norm": float(last["pd_norm"]) if "pd_norm" in last else None,
            "d_norm": float(last["d_norm"]),
            "bd_norm": float(last["bd_norm"]),
            "angle": float(last["angle"]),
            "overlap": float(last["overlap"]) if "overlap" in last else None,
            "recon": float(last["recon"]) if "recon" in last else None,
        }
        vals["spurious"] = bool(
            self["rule"] in LOW_RANK
            and vals["pd_norm"] is not None
            and vals["pd_norm"] < 1e-3 * max(vals["d_norm"], 1e-300)
            and vals["loss"] > 0.005 * sum(x * x for x in self.spectrum)
        )
        return SolveResult(np.asarray(vals["sigma_hat"]), tr["nfev"], status, vals)

    def simulation_bytes(self, size: int, trials: int, **engine: Any) -> int:
        """Weights, moments, feedback and one minibatch per trial (float64)."""
        n, k, m, r = self["n"], size, self["m"], self["r"]
        try:
            batch = int(engine.get("batch", 256))
        except (TypeError, ValueError):
            batch = 256
        per = 8 * (
            6 * (k * n + m * k)
            + 4 * (k + m) * r
            + 2 * m * m
            + 4 * max(batch, 1) * (n + k + m)
            + 2 * (m * m + n * n)
        )
        return int(trials * per)
