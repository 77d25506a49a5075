"""Symbol factory and the two sympy objects the derivations are written in.

* :class:`LogSumExp` -- ``log(sum(exp(args)))``. Its derivative is the softmax,
  so derivatives of a log-partition function stay bounded when compiled;
  printers emit the max-shifted, overflow-free form.
* :class:`GaussExpect` -- ``E_{B ~ N(mean, var)}[h(B)]``, an unevaluated
  Gaussian expectation. Its derivative follows Price's theorem (Stein's lemma
  for the variance), ``d/ds E[h] = E[dh/ds] + mean' E[h_B] + (var'/2) E[h_BB]``,
  which has no ``1/sqrt(var)`` singularity, so Jacobians at trivial fixed
  points (``var = 0``) are finite and exact. Numeric evaluation goes through
  :mod:`meanfield._quadrature`.
"""

from __future__ import annotations

import itertools

import sympy as sp

__all__ = [
    "LogSumExp",
    "GaussExpect",
    "GaussExpectN",
    "Template",
    "define",
    "explicit",
    "exact_expectations",
    "tidy",
    "symbols_for",
    "GLOSSARY",
]

GLOSSARY = {
    "M": "overlap with the planted signal, E[x xhat] (Bayes-optimal: = E[xhat^2])",
    "Mhat": "conjugate overlap: signal-to-noise ratio of the effective scalar channel",
    "delta": "noise variance of the observation",
    "A": "AMP quadratic field (precision of the effective scalar channel)",
    "B": "AMP linear field",
}


def symbols_for(prefix: str, n: int, **assumptions) -> tuple[sp.Symbol, ...]:
    """``prefix_1, ..., prefix_n`` as sympy symbols (1-based, as in the papers)."""
    return tuple(sp.Symbol(f"{prefix}_{i + 1}", **assumptions) for i in range(n))


class LogSumExp(sp.Function):
    """``log(exp(a_1) + ... + exp(a_k))`` with a softmax derivative.

    Examples
    --------
    >>> a, b = sp.symbols("a b")
    >>> sp.diff(LogSumExp(a, b), a)
    exp(a - LogSumExp(a, b))
    """

    @classmethod
    def eval(cls, *args):
        if len(args) == 0:
            raise TypeError("LogSumExp needs at least one argument")
        if len(args) == 1:
            return args[0]
        if all(a.is_number for a in args) and any(a.is_infinite for a in args):
            return sp.log(sp.Add(*[sp.exp(a) for a in args]))
        return None

    def fdiff(self, argindex=1):
        return sp.exp(self.args[argindex - 1] - self)

    def _eval_evalf(self, prec):
        return sp.log(sp.Add(*[sp.exp(a) for a in self.args]))._eval_evalf(prec)

    def _eval_rewrite_as_log(self, *args, **kwargs):
        return sp.log(sp.Add(*[sp.exp(a) for a in args]))

    def _eval_is_real(self):
        if all(a.is_real for a in self.args):
            return True
        return None

    # -- printers: stable, max-shifted forms ------------------------------
    def _pythoncode(self, printer):
        args = [printer._print(a) for a in self.args]
        m = "max(" + ", ".join(args) + ")"
        exps = " + ".join(f"math.exp({a} - {m})" for a in args)
        return f"({m} + math.log({exps}))"

    def _numpycode(self, printer):
        f = printer._module_format("numpy.logaddexp")
        args = [printer._print(a) for a in self.args]
        out = args[-1]
        for a in reversed(args[:-1]):
            out = f"{f}({a}, {out})"
        return out


_B_DERIVATIVES: dict[tuple, tuple] = {}


def _b_derivatives(h: sp.Expr, B: sp.Symbol) -> tuple[sp.Expr, sp.Expr]:
    """``(dh/dB, d^2h/dB^2)``, cached: a Jacobian differentiates the same
    integrand once per state variable. Two first derivatives, not
    ``diff(h, B, 2)``, which runs ``factor_terms`` on the result (30 s of the
    order-8 Rademacher Jacobian)."""
    key = (h, B)
    if key not in _B_DERIVATIVES:
        h_b = sp.diff(h, B)
        _B_DERIVATIVES[key] = (h_b, sp.diff(h_b, B))
    return _B_DERIVATIVES[key]


class GaussExpect(sp.Expr):
    """``E_{B ~ N(mean, var)}[h(B)]`` kept unevaluated.

    Parameters
    ----------
    h : sympy.Expr
        Integrand; ``B`` is bound inside it.
    B : sympy.Dummy
        The integration variable.
    mean, var : sympy.Expr
        Mean and variance of ``B`` (may depend on free symbols).
    """

    is_commutative = True

    def __new__(cls, h, B, mean, var):
        h, mean, var = sp.sympify(h), sp.sympify(mean), sp.sympify(var)
        if B not in h.free_symbols:
            return h
        return sp.Expr.__new__(cls, h, B, mean, var)

    @property
    def integrand(self):
        return self.args[0]

    @property
    def variable(self):
        return self.args[1]

    @property
    def mean(self):
        return self.args[2]

    @property
    def var(self):
        return self.args[3]

    @property
    def free_symbols(self):
        h, B, m, v = self.args
        return (h.free_symbols - {B}) | m.free_symbols | v.free_symbols

    def _eval_derivative(self, s):
        h, B, m, v = self.args
        h_b, h_bb = _b_derivatives(h, B)
        new = sp.diff(h, s) + sp.diff(m, s) * h_b + sp.diff(v, s) / 2 * h_bb
        return GaussExpect(new, B, m, v)

    def _eval_subs(self, old, new):
        if old == self.args[1]:
            return self
        return None

    def doit(self, **hints):
        """Evaluate exactly when possible.

        Zero variance gives ``h(mean)``; a polynomial integrand is expanded with
        the Gaussian moments ``E[z^k] = (k-1)!!``. Otherwise the object is kept.
        """
        h, B, m, v = self.args
        if hints.get("deep", True):
            h = h.doit(**hints)
        if v == 0:
            return h.subs(B, m)
        z = sp.Dummy("z")
        shifted = sp.expand(h.subs(B, m + sp.sqrt(v) * z))
        if shifted.is_polynomial(z):
            poly = sp.Poly(shifted, z)
            out = sp.S.Zero
            for (k,), c in poly.terms():
                if k % 2 == 0:
                    out += c * sp.factorial2(k - 1)
            return out
        return GaussExpect(h, B, m, v)

    def _sympystr(self, printer):
        h, B, m, v = self.args
        return f"E[{printer._print(h)} | {B} ~ N({printer._print(m)}, {printer._print(v)})]"


class GaussExpectN(sp.Expr):
    """``E_{b ~ N(mean, cov)}[h(b)]`` over a Gaussian vector, kept unevaluated.

    The multivariate form of :class:`GaussExpect` (rank-``r`` channels, where
    the AMP field is an ``r``-vector). Its derivative is Price's theorem,

    .. math:: \\partial_s E[h] = E[\\partial_s h] + \\sum_i \\partial_s m_i\\, E[\\partial_i h]
              + \\tfrac12 \\sum_{ij} \\partial_s C_{ij}\\, E[\\partial_i \\partial_j h],

    finite at singular covariances (e.g. ``C = 0`` at the uninformative fixed
    point). Numeric evaluation: a tensor-product Gauss-Hermite rule after a
    (positive-semidefinite) Cholesky factorisation of ``cov``
    (:mod:`meanfield._codegen`, nodes from :mod:`meanfield._quadrature`).

    Parameters
    ----------
    h : sympy.Expr
        Integrand; the ``variables`` are bound inside it.
    variables : tuple of sympy.Dummy
        The integration variables ``b_1..b_r``.
    mean : tuple of sympy.Expr
        ``E[b]``, length ``r``.
    cov : tuple of sympy.Expr
        The covariance, ``r*r`` entries row by row (symmetric).
    """

    is_commutative = True

    def __new__(cls, h, variables, mean, cov):
        h = sp.sympify(h)
        variables = sp.Tuple(*variables)
        mean = sp.Tuple(*[sp.sympify(m) for m in mean])
        cov = sp.Tuple(*[sp.sympify(c) for c in cov])
        r = len(variables)
        if len(mean) != r or len(cov) != r * r:
            raise ValueError(f"GaussExpectN needs {r} means and {r * r} covariance entries")
        if not (h.free_symbols & set(variables)):
            return h
        return sp.Expr.__new__(cls, h, variables, mean, cov)

    @property
    def dim(self) -> int:
        return len(self.args[1])

    @property
    def integrand(self):
        return self.args[0]

    @property
    def variables(self):
        return tuple(self.args[1])

    @property
    def mean(self):
        return tuple(self.args[2])

    @property
    def cov(self):
        return tuple(self.args[3])

    @property
    def free_symbols(self):
        h, v, m, c = self.args
        return (h.free_symbols - set(v)) | m.free_symbols | c.free_symbols

    def _eval_derivative(self, s):
        h, v, m, c = self.args
        r = len(v)
        new = sp.diff(h, s)
        grads = [sp.diff(h, b) for b in v]
        for i in range(r):
            dm = sp.diff(m[i], s)
            if dm != 0:
                new += dm * grads[i]
        for i in range(r):
            for j in range(r):
                dc = sp.diff(c[i * r + j], s)
                if dc != 0:
                    new += dc / 2 * sp.diff(grads[i], v[j])
        return GaussExpectN(new, v, m, c)

    def _eval_subs(self, old, new):
        if old in self.args[1]:
            return self
        return None

    def doit(self, **hints):
        """Exact when possible: zero covariance gives ``h(mean)``; an integrand
        quadratic in ``b`` gives ``h(m) + (1/2) sum_ij C_ij d_i d_j h``."""
        h, v, m, c = self.args
        r = len(v)
        if hints.get("deep", True):
            h = h.doit(**hints)
        if all(ci == 0 for ci in c):
            return h.xreplace(dict(zip(v, m, strict=True)))
        if h.is_polynomial(*v):
            # degree <= 2 (third derivatives vanish): E[h] = h(m) + tr(C H)/2,
            # with no expansion of the (often large, rational) coefficients
            grads = [sp.diff(h, b) for b in v]
            hess = [[sp.diff(g, b) for b in v] for g in grads]
            ijk = itertools.product(range(r), repeat=3)
            if all(sp.diff(hess[i][j], v[k]) == 0 for i, j, k in ijk):
                at = dict(zip(v, m, strict=True))
                out = h.xreplace(at)
                for i in range(r):
                    for j in range(r):
                        if c[i * r + j] != 0 and hess[i][j] != 0:
                            out += c[i * r + j] * hess[i][j].xreplace(at) / 2
                return out
        return GaussExpectN(h, v, m, c)

    def _sympystr(self, printer):
        h, v, m, c = self.args
        return f"E[{printer._print(h)} | {tuple(v)} ~ N({printer._print(m)}, {printer._print(c)})]"


class Template(sp.Function):
    """A function defined once by sympy bodies and applied to many arguments.

    ``F(k, *args)`` stands for ``bodies[k]`` with ``params`` replaced by
    ``args`` (see :func:`define`). Derivatives are templates of the bodies'
    sympy derivatives, and the code generator compiles each template once
    (all bodies in one helper), however many times it is applied -- e.g. one
    prior's rank-``r`` state-evolution map shared by every mode.
    """

    _bodies: tuple = ()
    _params: tuple = ()
    _tname: str = "template"

    @classmethod
    def eval(cls, k, *args):
        return None

    def fdiff(self, argindex=1):
        if argindex == 1:
            return sp.S.Zero
        return derivative(type(self), argindex - 2)(*self.args)

    @property
    def body(self) -> sp.Expr:
        """The body this application stands for."""
        k = int(self.args[0])
        return self._bodies[k].xreplace(dict(zip(self._params, self.args[1:], strict=True)))

    def _eval_is_real(self):
        return True


_DEFINED: dict[tuple, type] = {}


def define(name: str, bodies, params) -> type[Template]:
    """A :class:`Template` class for ``bodies`` (a tuple of expressions in ``params``).

    Identical definitions return the same class (keyed by the bodies themselves).
    """
    bodies = tuple(sp.sympify(b) for b in bodies)
    params = tuple(params)
    key = (name, sp.Tuple(*bodies), sp.Tuple(*params))
    if key not in _DEFINED:
        cname = f"{name}_{len(_DEFINED)}"
        _DEFINED[key] = type(
            cname,
            (Template,),
            {"_bodies": bodies, "_params": params, "_tname": name, "nargs": len(params) + 1},
        )
    return _DEFINED[key]


def derivative(cls: type[Template], j: int) -> type[Template]:
    """The template of ``d bodies / d params[j]`` (cached on ``cls``)."""
    cache = cls.__dict__.get("_derivs")
    if cache is None:
        cache = {}
        cls._derivs = cache
    if j not in cache:
        p = cls._params[j]
        cache[j] = define(f"{cls._tname}_d{j}", [sp.diff(b, p) for b in cls._bodies], cls._params)
    return cache[j]


def explicit(expr: sp.Expr) -> sp.Expr:
    """Rewrite ``LogSumExp`` as ``log(sum(exp))`` and evaluate what ``GaussExpect`` can."""
    expr = expr.replace(lambda e: isinstance(e, (GaussExpect, GaussExpectN)), lambda e: e.doit())
    return expr.replace(
        lambda e: isinstance(e, LogSumExp), lambda e: sp.log(sp.Add(*[sp.exp(a) for a in e.args]))
    )


#: Closed forms larger than this (``count_ops``) or with more free symbols
#: than :data:`SIMPLIFY_MAX_SYMBOLS` are not passed to ``sympy.simplify``: its
#: multivariate gcds (``cancel``) grow without bound in the number of symbols
#: (order-6 Gaussian SE maps, 13 symbols, hung for minutes in ``heugcd``).
SIMPLIFY_MAX_OPS = 120
SIMPLIFY_MAX_SYMBOLS = 9


def tidy(expr: sp.Expr) -> sp.Expr:
    """``sympy.simplify`` on small expressions, a cheap ``together`` on large ones.

    The bounded form is exact (no information is lost); it only skips the
    search for a shorter representation when that search can blow up. The
    code generator's ``cse`` then shares the repeated products.
    """
    if len(expr.free_symbols) <= SIMPLIFY_MAX_SYMBOLS and sp.count_ops(expr) <= SIMPLIFY_MAX_OPS:
        return sp.simplify(expr)
    return sp.together(expr)


def exact_expectations(expr: sp.Expr) -> sp.Expr:
    """Evaluate every ``GaussExpect`` that sympy can do exactly, and tidy it.

    Gaussian expectations of polynomials (e.g. Gaussian priors, whose denoiser
    is linear) become closed forms (:func:`tidy`: simplified when small); the
    rest stay for the quadrature module.
    """

    def ev(e):
        out = e.doit()
        if isinstance(out, (GaussExpect, GaussExpectN)):
            return out
        # multivariate results (matrix inverses of order parameters) are left
        # to cse in the code generator: simplify is slow on them
        return out if isinstance(e, GaussExpectN) else tidy(out)

    return expr.replace(lambda e: isinstance(e, (GaussExpect, GaussExpectN)), ev)
