"""Curl-descent theory: sympy identities, free-probability edges and boundaries, thresholds.

References: digest ``shared/papers/curl_descent.md`` §2 (derivations) and §5 (cross-checks:
Marchenko--Pastur, the authors' edge routine values, exact boundary points, the outlier
formula, the Jacobian identity and conservation laws). Deterministic checks are stated in
machine epsilons or in the digest's printed digits.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

import meanfield
from meanfield.models import curl_descent as cd
from tests.tolerances import assert_close_eps

A, C = cd.ALPHA, cd.C


# -- sympy identities (digest §2.1, 2.2, 2.4, 2.5) ---------------------------------------


@pytest.mark.parametrize("d1,d2", [((1, -1), (1, -1)), ((-1, -1), (1, 1)), ((1, 1), (-1, 1))])
def test_error_dynamics_is_exact(d1, d2):
    """``e_dot = -eta A Sigma e`` with ``A = |w2|^2 D1 + W1^T D2 W1``, identically (N=2, K=2)."""
    assert cd.error_dynamics_sympy(2, 2, d1, d2) == sp.zeros(2, 1)


def test_conserved_quantities():
    """``C_k = w1_k^T D1 w1_k - (D2)_kk w2_k^2`` is conserved by the linear curl flow."""
    assert all(e == 0 for e in cd.conserved_sympy(3, 2, (1, -1, 1), (-1, 1)))


def _point_on_manifold(n, k, rng):
    w1 = rng.standard_normal((k, n)) / np.sqrt(n)
    w2 = rng.standard_normal(k)
    return w1, w2, w1.T @ w2


def test_jacobian_on_manifold_is_minus_eta_a_sigma():
    """On M the sympy Jacobian's nonzero eigenvalues are those of ``-eta A Sigma`` (real),
    the other ``KN + K - N`` vanish (digest §2.2), mixed D1/D2, N=3, K=3."""
    n, k, eta = 3, 3, 0.7
    rng = np.random.default_rng(3)
    d1, d2 = (1, -1, 1), (-1, 1, 1)
    w1, w2, v = _point_on_manifold(n, k, rng)
    x = rng.standard_normal((9, n))
    sig = x.T @ x / 9
    theta, rhs, _ = cd.curl_flow_sympy(n, k, d1, d2, sigma=sp.Matrix(sig),
                                       vstar=sp.Matrix(v), eta=eta)
    jac = sp.lambdify(theta, rhs.jacobian(theta), "numpy")(*w1.ravel(), *w2)
    ev = np.linalg.eigvals(np.asarray(jac, float))
    a = cd.a_matrix(w1, w2, np.array(d1, float), np.array(d2, float))
    expected = np.sort(np.linalg.eigvals(-eta * a @ sig).real)
    nonzero = np.sort(ev[np.argsort(np.abs(ev))[-n:]].real)
    np.testing.assert_allclose(nonzero, expected, rtol=1e-10)
    assert np.max(np.abs(ev.imag)) < 1e-10  # real spectrum (§5.7: no circular law)
    assert np.sum(np.abs(ev) < 1e-10) == k * n + k - n


def test_jacobian_matches_finite_differences_of_the_engine():
    """The engine's full-batch unnormalised step map ``theta + lr F(theta)`` has Jacobian
    ``I + lr J`` with ``J`` the sympy Jacobian (finite differences, step 1e-6, rtol 1e-6)."""
    from meanfield.sims.engines.learning import student_teacher as st

    n, k, lr = 3, 2, 0.1
    b = st.make_batch(n, k, 1 / 3, 0.5, [4], samples=12)
    # put the teacher on the student's manifold point: v* = W1^T w2 of the teacher
    p = b.x.shape[0]
    sig = b.x.T @ b.x / p
    v = b.t1[0].T @ b.t2[0]
    theta, rhs, _ = cd.curl_flow_sympy(n, k, b.d1[0], b.d2[0], sigma=sp.Matrix(sig),
                                       vstar=sp.Matrix(v), eta=1)
    th0 = np.concatenate([b.t1[0].ravel(), b.t2[0]])  # on M
    jac = np.asarray(sp.lambdify(theta, rhs.jacobian(theta), "numpy")(*th0), float)

    def step(th):
        bb = st.Batch(th[: k * n].reshape(1, k, n).copy(), th[k * n :].reshape(1, k).copy(),
                      b.t1, b.t2, b.d1, b.d2, b.x, b.x_test)
        r = st.train(bb, epochs=1, lr=lr, batch_size=p, normalize=False, record=2)
        return np.concatenate([r["w1"][0].ravel(), r["w2"][0]])

    h = 1e-6
    fd = np.stack([(step(th0 + h * e) - step(th0 - h * e)) / (2 * h) for e in np.eye(th0.size)],
                  axis=1)
    np.testing.assert_allclose(fd, np.eye(th0.size) + lr * jac, rtol=1e-6, atol=1e-8)


def test_origin_saddle_or_center():
    """At theta = 0 the sympy Jacobian has pairs ``+-eta sqrt(s_D (D2)_kk)`` (digest §2.5):
    a saddle for GD, a center direction for a flipped readout unit."""
    n, k = 3, 2
    rng = np.random.default_rng(1)
    v = rng.standard_normal(n)
    for d1, d2 in (((1, 1, 1), (1, 1)), ((1, 1, 1), (-1, 1)), ((1, -1, 1), (1, -1))):
        theta, rhs, _ = cd.curl_flow_sympy(n, k, d1, d2, vstar=sp.Matrix(v))
        jac = np.asarray(sp.lambdify(theta, rhs.jacobian(theta), "numpy")(*np.zeros(len(theta))),
                         float)
        ev = np.linalg.eigvals(jac)
        s_d = float(v @ np.diag(d1) @ v)
        exp = cd.origin_eigenvalues(s_d, np.array(d2, float))
        got = ev[np.abs(ev) > 1e-12]
        np.testing.assert_allclose(np.sort_complex(got), np.sort_complex(exp), atol=1e-12)


@pytest.mark.parametrize("phi", ["lin", "tanh", "relu"])
def test_engine_step_is_the_sympy_curl_field(phi):
    """One full-batch unnormalised step of the engine is ``theta + lr F(theta)`` with ``F`` the
    sympy gradient of the matching loss times ``-P`` (N=2, K=2, P=4; 64 eps)."""
    check_engine_field(phi)


def check_engine_field(phi: str, n: int = 2, k: int = 2, p: int = 4) -> None:
    """The reference check (used by the mutation tests): engine step vs sympy field."""
    from meanfield.sims.engines.learning import student_teacher as st

    lr = 0.1
    b = st.make_batch(n, k, 1 / n, 0.5, [7], samples=p, s=2.0)
    act = st._np_act(phi)
    y = st._forward(b.t1, b.t2, b.x, act, phi == "lin")[0]
    field = cd.curl_field_sympy(n, k, phi, b.x, y, b.d1[0], b.d2[0])
    th0 = np.concatenate([b.w1[0].ravel(), b.w2[0]])
    r = st.train(b, phi=phi, epochs=1, lr=lr, batch_size=p, normalize=False, record=2)
    got = np.concatenate([r["w1"][0].ravel(), r["w2"][0]])
    assert_close_eps(got, th0 + lr * field(th0), 64)


def test_saxe_closed_form_solves_the_declared_flow():
    """The logistic formula solves ``tau a' = 2 a (s - a)`` (sympy, exactly), ``a(0) = a0``,
    and equals the declared System integrated by the shared flow solver (rtol 1e-8)."""
    from meanfield.solvers.flow import integrate_system

    t_, a0_, s_, tau_ = sp.symbols("t a0 s_star tau", positive=True)
    ex = cd.saxe_expr()
    big_e = sp.Symbol("E", positive=True)
    res = (tau_ * sp.diff(ex, t_) - 2 * ex * (s_ - ex)).subs(sp.exp(2 * s_ * t_ / tau_), big_e)
    assert sp.cancel(res) == 0
    assert sp.cancel(ex.subs(t_, 0) - a0_) == 0

    m = meanfield.get_model("curl_descent")()
    t = np.linspace(0, 60, 7)
    a0, s, tau = 1e-3, 1.0, 20.0
    got = cd.saxe_solution(t, a0, s, tau)
    e = np.exp(2 * s * t / tau)
    np.testing.assert_allclose(got, s * a0 * e / (s + a0 * (e - 1)), rtol=1e-12)
    res = integrate_system(m.system(), [s, tau], [a0], t, rtol=1e-11, atol=1e-14)
    np.testing.assert_allclose(res.s[:, 0], got, rtol=1e-8)


# -- free probability (digest §2.3, §5.2-5.4, 5.6) -------------------------------------------


def test_boundary_polynomials_are_the_digest_F1_F2():
    """Derived ``F1``, ``F2`` equal the digest's printed polynomials up to a constant factor."""
    polys = cd.boundary_polynomials()
    f1 = (-32 * A**3 * C**4 + A**2 * (100 * C**4 - 8 * C**3 + 4 * C**2)
          - A * (104 * C**4 - 52 * C**3 + 44 * C**2) + 36 * C**4 - 48 * C**3 + 25 * C**2
          - 12 * C + 4)
    f2 = (-32 * A**3 * C + A**2 * (52 * C**2 + 40 * C + 4) - A * (64 * C**3 + 8 * C**2 + 20 * C + 4)
          + 4 * C**2 + 1)
    for got, exp in ((polys["F1"], f1), (polys["F2"], f2)):
        ratio = sp.cancel(got / exp)
        assert ratio.is_number and ratio != 0
    # exact boundary points (§5.4)
    assert polys["F1"].subs({A: 1, C: sp.Rational(1, 4)}) == 0
    assert polys["F1"].subs({A: 0, C: sp.Rational(2, 3)}) == 0
    assert polys["F2"].subs({A: sp.Rational(5, 32), C: sp.Rational(1, 4)}) == 0


def test_marchenko_pastur_edges():
    """``I + W~^T W~``: edges ``1 + (1 -+ 1/sqrt c)^2`` (§5.2; c = 1/4 -> [2, 10])."""
    fs = cd.free_sum(False, False)
    for c in (0.25, 0.5, 0.8):
        assert fs.lower_edge([c]) == pytest.approx(1 + (1 - 1 / np.sqrt(c)) ** 2, rel=1e-9)
        e = fs.edges([c])
        assert e.max() == pytest.approx(1 + (1 + 1 / np.sqrt(c)) ** 2, rel=1e-9)


@pytest.mark.parametrize("c,p_plus,edges", [
    (1.2, 1.0, [1.0076, 4.6591]),
    (1.2, 0.5, [-0.9657, 0.8263, 1.0587, 4.0808]),
    (1.2, 0.9, [-0.7496, -0.0054, 1.0013, 4.5586]),
    (1.2, 0.2, [-0.9997, 3.5577]),
    (0.1, 0.3, [4.0191, 17.155]),
])
def test_authors_edge_routine_values(c, p_plus, edges):
    """``D + W~^T W~`` edges equal the authors' ``spectral_edges_L1`` outputs (§5.3, 4 digits);
    the lower edge by the branch scan equals the smallest (p+ = 1: the flip-free law, whose
    bottom at c > 1 is the atom at 1)."""
    fs = cd.free_sum(p_plus < 1, False)
    vals = [1 - p_plus, c] if p_plus < 1 else [c]
    got = fs.edges(vals)
    np.testing.assert_allclose(got, edges, atol=6e-4)
    low = cd.lambda_min_theory(c, 1 - p_plus, 0)
    # p+ = 1 at c > 1: the bottom is the atom at 1 (mass 1 - 1/c), below the bulk edge
    assert low == pytest.approx(edges[0] if p_plus < 1 else 1.0, abs=6e-5)
    # the root-tracking branch of the resultant curve agrees with the explicit one
    assert fs.lower_edge(vals, explicit=False) == pytest.approx(fs.lower_edge(vals), abs=1e-9)


def test_zero_flip_limit_is_the_outlier_band():
    """``alpha -> 0+`` at c = 1.2: the lower edge is the outlier 2/(3c) - 1 = -0.444 (§5.3)."""
    assert cd.lambda_min_theory(1.2, 1e-9, 0) == pytest.approx(-4 / 9, abs=1e-4)
    assert cd.lambda_min_theory(1.2, 0, 0) == pytest.approx(1.0, abs=1e-8)  # the atom at 1


@pytest.mark.parametrize("c", [0.15, 0.3, 0.5, 2 / 3, 1.2, 5.0])
def test_outlier_formula(c):
    """``G_{I+W~^TW~}(z) = -1/2`` at ``z = 2/(3c) - 1`` for ``c > 1/9`` (§2.3, §5.6)."""
    assert cd.outlier_theory(c) == pytest.approx(2 / (3 * c) - 1, rel=1e-12, abs=1e-12)
    assert np.isnan(cd.outlier_theory(0.1))


# digest §2.3 table (4 digits)
TABLE_H = {0.1: 1, 0.25: 1, 0.3: .5585, 0.35: .3166, 0.4: .1772, 0.45: .0950, 0.5: .0467,
           0.55: .0193, 0.6: .0054, 0.65: .0003, 1: 0, 2: 0, 10: 0}
TABLE_R = {0.001: .4689, 0.01: .4055, 0.1: .2446, 0.2: .1775, 0.25: .1563, 0.3: .1395,
           0.5: .0973, 0.65: .0792, 1: .0551, 2: .0293, 3: .0200, 10: .00617, 100: .00062}


@pytest.mark.parametrize("c", list(TABLE_H))
def test_hidden_threshold_table(c):
    r = meanfield.threshold("curl_descent", {"c": c}, param="alpha_h", kind="stability")
    if c < 0.25:
        assert r["status"] == "no_transition" and r["value"] is None
    else:
        assert r["status"] == "ok"
        assert r["value"] == pytest.approx(TABLE_H[c], abs=6e-5)


@pytest.mark.parametrize("c", list(TABLE_R))
def test_readout_threshold_table(c):
    r = meanfield.threshold("curl_descent", {"c": c}, param="alpha_r", kind="stability")
    assert r["status"] == "ok"
    digits = 6e-5 if c < 10 else 6e-6
    assert r["value"] == pytest.approx(TABLE_R[c], abs=digits)


def test_exact_readout_points():
    """``alpha_r*(1/4) = 5/32``, ``alpha_r*(1) = 0.05506``, ``alpha_r*(10) = 0.00617`` (§5.4);
    large c: ``alpha_r* ~ 1/(16 c)``."""
    get = lambda c: meanfield.threshold("curl_descent", {"c": c}, param="alpha_r",  # noqa: E731
                                        kind="stability")["value"]
    assert get(0.25) == pytest.approx(5 / 32, rel=1e-9)
    assert get(1.0) == pytest.approx(0.05506, abs=1e-5)
    assert get(1000.0) * 16 * 1000 == pytest.approx(1, rel=0.02)


def test_inverse_curves():
    """Critical c at a given fraction (digest §2.3 inverse curves, 4 digits)."""
    for ah, c in ((0.1, 0.4461), (0.4, 0.3294), (0.8, 0.2688)):
        r = meanfield.threshold("curl_descent", {"alpha_h": ah}, param="c", kind="stability")
        assert r["value"] == pytest.approx(c, abs=6e-5)
    for ar, c in ((0.05, 1.1158), (0.2, 0.1588), (0.4, 0.0113)):
        r = meanfield.threshold("curl_descent", {"alpha_r": ar}, param="c", kind="stability")
        assert r["value"] == pytest.approx(c, abs=6e-5)


def test_threshold_roots_solve_F1_F2():
    """The Brent roots of the lower edge are zeros of the derived polynomials (1e-8)."""
    polys = cd.boundary_polynomials()
    f1 = sp.lambdify((A, C), polys["F1"])
    f2 = sp.lambdify((A, C), polys["F2"])
    for c in (0.3, 0.45, 0.6):
        a = meanfield.threshold("curl_descent", {"c": c}, param="alpha_h")["value"]
        assert abs(f1(a, c)) < 1e-8
    for c in (0.05, 0.7, 4.0):
        a = meanfield.threshold("curl_descent", {"c": c}, param="alpha_r")["value"]
        assert abs(f2(a, c)) < 1e-8


def test_boundary_grid_matches_lower_edge():
    """The batched edge-polynomial grid equals the branch scan's lower edge at sample points."""
    cs = np.array([0.05, 0.2, 0.3, 0.45, 0.9, 3.0])
    al = np.array([0.0, 0.1, 0.3, 0.6, 0.9])
    for layer, kw in (("hidden", "alpha_h"), ("readout", "alpha_r")):
        grid = cd.boundary_grid(cs[:, None], al[None, :], layer)
        for i, c in enumerate(cs):
            for j, a in enumerate(al):
                exp = cd.lambda_min_theory(c, **{kw: a})
                assert grid[i, j] == pytest.approx(exp, abs=1e-7), (layer, c, a)
    # an atom at -1 (alpha_h > 1/c): no stable balanced point
    assert cd.boundary_grid(3.0, 0.6, "hidden") == -1.0


def test_both_layers_flipped_is_less_stable():
    """Flipping both layers lowers the edge below either layer alone (free sum, c = 0.3)."""
    both = cd.lambda_min_theory(0.3, 0.2, 0.05)
    assert both < min(cd.lambda_min_theory(0.3, 0.2, 0), cd.lambda_min_theory(0.3, 0, 0.05))


def test_solve_keys_and_finite_size():
    r = meanfield.solve("curl_descent", {"c": 0.4, "alpha_h": 0.1, "hidden": 300, "seed": 2})
    for key in ("lambda_min", "stable", "lambda_min_theory", "status"):
        assert key in r
    assert r["status"] == "ok" and r["stable"] is True
    assert r["n_flipped_in"] == 12
    # the sampled edge is within finite-size (K^-2/3 scale) of the large-N edge
    assert abs(r["lambda_min"] - r["lambda_min_theory"]) < 0.25


def test_solve_refuses_an_empty_network():
    with pytest.raises(meanfield.ParamError, match="c must be"):
        meanfield.solve("curl_descent", {"c": 0.001, "hidden": 10})


@pytest.mark.parametrize("phi", ["lin", "tanh", "relu"])
def test_matching_potential_derivative_is_phi(phi):
    x = sp.Symbol("x", real=True)
    d = sp.diff(cd.matching_potential(phi), x) - cd.phi_expr(phi)
    assert all(abs(float(d.subs(x, v))) < 1e-14 for v in (-1.3, -0.2, 0.4, 2.0))
