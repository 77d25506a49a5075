"""Exact identities of the symbolic layer: LogSumExp, GaussExpect, quadrature."""

import numpy as np
import pytest
import sympy as sp
from scipy import integrate
from tolerances import assert_close_eps

from meanfield import _codegen, _quadrature
from meanfield._symbols import GaussExpect, LogSumExp, explicit

pytestmark = pytest.mark.symbolic

a, b, s = sp.symbols("a b s", real=True)
B = sp.Dummy("B", real=True)


def test_logsumexp_derivative_is_softmax():
    expr = LogSumExp(a, 2 * a + b, -b)
    lhs = sp.diff(expr, a)
    rhs = sp.diff(explicit(expr), a)
    assert sp.simplify(explicit(lhs) - rhs) == 0


def test_logsumexp_compiled_is_overflow_free():
    fn = _codegen.scalar_function(
        [LogSumExp(a, b), sp.diff(LogSumExp(a, b), a)], [a, b], name="lse"
    )
    v, d = fn(1000.0, 999.0)
    assert np.isfinite(v) and np.isfinite(d)
    assert_close_eps(v, 1000.0 + np.log1p(np.exp(-1.0)), 4)
    # exp of a difference of two O(1000) numbers: an absolute error of a few
    # eps * 1000 is inherent
    assert_close_eps(d, 1.0 / (1.0 + np.exp(-1.0)), 4 * 1000)


def test_gauss_expect_polynomial_moments_exact():
    m, v = sp.symbols("m v", positive=True)
    assert sp.simplify(GaussExpect(B**4, B, m, v).doit() - (m**4 + 6 * m**2 * v + 3 * v**2)) == 0


def test_gauss_expect_derivative_is_price_theorem():
    """d/ds E[h(B; s)] with mean and variance depending on s, checked exactly on a polynomial."""
    m = s**2 + 1
    v = 3 * s + 2
    h = B**3 * s + B**2
    ge = GaussExpect(h, B, m, v)
    assert sp.simplify(sp.diff(ge, s).doit() - sp.diff(ge.doit(), s)) == 0


def test_gauss_expect_derivative_finite_at_zero_variance():
    """Price's rule gives finite derivatives where var -> 0 (no 1/sqrt(var))."""
    lam = sp.Symbol("lam", nonnegative=True)
    ge = GaussExpect(sp.tanh(B), B, lam, lam)
    d = sp.diff(ge, lam)
    # at lam = 0: E[tanh'(0)] + 1/2 E[tanh''(0)] = 1 + 0
    assert sp.simplify(d.subs(lam, 0).doit()) == 1


@pytest.mark.parametrize("order", [5, 11, 21, 41, 81])
def test_quadrature_exact_for_polynomials(order):
    z, w = _quadrature.gauss_hermite(order)
    for k in range(0, 2 * order, 2):
        exact = float(sp.factorial2(k - 1)) if k else 1.0
        assert_close_eps(np.sum(w * z**k), exact, 64 * exact)


def test_quadrature_converges_in_order():
    """E tanh(lam + sqrt(lam) z) (Rademacher SE map): error falls with the order."""
    lam = 2.0
    ref = integrate.quad(
        lambda z: np.tanh(lam + np.sqrt(lam) * z) * np.exp(-z * z / 2) / np.sqrt(2 * np.pi),
        -np.inf,
        np.inf,
        epsabs=1e-14,
        epsrel=1e-14,
    )[0]
    errs = []
    for order in (5, 11, 21, 41, 81):
        errs.append(abs(_quadrature.expect(np.tanh, lam, lam, order) - ref))
    assert all(e2 <= e1 for e1, e2 in zip(errs, errs[1:], strict=False))
    assert errs[-1] < 1e-8
    assert errs[0] > 1e3 * errs[-1]


def test_compiled_gauss_expect_matches_quadrature_module():
    lam = sp.Symbol("lam", positive=True)
    ge = GaussExpect(sp.tanh(B), B, lam, lam)
    fn = _codegen.scalar_function([ge], [lam], name="ge")
    for x in (0.1, 1.0, 5.0):
        assert_close_eps(fn(x)[0], _quadrature.expect(np.tanh, x, x), 64)
    # and the numba-compiled copy of the same body
    assert_close_eps(_codegen.njit(fn)(1.3)[0], fn(1.3)[0], 8)
