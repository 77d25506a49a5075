"""Compiled state evolution against an independent sympy evaluation (issue 8, item 4).

The tensor model's compiled map, Jacobian and replica-symmetric potential
(``System.evaluate``) against values computed here from the *undifferentiated*
sympy system only, without the package's derivative rules or quadrature:

* templates are expanded into their bodies; ``LogSumExp`` stays (evaluated
  here max-shifted; its derivative, the softmax, is the one rule shared with
  the package: ``log(sum(exp))`` written out overflows at the outer
  quadrature nodes of the Gauss-Bernoulli integrands);
* each Gaussian expectation ``E_{B ~ N(m, v)}[h(B)]`` (or ``E_{b ~ N(m, C)}``,
  rank r) is reparametrised as ``E_z[h(m + sqrt(v) z)]`` (``b = m + L z``,
  ``L`` the symbolic Cholesky factor of ``C``), so that its derivative in a
  state variable is plain ``sympy.diff`` under the integral (not the package's
  Price/Stein rule), and evaluated with ``sympy.lambdify`` on numpy's
  probabilists' Gauss-Hermite rule with more nodes than the package uses
  (161 in one dimension against 81; 61^2 against 41^2);
* the Jacobian is the chain rule through the expectations,
  ``dF/ds = dF/ds|_E + sum_k dF/dE_k * E_z[d h_k / ds]``.

States are interior (overlaps in (0.2, 0.8); rank 2: diagonal in (0.5, 0.8),
off-diagonal in (-0.15, 0.15), so the covariances are positive definite).
Tolerances (norm-wise relative, :data:`TOL_DEFAULT`) are the quadrature error
of the package's default rules, measured; with both rules raised
(:data:`TOL_HIGH`, a subprocess) they agree to 1e-8 (rank 2: 1e-6), so what is left
at the default order is quadrature, not a wrong map or derivative. One
order-3 case with discrete priors runs in ``make test``; the rest (orders
3-4, mixed priors, rank 2, the high-order runs) under ``slow``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import sympy as sp

from meanfield import get_model
from meanfield._symbols import GaussExpect, GaussExpectN, Template

NODES_1D, NODES_ND = 161, 61

FAST = {
    "order3-discrete": dict(
        order=3,
        prior="rademacher,sparse_rademacher,gauss_bernoulli",
        mean="0.2,0,0",
        rho="0.5,0.3,0.4",
        shape="1,1.5,0.7",
        delta=0.2,
    ),
}
SLOW = {
    "order4-mixed": dict(
        order=4, prior="gaussian,rademacher,gaussian,gauss_bernoulli", mean="0.3,0,0,0", delta=0.1
    ),
    "order3-gauss-bernoulli-mean": dict(
        order=3, prior="gauss_bernoulli", mean=0.3, var=0.7, rho=0.6, delta=0.3
    ),
    "order3-rank2-rademacher": dict(order=3, rank=2, prior="rademacher", delta=0.2),
    "order3-rank2-mixed": dict(
        order=3, rank=2, prior="gauss_bernoulli,rademacher,gaussian", mean="0,0.2,0.3", delta=0.2
    ),
}


def _expand(e: sp.Expr) -> sp.Expr:
    """Templates -> bodies (repeatedly)."""
    while True:
        new = e.replace(lambda x: isinstance(x, Template), lambda x: x.body)
        if new == e:
            return e
        e = new


def _lse(*args):
    """Overflow-free log(sum(exp(args))) on numpy arrays (broadcast)."""
    a = np.broadcast_arrays(*[np.asarray(x, dtype=float) for x in args])
    top = np.max(a, axis=0)
    return top + np.log(sum(np.exp(x - top) for x in a))


MODULES = [{"LogSumExp": _lse}, "numpy"]


def _rule(dim: int):
    z, w = np.polynomial.hermite_e.hermegauss(NODES_1D if dim == 1 else NODES_ND)
    w = w / np.sqrt(2 * np.pi)
    if dim == 1:
        return [z], w
    grids = np.meshgrid(*([z] * dim), indexing="ij")
    ws = np.ones_like(grids[0])
    for g in np.meshgrid(*([w] * dim), indexing="ij"):
        ws = ws * g
    return [g.ravel() for g in grids], ws.ravel()


def _reparametrised(ge, zs):
    """The integrand in standard normal variables ``zs``."""
    if isinstance(ge, GaussExpect):
        h, B, m, v = ge.args
        return h.xreplace({B: m + sp.sqrt(v) * zs[0]}), 1
    h, variables, mean, cov = ge.args
    r = len(variables)
    C = sp.Matrix(r, r, list(cov))
    L = C.cholesky(hermitian=False)
    b = sp.Matrix(list(mean)) + L * sp.Matrix(zs[:r])
    return h.xreplace(dict(zip(variables, b, strict=True))), r


def _independent(expr, state_syms, state, param_subs, grad: bool):
    """Value (and gradient in the state) of ``expr`` at ``state``."""
    e = _expand(expr).xreplace(param_subs)
    ges = sorted(e.atoms(GaussExpect) | e.atoms(GaussExpectN), key=sp.default_sort_key)
    zs = sp.symbols("z_1:5")
    G = sp.symbols(f"G_0:{max(len(ges), 1)}")
    outer = e.xreplace(dict(zip(ges, G, strict=False)))
    vals, dvals = [], []
    for ge in ges:
        g, dim = _reparametrised(ge, zs)
        assert not (g.atoms(GaussExpect) | g.atoms(GaussExpectN)), "nested expectation"
        nodes, w = _rule(dim)
        args = [*zs[:dim], *state_syms]
        exprs = [g] + ([sp.diff(g, s) for s in state_syms] if grad else [])
        f = sp.lambdify(args, exprs, MODULES)
        out = f(*nodes, *state)
        ints = [float(np.sum(w * np.broadcast_to(o, w.shape))) for o in out]
        assert np.all(np.isfinite(ints)), (str(ge)[:200], ints)
        vals.append(ints[0])
        dvals.append(ints[1:])
    Gs = list(G[: len(ges)])
    args = [*Gs, *state_syms]
    value = float(sp.lambdify(args, outer, MODULES)(*vals, *state))
    if not grad:
        return value
    d_state = sp.lambdify(args, [sp.diff(outer, s) for s in state_syms], MODULES)(*vals, *state)
    d_G = sp.lambdify(args, [sp.diff(outer, g) for g in Gs], MODULES)(*vals, *state) if Gs else []
    gradient = np.array(d_state, dtype=float)
    for k in range(len(Gs)):
        gradient = gradient + float(d_G[k]) * np.array(dvals[k])
    return value, gradient


def _state(system, rng):
    """Interior state; rank r: positive-definite overlap matrices."""
    out = []
    for s in system.state:
        parts = s.name.split("_")
        if len(parts) == 3 and len(parts[2]) == 2:  # M_a_ij
            i, j = parts[2]
            out.append(rng.uniform(0.5, 0.8) if i == j else rng.uniform(-0.15, 0.15))
        else:
            out.append(rng.uniform(0.2, 0.8))
    return np.array(out)


def _errors(params, seed=0) -> dict:
    """Norm-wise relative errors ``max|compiled - reference| / max|reference|`` of
    the map, the Jacobian and the potential at an interior state."""
    model = get_model("tensor")(**params)
    system = model.system()
    theta = model.theta()
    state = _state(system, np.random.default_rng(seed))
    param_subs = {p: sp.Float(float(v), 30) for p, v in zip(system.params, theta, strict=True)}
    d = system.dim
    rhs = np.empty(d)
    jac = np.empty((d, d))
    for i, e in enumerate(system.rhs):
        rhs[i], jac[i] = _independent(e, system.state, state, param_subs, grad=True)
    got = {
        "rhs": np.atleast_1d(system.evaluate("rhs", state, theta)).ravel(),
        "jacobian": np.asarray(system.evaluate("jacobian", state, theta)).reshape(d, d),
    }
    want = {"rhs": rhs, "jacobian": jac}
    if system.potential is not None:
        want["potential"] = np.array(
            [_independent(system.potential, system.state, state, param_subs, grad=False)]
        )
        got["potential"] = np.asarray(system.evaluate("potential", state, theta)).ravel()[:1]
    return {
        k: float(np.max(np.abs(got[k] - want[k])) / max(np.max(np.abs(want[k])), 1e-300))
        for k in want
    }


#: default quadrature (81 nodes; rank 2: 41^2), norm-wise relative, with the
#: errors measured on these cases: rank 1 map and potential <= 1.6e-10, Jacobian
#: 2.1e-7 (the Gauss-Bernoulli mode: the Price/Stein integrand E[h_BB] converges
#: slower than the map's); rank 2 map 9e-5, potential 3e-6, Jacobian 1.1e-2 (the
#: 41^2 rule on Rademacher log-partition integrands at Delta = 0.2)
TOL_DEFAULT = {
    1: {"rhs": 1e-9, "potential": 1e-9, "jacobian": 1e-6},
    2: {"rhs": 3e-4, "potential": 1e-5, "jacobian": 3e-2},
}
#: package rule raised to 241 nodes (rank 2: 121^2), reference 241 (91^2):
#: measured rank 1 <= 1e-8; rank 2 map 9.4e-9, potential 1.8e-9, Jacobian
#: 1.7e-7 (five orders below the default rule's errors: quadrature, not math)
TOL_HIGH = {1: 1e-8, 2: 1e-6}


def _check(errors, tol):
    for k, e in errors.items():
        assert e <= tol[k], (k, e, tol[k], errors)


def _high_order_errors(case, tmp_path) -> dict:
    """:func:`_errors` in a fresh process with both quadrature rules raised
    (the compiled systems are cached per process; a separate disk cache)."""
    env = dict(os.environ, MEANFIELD_CACHE_DIR=str(tmp_path), PYTHONWARNINGS="ignore")
    res = subprocess.run(
        [sys.executable, __file__, case], env=env, capture_output=True, text=True, timeout=3000
    )
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("case", list(FAST), ids=list(FAST))
def test_compiled_equals_independent_sympy(case):
    _check(_errors(FAST[case]), TOL_DEFAULT[FAST[case].get("rank", 1)])


@pytest.mark.slow
@pytest.mark.parametrize("case", list(SLOW), ids=list(SLOW))
def test_compiled_equals_independent_sympy_slow(case):
    _check(_errors(SLOW[case]), TOL_DEFAULT[SLOW[case].get("rank", 1)])


@pytest.mark.slow
@pytest.mark.parametrize("case", ["order3-discrete", "order3-rank2-rademacher"])
def test_compiled_equals_independent_sympy_high_order(case, tmp_path):
    """With finer rules on both sides the differences shrink by 2-5 orders of
    magnitude (:data:`TOL_HIGH`): the default-order differences are quadrature
    error, not a wrong map or derivative."""
    errors = _high_order_errors(case, tmp_path)
    rank = {**FAST, **SLOW}[case].get("rank", 1)
    _check(errors, dict.fromkeys(errors, TOL_HIGH[rank]))


def test_independent_jacobian_is_the_derivative():
    """The reference itself: its Jacobian matches central differences of its own map
    (order 3, discrete priors) to the finite-difference error (h = 1e-5: ~1e-9)."""
    model = get_model("tensor")(**FAST["order3-discrete"])
    system = model.system()
    state = _state(system, np.random.default_rng(1))
    subs = {p: sp.Float(float(v), 30) for p, v in zip(system.params, model.theta(), strict=True)}
    e = system.rhs[1]
    _, g = _independent(e, system.state, state, subs, grad=True)
    h = 1e-5
    for j in range(system.dim):
        sp_, sm = state.copy(), state.copy()
        sp_[j] += h
        sm[j] -= h
        fd = (
            _independent(e, system.state, sp_, subs, grad=False)
            - _independent(e, system.state, sm, subs, grad=False)
        ) / (2 * h)
        assert g[j] == pytest.approx(fd, rel=1e-7, abs=1e-9), j


if __name__ == "__main__":  # the high-order run (``_high_order_errors``)
    from meanfield import _quadrature

    _quadrature.DEFAULT_ORDER = 241
    _quadrature.ORDER_BY_DIM[2] = 121
    NODES_1D, NODES_ND = 241, 91
    print(json.dumps(_errors({**FAST, **SLOW}[sys.argv[1]])))
