"""Priors declared once as sympy densities; denoisers derived by sympy.

A prior is a finite mixture of components, each a point mass ``delta(x - a)``
or a Gaussian density ``N(x; m, v)``; this covers finite supports, Gaussian
mixtures and spike-and-slab priors. From the declaration alone sympy derives

* the log-partition of the scalar channel (Kadmon & Ganguli 2018, §2;
  Lesieur et al. 2017, eq. 12)

  .. math:: \\log Z(A, B) = \\log \\int dP(x)\\, e^{Bx - Ax^2/2},

  each Gaussian component by completing the square of its exponent;
* the AMP denoiser ``f = d log Z / dB`` (posterior mean) and its variance
  ``d^2 log Z / dB^2``;
* the state-evolution map ``F(lam) = E_{x~P, z}[x f(lam, lam x + sqrt(lam) z)]``
  and the free-entropy term ``psi(lam) = E log Z(lam, lam x + sqrt(lam) z)``,
  written with :class:`~meanfield._symbols.GaussExpect` (exact mixture sums over
  components, Gaussian expectations left to the quadrature module).

No derivative is typed by hand.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import sympy as sp

from ._params import ParamError
from ._symbols import GaussExpect, LogSumExp

__all__ = ["Prior", "Component", "PRIORS", "make_prior", "A", "B"]

A = sp.Symbol("A", nonnegative=True)
B = sp.Symbol("B", real=True)
LAM = sp.Symbol("lambda", nonnegative=True)
_X = sp.Symbol("x", real=True)


@dataclass(frozen=True)
class Component:
    """One mixture component: weight ``w`` and density ``density(x)``.

    ``density`` is ``None`` for a point mass at ``atom``; otherwise a sympy
    expression in :data:`x <_X>` proportional to a Gaussian density (its
    exponent must be quadratic in ``x``).
    """

    weight: sp.Expr
    atom: sp.Expr | None = None
    density: sp.Expr | None = None

    def moments(self) -> tuple[sp.Expr, sp.Expr]:
        """Mean and variance of the component (exact, from the density)."""
        if self.density is None:
            return sp.sympify(self.atom), sp.S.Zero
        a2, a1, _ = _quadratic_exponent(self.density)
        var = -1 / (2 * a2)
        return sp.simplify(a1 * var), sp.simplify(var)

    def log_partition(self) -> sp.Expr:
        """``log( w * int density(x) exp(Bx - Ax^2/2) dx / int density(x) dx )``."""
        if self.density is None:
            a = sp.sympify(self.atom)
            return sp.log(self.weight) + B * a - A * a**2 / 2
        a2, a1, a0 = _quadratic_exponent(self.density)

        # int exp(c2 x^2 + c1 x + c0) dx = sqrt(pi/(-c2)) exp(c0 - c1^2/(4 c2))
        def log_gauss_int(c2, c1, c0):
            return sp.log(sp.pi / (-c2)) / 2 + c0 - c1**2 / (4 * c2)

        tilted = log_gauss_int(a2 - A / 2, a1 + B, a0)
        norm = log_gauss_int(a2, a1, a0)
        return sp.log(self.weight) + tilted - norm


def _quadratic_exponent(density: sp.Expr) -> tuple[sp.Expr, sp.Expr, sp.Expr]:
    expo = sp.expand(sp.expand_log(sp.log(density), force=True))
    poly = sp.Poly(expo, _X)
    if poly.degree() != 2:
        raise ValueError(f"a continuous component must be Gaussian in x; got density {density}")
    c = poly.all_coeffs()
    return c[0], c[1], c[2]


_NUM_CACHE: dict[tuple, float] = {}
_NUM_CACHE_MAX = 100_000


@dataclass(frozen=True)
class Prior:
    """A scalar prior declared as a sympy mixture.

    Parameters
    ----------
    name : str
        Registry name.
    components : tuple of Component
        Mixture components (weights need not be normalised symbolically but
        must sum to one for admissible parameter values).
    params : tuple of sympy.Symbol
        Symbolic prior parameters, in the order of their numeric values.
    values : tuple of float
        Numeric values of ``params``.
    """

    name: str
    components: tuple[Component, ...]
    params: tuple[sp.Symbol, ...] = ()
    values: tuple[float, ...] = ()

    # -- exact moments ----------------------------------------------------------
    @cached_property
    def mean_expr(self) -> sp.Expr:
        return sp.simplify(sum(c.weight * c.moments()[0] for c in self.components))

    @cached_property
    def second_moment_expr(self) -> sp.Expr:
        return sp.simplify(
            sum(c.weight * (c.moments()[0] ** 2 + c.moments()[1]) for c in self.components)
        )

    @cached_property
    def var_expr(self) -> sp.Expr:
        return sp.simplify(self.second_moment_expr - self.mean_expr**2)

    def _num(self, expr) -> float:
        # shared by every prior with these values (the points of a sweep build
        # one prior each; sympy's subs costs ~50 us a call)
        mine = self.__dict__.get("_num_by_id")
        if mine is None:
            mine = self.__dict__["_num_by_id"] = {}
        hit = mine.get(id(expr))
        if hit is not None and hit[0] is expr:
            return hit[1]
        key = (expr, self.params, self.values)
        if key not in _NUM_CACHE:
            if len(_NUM_CACHE) >= _NUM_CACHE_MAX:
                _NUM_CACHE.clear()
            _NUM_CACHE[key] = float(expr.subs(dict(zip(self.params, self.values, strict=True))))
        mine[id(expr)] = (expr, _NUM_CACHE[key])
        return _NUM_CACHE[key]

    @property
    def mean(self) -> float:
        return self._num(self.mean_expr)

    @property
    def second_moment(self) -> float:
        return self._num(self.second_moment_expr)

    @property
    def var(self) -> float:
        return self._num(self.var_expr)

    # -- derived by sympy ---------------------------------------------------------
    @cached_property
    def log_partition(self) -> sp.Expr:
        """``log Z(A, B)`` as a :class:`LogSumExp` over components."""
        return LogSumExp(*[c.log_partition() for c in self.components])

    @cached_property
    def denoiser(self) -> sp.Expr:
        """Posterior mean ``f(A, B) = d log Z / dB``."""
        return sp.diff(self.log_partition, B)

    @cached_property
    def denoiser_variance(self) -> sp.Expr:
        """Posterior variance ``d f / dB = d^2 log Z / dB^2``."""
        return sp.diff(self.denoiser, B)

    def _channel_expectation(self, integrand: Callable[[sp.Expr, sp.Expr], sp.Expr]) -> sp.Expr:
        """``E_{x~P, z}[integrand(x, B)]`` with ``B = lam x + sqrt(lam) z``.

        Per component, ``(x, B)`` is jointly Gaussian (or ``x`` is an atom), so
        the expectation over ``x`` given ``B`` is exact and only the Gaussian
        expectation over ``B`` remains; ``integrand`` must be affine in ``x``
        unless the component is an atom.
        """
        b = sp.Dummy("b", real=True)
        total = sp.S.Zero
        for c in self.components:
            m, v = c.moments()
            mean_b = LAM * m
            var_b = LAM**2 * v + LAM
            if c.density is None:
                x_given_b = m
            else:
                x_given_b = m + v * (b - LAM * m) / (LAM * v + 1)
            total += c.weight * GaussExpect(integrand(x_given_b, b), b, mean_b, var_b)
        return total

    @cached_property
    def se_map(self) -> sp.Expr:
        """``F(lam) = E[x f(lam, lam x + sqrt(lam) z)]``: the overlap after one step."""
        f = self.denoiser.subs(A, LAM)
        return self._channel_expectation(lambda x, b: x * f.subs(B, b))

    @cached_property
    def free_entropy(self) -> sp.Expr:
        """``psi(lam) = E log Z(lam, lam x + sqrt(lam) z)`` (so ``dpsi/dlam = F/2``)."""
        logz = self.log_partition.subs(A, LAM)
        return self._channel_expectation(lambda x, b: logz.subs(B, b))

    def numeric(self) -> dict:
        """Parameter substitution map for numeric evaluation."""
        return dict(zip(self.params, self.values, strict=True))

    def __repr__(self) -> str:
        vals = ", ".join(f"{p}={v:g}" for p, v in zip(self.params, self.values, strict=True))
        return f"Prior({self.name}{', ' if vals else ''}{vals})"


# ---------------------------------------------------------------------------
# the registry of named priors
# ---------------------------------------------------------------------------
MEAN = sp.Symbol("mean", real=True)
VAR = sp.Symbol("var", positive=True)
RHO = sp.Symbol("rho", positive=True)


def _gauss_density(m, v):
    return sp.exp(-((_X - m) ** 2) / (2 * v))


def _gaussian():
    return (Component(sp.S.One, density=_gauss_density(MEAN, VAR)),), (MEAN, VAR)


def _rademacher():
    # +-1 with mean b = `mean`: P(+1) = (1 + mean)/2
    return (
        Component((1 + MEAN) / 2, atom=sp.S.One),
        Component((1 - MEAN) / 2, atom=-sp.S.One),
    ), (MEAN,)


def _sparse_rademacher():
    return (
        Component(1 - RHO, atom=sp.S.Zero),
        Component(RHO / 2, atom=1 / sp.sqrt(RHO)),
        Component(RHO / 2, atom=-1 / sp.sqrt(RHO)),
    ), (RHO,)


def _gauss_bernoulli():
    return (
        Component(1 - RHO, atom=sp.S.Zero),
        Component(RHO, density=_gauss_density(MEAN, VAR)),
    ), (MEAN, VAR, RHO)


@dataclass(frozen=True)
class PriorSpec:
    """How a named prior is built and which parameters it takes."""

    build: Callable[[], tuple]
    doc: str


PRIORS: dict[str, PriorSpec] = {
    "gaussian": PriorSpec(_gaussian, "N(mean, var)"),
    "rademacher": PriorSpec(_rademacher, "+-1 with E[x] = mean (mean = 0: Rademacher)"),
    "sparse_rademacher": PriorSpec(
        _sparse_rademacher, "0 w.p. 1-rho, +-1/sqrt(rho) w.p. rho/2 each (unit variance)"
    ),
    "gauss_bernoulli": PriorSpec(_gauss_bernoulli, "(1-rho) delta_0 + rho N(mean, var)"),
}

_RANGES = {
    "mean": (None, None),
    "var": (0.0, None),
    "rho": (0.0, 1.0),
}


def make_prior(name: str, *, mean: float = 0.0, var: float = 1.0, rho: float = 1.0) -> Prior:
    """Build a named prior with numeric parameters.

    Parameters
    ----------
    name : {'gaussian', 'rademacher', 'sparse_rademacher', 'gauss_bernoulli'}
    mean, var, rho : float
        Used by the priors that take them (see :data:`PRIORS`).

    Raises
    ------
    ValueError
        On an unknown name or a parameter outside its range, naming it.
    """
    if name not in PRIORS:
        raise ParamError("prior", "one of " + ", ".join(PRIORS), name)
    key = (name, mean, var, rho)
    try:
        hit = _MADE.get(key)
    except TypeError:  # unhashable values: validated below, not cached
        hit = key = None
    if hit is not None:
        return hit  # priors are immutable: one instance per name and values
    template = _template(name)
    comps, params = template.components, template.params
    given = {"mean": mean, "var": var, "rho": rho}
    if name == "rademacher" and not -1.0 < float(mean) < 1.0:
        raise ParamError("mean", "a float in (-1, 1) for the rademacher prior", mean)
    if "var" in (p.name for p in params) and not float(var) > 0:
        raise ParamError("var", "a float in (0, inf)", var)
    if "rho" in (p.name for p in params) and not 0.0 < float(rho) <= 1.0:
        raise ParamError("rho", "a float in (0, 1]", rho)
    out = Prior(name, comps, params, tuple(float(given[p.name]) for p in params))
    for attr in _DERIVED:  # share the template's sympy derivations
        if attr in template.__dict__:
            out.__dict__[attr] = template.__dict__[attr]
    if key is not None:
        if len(_MADE) >= _NUM_CACHE_MAX:
            _MADE.clear()
        _MADE[key] = out
    return out


_MADE: dict[tuple, Prior] = {}


_TEMPLATES: dict[str, Prior] = {}
_DERIVED = (
    "mean_expr",
    "second_moment_expr",
    "var_expr",
    "log_partition",
    "denoiser",
    "denoiser_variance",
    "se_map",
    "free_entropy",
)


def _template(name: str) -> Prior:
    """The symbolic prior (no values), with its derivations computed once."""
    if name not in _TEMPLATES:
        comps, params = PRIORS[name].build()
        t = Prior(name, comps, params, ())
        for attr in _DERIVED:
            getattr(t, attr)
        _TEMPLATES[name] = t
    return _TEMPLATES[name]


def custom_prior(
    components: list[tuple], params: tuple[sp.Symbol, ...] = (), values: tuple[float, ...] = ()
) -> Prior:
    """A user prior: ``[(weight, atom), ...]`` or ``[(weight, mean, var), ...]`` entries.

    Two-tuples are point masses, three-tuples Gaussian components; entries may be
    sympy expressions in ``params``. A density on a finite support is the list of
    its atoms and probabilities.
    """
    comps = []
    for c in components:
        if len(c) == 2:
            comps.append(Component(sp.sympify(c[0]), atom=sp.sympify(c[1])))
        elif len(c) == 3:
            comps.append(Component(sp.sympify(c[0]), density=_gauss_density(c[1], c[2])))
        else:
            raise ValueError(f"a component is (weight, atom) or (weight, mean, var); got {c!r}")
    return Prior("custom", tuple(comps), tuple(params), tuple(float(v) for v in values))


def from_density(density: sp.Expr, x: sp.Symbol, support, **kw) -> Prior:
    """A prior with ``P(x = s) ∝ density(s)`` on a finite ``support``."""
    w = [sp.sympify(density).subs(x, s) for s in support]
    z = sp.Add(*w)
    return custom_prior([(wi / z, s) for wi, s in zip(w, support, strict=True)], **kw)


def numeric_components(prior: Prior) -> list[tuple[float, float, float]]:
    """``[(weight, mean, var), ...]`` with the prior's numeric parameter values."""
    sub = prior.numeric()
    out = []
    for c in prior.components:
        m, v = c.moments()
        out.append(
            (
                float(c.weight.subs(sub)),
                float(sp.sympify(m).subs(sub)),
                float(sp.sympify(v).subs(sub)),
            )
        )
    return out


def sample(prior: Prior, rng, size) -> np.ndarray:
    """Draw i.i.d. samples from ``prior`` with the numpy Generator ``rng``."""
    import numpy as np

    comps = numeric_components(prior)
    w = np.array([c[0] for c in comps])
    k = rng.choice(len(comps), size=size, p=w / w.sum())
    means = np.array([c[1] for c in comps])[k]
    sds = np.sqrt(np.array([c[2] for c in comps]))[k]
    return means + sds * rng.standard_normal(size)
