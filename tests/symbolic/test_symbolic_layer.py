"""Exact identities of the symbolic layer: LogSumExp, GaussExpect, quadrature."""

import numpy as np
import pytest
import sympy as sp
from scipy import integrate
from tolerances import EPS, assert_close_eps

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


def test_printed_powers_keep_their_precedence():
    """``x / y**2`` must not print as ``x/y*y`` (a regression: small integer
    powers are printed as products, which need parentheses after a division)."""
    x, y = sp.symbols("x y", positive=True)
    exprs = [x / y**2, x / y**3 + 1 / (x + y) ** 2, x**2 / (y**4 * (x - y) ** 2)]
    fn = _codegen.scalar_function(exprs, [x, y], name="powers")
    for xv, yv in [(0.7, 1.9), (2.5, 0.3)]:
        want = [float(e.subs({x: xv, y: yv})) for e in exprs]
        np.testing.assert_allclose(fn(xv, yv), want, rtol=4 * EPS)
        np.testing.assert_allclose(_codegen.njit(fn)(xv, yv), want, rtol=4 * EPS)


def _gn_setup():
    from meanfield._symbols import GaussExpectN

    b1, b2 = sp.symbols("b1 b2", real=True)
    m1, m2, c11, c12, c22 = sp.symbols("m1 m2 c11 c12 c22", real=True)
    return GaussExpectN, (b1, b2), (m1, m2), (c11, c12, c12, c22)


def test_gauss_expect_n_quadratic_exact_and_price_derivative():
    """E[b1 b2 + b1^2] = C12 + m1 m2 + C11 + m1^2 exactly; the Price-theorem
    derivative of the unevaluated node equals the derivative of that result."""
    GE, b, m, c = _gn_setup()
    h = b[0] * b[1] + b[0] ** 2 + 3 * b[1]
    node = GE(h, b, m, c)
    exact = c[1] + m[0] * m[1] + c[0] + m[0] ** 2 + 3 * m[1]
    assert sp.simplify(node.doit() - exact) == 0
    for s in (*m, c[0], c[1], c[3]):
        assert sp.simplify(sp.diff(node, s).doit() - sp.diff(exact, s)) == 0


def test_gauss_expect_n_quadrature_and_singular_covariance():
    """E[exp(b1 + 2 b2)] = exp(m1 + 2 m2 + (C11 + 4 C12 + 4 C22)/2) by the
    41 x 41 tensor-product rule, for a full-rank, a rank-one and a zero covariance."""
    GE, b, m, c = _gn_setup()
    node = GE(sp.exp(b[0] + 2 * b[1]), b, m, c)
    fn = _codegen.scalar_function([node], [*m, c[0], c[1], c[3]], name="gn_exp")
    f = _codegen.njit(fn)
    for mv, (c11, c12, c22) in [
        ((0.2, -0.1), (0.5, 0.1, 0.3)),
        ((0.0, 0.3), (0.4, 0.2, 0.1)),  # rank one: c12^2 = c11 c22
        ((0.1, 0.2), (0.0, 0.0, 0.0)),
    ]:
        want = np.exp(mv[0] + 2 * mv[1] + (c11 + 4 * c12 + 4 * c22) / 2)
        got = f(*mv, c11, c12, c22)[0]
        assert abs(got - want) <= 1e-12 * want


def test_template_values_and_derivatives_match_the_inline_expression():
    from meanfield._symbols import define

    x, y, a, c = sp.symbols("x y a c", real=True)
    T = define("demo", [x * y**2, sp.sin(x) * y], (x, y))
    args = (a + c, a * c)
    applied = [T(0, *args), T(1, *args)]
    inline = [e.subs({x: args[0], y: args[1]}, simultaneous=True) for e in T._bodies]
    exprs = applied + [sp.diff(e, a) for e in applied] + [sp.diff(e, c, 2) for e in applied]
    want = inline + [sp.diff(e, a) for e in inline] + [sp.diff(e, c, 2) for e in inline]
    fn = _codegen.scalar_function(exprs, [a, c], name="tpl_demo")
    ref = sp.lambdify([a, c], want)
    for av, cv in [(0.3, -1.2), (1.7, 0.4)]:
        np.testing.assert_allclose(
            _codegen.njit(fn)(av, cv), ref(av, cv), rtol=16 * EPS, atol=1e-15
        )
    assert define("demo", [x * y**2, sp.sin(x) * y], (x, y)) is T
