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

import sympy as sp

__all__ = ["LogSumExp", "GaussExpect", "explicit", "exact_expectations", "symbols_for", "GLOSSARY"]

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
        new = sp.diff(h, s) + sp.diff(m, s) * sp.diff(h, B) + sp.diff(v, s) / 2 * sp.diff(h, B, 2)
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


def explicit(expr: sp.Expr) -> sp.Expr:
    """Rewrite ``LogSumExp`` as ``log(sum(exp))`` and evaluate what ``GaussExpect`` can."""
    expr = expr.replace(lambda e: isinstance(e, GaussExpect), lambda e: e.doit())
    return expr.replace(
        lambda e: isinstance(e, LogSumExp), lambda e: sp.log(sp.Add(*[sp.exp(a) for a in e.args]))
    )


def exact_expectations(expr: sp.Expr) -> sp.Expr:
    """Evaluate every ``GaussExpect`` that sympy can do exactly, and simplify it.

    Gaussian expectations of polynomials (e.g. Gaussian priors, whose denoiser
    is linear) become closed forms; the rest stay for the quadrature module.
    """

    def ev(e):
        out = e.doit()
        return out if isinstance(out, GaussExpect) else sp.simplify(out)

    return expr.replace(lambda e: isinstance(e, GaussExpect), ev)
