"""Denoisers and state-evolution maps derived by sympy against independent numerics."""

import numpy as np
import pytest
import sympy as sp
from hypothesis import given
from hypothesis import strategies as st
from meanfield.sims.naive import posterior_moments
from scipy import integrate

from meanfield import _codegen
from meanfield.priors import LAM, A, B, custom_prior, from_density, make_prior

pytestmark = pytest.mark.symbolic

PRIORS = [
    ("gaussian", dict(mean=0.3, var=0.7)),
    ("rademacher", dict(mean=0.0)),
    ("rademacher", dict(mean=0.4)),
    ("sparse_rademacher", dict(rho=0.1)),
    ("gauss_bernoulli", dict(rho=0.3, mean=0.2, var=2.0)),
]


def _den(prior):
    return _codegen.scalar_function(
        [prior.denoiser, prior.denoiser_variance], [A, B, *prior.params], name="den"
    )


@pytest.mark.parametrize("name,kw", PRIORS)
@given(a=st.floats(0.0, 20.0), b=st.floats(-30.0, 30.0))
def test_denoiser_is_posterior_mean(name, kw, a, b):
    """sympy's d logZ/dB and d^2 logZ/dB^2 equal the directly computed posterior moments."""
    prior = make_prior(name, **kw)
    f, v = _den(prior)(a, b, *prior.values)
    fm, vm = posterior_moments(prior, a, b)
    assert abs(f - fm) <= 1e-12 * max(1.0, abs(fm))
    assert abs(v - vm) <= 1e-10 * max(1.0, abs(vm))


def test_gaussian_denoiser_closed_form():
    """N(mu, v): f = (B + mu/v)/(A + 1/v) exactly (tensor.md §2 table)."""
    p = make_prior("gaussian")
    mu, v = p.params
    assert sp.simplify(p.denoiser - (B + mu / v) / (A + 1 / v)) == 0
    assert sp.simplify(p.denoiser_variance - 1 / (A + 1 / v)) == 0


@pytest.mark.parametrize("name,kw", PRIORS)
def test_se_map_against_independent_integration(name, kw):
    """F(lam) = E[x f(lam, lam x + sqrt(lam) z)], integrated independently.

    Reference: scipy.quad over z for point masses, a 300 x 300 tensor-product
    Gauss-Hermite rule over (x, z) for Gaussian components, both with the
    hand-written posterior mean of ``sims.naive``. Precision of the package's
    default 81-node rule: 1e-8 for smooth posteriors; the sharp posterior of a
    sparse prior needs more nodes (a few 1e-6 at 81, below 1e-9 at 321).
    """
    from meanfield.priors import numeric_components

    prior = make_prior(name, **kw)
    fn = _codegen.scalar_function([prior.se_map], [LAM, *prior.params], name="se")
    fine = _codegen.scalar_function([prior.se_map], [LAM, *prior.params], name="se", order=321)
    tol = 1e-5 if name in ("sparse_rademacher", "gauss_bernoulli") else 1e-8
    zq, wq = np.polynomial.hermite_e.hermegauss(300)
    wq = wq / np.sqrt(2 * np.pi)
    for lam in (0.3, 2.0):
        ref = 0.0
        for w, m, v in numeric_components(prior):
            if v == 0:

                def g(z, x=m, lam=lam):
                    bb = lam * x + np.sqrt(lam) * z
                    return (
                        x
                        * posterior_moments(prior, lam, bb)[0]
                        * np.exp(-z * z / 2)
                        / np.sqrt(2 * np.pi)
                    )

                ref += w * integrate.quad(g, -14, 14, epsabs=1e-14, epsrel=1e-13, limit=200)[0]
            else:
                x = m + np.sqrt(v) * zq[:, None]
                bb = lam * x + np.sqrt(lam) * zq[None, :]
                ref += w * np.sum(
                    wq[:, None] * wq[None, :] * x * posterior_moments(prior, lam, bb)[0]
                )
        assert abs(fn(lam, *prior.values)[0] - ref) < tol
        assert abs(fine(lam, *prior.values)[0] - ref) < 1e-9


@pytest.mark.parametrize("name,kw", PRIORS)
def test_free_entropy_i_mmse(name, kw):
    """dpsi/dlam = F/2 (I-MMSE), both sides from the compiled sympy expressions.

    The two sides are different integrands (Price's rule brings second
    derivatives of log Z), so they agree to the quadrature's precision:
    1e-6 at the default 81 nodes (5e-4 for the sharp sparse posteriors at
    large lam: this is the default rule's precision there), 1e-9 at 321
    (1e-7 for the spike-and-slab priors, whose posterior switches between spike
    and slab over a narrow range of B: Gauss-Hermite converges slowly there).
    """
    prior = make_prior(name, **kw)
    exprs = [sp.diff(prior.free_entropy, LAM), prior.se_map]
    coarse = 5e-4 if name in ("sparse_rademacher", "gauss_bernoulli") else 1e-6
    fine = 1e-7 if name in ("sparse_rademacher", "gauss_bernoulli") else 1e-9
    for order, tol in ((None, coarse), (321, fine)):
        fn = _codegen.scalar_function(exprs, [LAM, *prior.params], name="immse", order=order)
        for lam in (0.05, 0.5, 3.0):
            d, F = fn(lam, *prior.values)
            assert abs(d - F / 2) < tol


def test_custom_and_density_priors():
    """A user density on a finite support and a Gaussian mixture go through the same pipeline."""
    x = sp.Symbol("x")
    ternary = from_density(sp.exp(-(x**2)), x, [-1, 0, 1])
    f, v = _den(ternary)(0.5, 0.7)
    fm, vm = posterior_moments(ternary, 0.5, 0.7)
    assert abs(f - fm) < 1e-14 and abs(v - vm) < 1e-14
    mix = custom_prior(
        [(sp.Rational(1, 2), -1, sp.Rational(1, 4)), (sp.Rational(1, 2), 1, sp.Rational(1, 4))]
    )
    f, v = _den(mix)(1.0, -0.3)
    fm, vm = posterior_moments(mix, 1.0, -0.3)
    assert abs(f - fm) < 1e-13 and abs(v - vm) < 1e-13
    assert float(mix.second_moment) == pytest.approx(1.25)
