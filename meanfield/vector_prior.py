"""Rank-``r`` channels: the product of ``r`` copies of a scalar prior, derived by sympy.

For a rank-``r`` decomposition every row ``x_i in R^r`` of a mode's factor
matrix has i.i.d. entries from a scalar :class:`~meanfield.priors.Prior`. The
AMP field of a row is a vector ``B`` and its precision an ``r x r`` matrix
``A`` (Lesieur, Krzakala & Zdeborová 2017, "Constrained low-rank matrix
estimation", eqs. 40-43; Kadmon & Ganguli 2018, §3), and the channel's
log-partition is

.. math:: \\log Z(A, B) = \\log \\int \\prod_{s=1}^r dP(x_s)\\, e^{B^T x - x^T A x / 2}.

With a non-diagonal ``A`` the posterior does not factorise, so ``Z`` is a sum
over the ``K^r`` tuples of mixture components (one component per entry): the
point-mass entries are fixed and the Gaussian ones integrated in closed form,

.. math:: \\int N(x_G; m, V)\\, e^{b^T x_G - x_G^T A_{GG} x_G/2} dx_G
          = \\frac{e^{h^T P^{-1} h/2 - m^T V^{-1} m/2}}{\\sqrt{\\det(I + V A_{GG})}},
          \\quad P = V^{-1} + A_{GG},\\; h = V^{-1} m + b,

with ``b = B_G - A_{GD} a_D``. The denoiser (posterior mean) is ``d log Z/dB``
and the posterior covariance ``d^2 log Z / dB dB^T``, both from ``sp.diff``.

State evolution with the ``r x r`` signal-to-noise matrix ``Lam``:
``B = Lam x + Lam^{1/2} z``, and per component tuple ``(x, B)`` is jointly
Gaussian, ``B ~ N(Lam mu, Lam V Lam + Lam)`` and
``E[x | B] = mu + V (Lam V + I)^{-1} (B - Lam mu)``, so

.. math:: M' = E[f(Lam, B)\\, x^T], \\qquad \\psi(Lam) = E \\log Z(Lam, B),

are sums over tuples of :class:`~meanfield._symbols.GaussExpectN` nodes
(``d psi / d Lam = M'/2`` entrywise, the matrix I-MMSE relation). For
``r = 1`` every formula is the scalar one of :mod:`meanfield.priors`.
"""

from __future__ import annotations

import itertools
from functools import cached_property

import sympy as sp

from ._symbols import GaussExpectN, LogSumExp, define, exact_expectations
from .priors import Prior

__all__ = ["VectorPrior", "vector_prior", "sym_matrix", "from_upper", "upper_pairs"]


def upper_pairs(r: int) -> list[tuple[int, int]]:
    """``(s, t)`` with ``s <= t``, row by row: the order of symmetric-matrix entries."""
    return [(s, t) for s in range(r) for t in range(s, r)]


def sym_matrix(entries, r: int) -> sp.Matrix:
    """The symmetric ``r x r`` matrix whose upper triangle is ``entries`` (row by row)."""
    M = sp.zeros(r, r)
    for (s, t), e in zip(upper_pairs(r), entries, strict=True):
        M[s, t] = M[t, s] = e
    return M


def from_upper(upper, r: int):
    """``(..., r(r+1)/2)`` upper triangles (row by row) -> ``(..., r, r)`` symmetric arrays."""
    import numpy as np

    upper = np.asarray(upper, dtype=float)
    out = np.empty(upper.shape[:-1] + (r, r))
    for k, (s, t) in enumerate(upper_pairs(r)):
        out[..., s, t] = out[..., t, s] = upper[..., k]
    return out


def _inverse(P: sp.Matrix) -> sp.Matrix:
    return P.adjugate() / P.det()


class VectorPrior:
    """``r`` i.i.d. copies of the scalar ``prior``: the rank-``r`` channel.

    Parameters
    ----------
    prior : Prior
        The scalar prior of each entry (its symbolic parameters are kept).
    rank : int
        ``r >= 1``.

    Attributes
    ----------
    B : tuple of sympy.Symbol
        Field components ``B_1..B_r``.
    A_entries : tuple of sympy.Symbol
        Upper triangle of the precision, ``A_1_1, A_1_2, ..., A_r_r``.
    """

    def __init__(self, prior: Prior, rank: int):
        if int(rank) != rank or rank < 1:
            raise ValueError(f"rank must be an integer in [1, inf); got {rank!r}")
        self.prior = prior
        self.rank = int(rank)
        r = self.rank
        self.B = tuple(sp.Symbol(f"B_{s + 1}", real=True) for s in range(r))
        self.A_entries = tuple(
            sp.Symbol(f"A_{s + 1}_{t + 1}", real=True) for s, t in upper_pairs(r)
        )
        self.A = sym_matrix(self.A_entries, r)
        self._b = [sp.Dummy(f"b{s + 1}", real=True) for s in range(r)]

    # -- component tuples ------------------------------------------------------
    @cached_property
    def _components(self) -> list[tuple]:
        """``(weight, mean, var, is_atom)`` of each scalar component."""
        out = []
        for c in self.prior.components:
            m, v = c.moments()
            out.append((sp.sympify(c.weight), sp.sympify(m), sp.sympify(v), c.density is None))
        return out

    def tuples(self):
        """Every assignment of one scalar component per entry: ``(w, mu, var, atoms)``."""
        comps = self._components
        for combo in itertools.product(range(len(comps)), repeat=self.rank):
            w = sp.Mul(*[comps[k][0] for k in combo])
            mu = [comps[k][1] for k in combo]
            var = [comps[k][2] for k in combo]
            atom = [comps[k][3] for k in combo]
            yield w, mu, var, atom

    def _tuple_log_partition(self, w, mu, var, atom) -> sp.Expr:
        r = self.rank
        B, A = self.B, self.A
        D = [s for s in range(r) if atom[s]]
        G = [s for s in range(r) if not atom[s]]
        term = sp.log(w)
        term += sum((B[d] * mu[d] for d in D), sp.S.Zero)
        term -= sum((A[d, e] * mu[d] * mu[e] for d in D for e in D), sp.S.Zero) / 2
        if G:
            V = sp.diag(*[var[g] for g in G])
            Vinv = sp.diag(*[1 / var[g] for g in G])
            m = sp.Matrix([mu[g] for g in G])
            AGG = A.extract(G, G)
            b = sp.Matrix([B[g] - sum((A[g, d] * mu[d] for d in D), sp.S.Zero) for g in G])
            P = Vinv + AGG
            h = Vinv * m + b
            term += (h.T * _inverse(P) * h)[0, 0] / 2 - (m.T * Vinv * m)[0, 0] / 2
            term -= sp.log((sp.eye(len(G)) + V * AGG).det()) / 2
        return term

    # -- derived by sympy ---------------------------------------------------------
    @cached_property
    def log_partition(self) -> sp.Expr:
        """``log Z(A, B)`` as a :class:`LogSumExp` over component tuples."""
        return LogSumExp(*[self._tuple_log_partition(*t) for t in self.tuples()])

    @cached_property
    def denoiser(self) -> tuple[sp.Expr, ...]:
        """Posterior mean ``f_s = d log Z / dB_s``."""
        return tuple(sp.diff(self.log_partition, b) for b in self.B)

    @cached_property
    def covariance(self) -> tuple[sp.Expr, ...]:
        """Posterior covariance ``d f_s / dB_t`` (upper triangle, row by row)."""
        f = self.denoiser
        return tuple(sp.diff(f[s], self.B[t]) for s, t in upper_pairs(self.rank))

    def _channel_expectation(self, integrand, Lam: sp.Matrix) -> sp.Expr:
        """``E_{x, z}[integrand(E[x|b], b)]`` with ``b = Lam x + Lam^{1/2} z``.

        ``integrand(xc, b)`` receives the conditional mean ``E[x | b]`` (a
        column Matrix) and the field ``b``; it must be affine in the Gaussian
        entries of ``x`` (as ``f x^T`` and ``log Z`` are).
        """
        r = self.rank
        b = sp.Matrix(self._b)  # one set of variables: entries share quadrature loops
        total = sp.S.Zero
        for w, mu, var, atom in self.tuples():
            mu_v = sp.Matrix(mu)
            V = sp.diag(*var)
            mean_b = Lam * mu_v
            cov_b = Lam * V * Lam + Lam
            if all(atom):
                xc = mu_v
            else:
                xc = mu_v + V * _inverse(Lam * V + sp.eye(r)) * (b - mean_b)
            h = integrand(xc, b)
            total += w * GaussExpectN(h, tuple(b), tuple(mean_b), tuple(cov_b))
        return total

    def se_map(self, Lam: sp.Matrix) -> list[sp.Expr]:
        """``M' = E[f x^T]`` (symmetrised), upper triangle: the overlaps after one step."""
        r = self.rank
        sub = dict(zip(self.A_entries, [Lam[s, t] for s, t in upper_pairs(r)], strict=True))
        f = [fi.xreplace(sub) for fi in self.denoiser]
        out = []
        for s, t in upper_pairs(r):

            def integrand(xc, b, s=s, t=t):
                fb = [fi.xreplace(dict(zip(self.B, b, strict=True))) for fi in f]
                if s == t:
                    return fb[s] * xc[t]
                return (fb[s] * xc[t] + fb[t] * xc[s]) / 2

            out.append(self._channel_expectation(integrand, Lam))
        return out

    def free_entropy(self, Lam: sp.Matrix) -> sp.Expr:
        """``psi(Lam) = E log Z(Lam, Lam x + Lam^{1/2} z)``."""
        r = self.rank
        sub = dict(zip(self.A_entries, [Lam[s, t] for s, t in upper_pairs(r)], strict=True))
        logz = self.log_partition.xreplace(sub)
        return self._channel_expectation(
            lambda xc, b: logz.xreplace(dict(zip(self.B, b, strict=True))), Lam
        )

    # -- templates: derived once, applied to every mode's Lam -----------------------
    @cached_property
    def lam_entries(self) -> tuple[sp.Symbol, ...]:
        """Placeholder symbols of the channel's ``Lam`` (upper triangle)."""
        pairs = upper_pairs(self.rank)
        return tuple(sp.Symbol(f"lam_{s + 1}_{t + 1}", real=True) for s, t in pairs)

    @cached_property
    def se_template(self):
        """:class:`~meanfield._symbols.Template` of :meth:`se_map`: apply as
        ``T(k, *Lam_upper, *prior_params)`` for the ``k``-th upper entry."""
        Lam = sym_matrix(self.lam_entries, self.rank)
        bodies = [exact_expectations(e) for e in self.se_map(Lam)]
        return define(f"se_{self.prior.name}_r{self.rank}", bodies, self._tparams)

    @cached_property
    def free_entropy_template(self):
        """:class:`~meanfield._symbols.Template` of :meth:`free_entropy` (one body)."""
        Lam = sym_matrix(self.lam_entries, self.rank)
        body = exact_expectations(self.free_entropy(Lam))
        return define(f"psi_{self.prior.name}_r{self.rank}", [body], self._tparams)

    @property
    def _tparams(self) -> tuple:
        return (*self.lam_entries, *self.prior.params)


_CACHE: dict[tuple, VectorPrior] = {}


def vector_prior(prior: Prior, rank: int) -> VectorPrior:
    """The (cached) rank-``rank`` channel of ``prior``'s symbolic structure."""
    key = (prior.name, prior.components, prior.params, int(rank))
    if key not in _CACHE:
        _CACHE[key] = VectorPrior(prior, rank)
    return _CACHE[key]
