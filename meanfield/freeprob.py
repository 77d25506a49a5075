"""Free additive convolution with sympy: R-transforms, spectral curves and spectral edges.

For asymptotically free Hermitian matrices ``A = A_1 + ... + A_m`` the R-transforms add
(Voiculescu): ``R_A = R_1 + ... + R_m``. With the Cauchy transform
``G(z) = int rho(l) / (z - l) dl`` and its functional inverse (Blue's function)
``z(omega) = R(omega) + 1/omega``, every summand used here has an *algebraic*
R-transform: a polynomial relation ``P_i(r, omega) = 0`` satisfied by ``r = R_i(omega)``,
and an explicit closed form of it on the physical branch (``R(0)`` = the mean).

* :func:`atoms` -- a discrete law ``sum_i p_i delta_{a_i}`` (a ``±1`` sign matrix):
  ``omega = sum_i p_i / (z - a_i)`` with ``z = r + 1/omega``, denominators cleared; for
  two atoms sympy solves the quadratic and keeps the root with ``R(0) = sum p_i a_i``.
* :func:`compound_free_poisson` -- ``(1/N) sum_k d_k z_k z_k^T`` (Wishart-type, signed
  jumps ``d_k``): ``R(omega) = rate * sum_j w_j a_j / (1 - a_j omega)``.
* :func:`shift` -- ``a I``: ``R = a``.

:class:`FreeSum` eliminates the summands' ``r_i`` by resultants, giving the *spectral
curve* ``Q(z, omega) = 0`` of the sum (``omega = G(z)`` on the physical branch). The
spectral edges are the branch points of ``omega(z)``: the roots of the odd-multiplicity,
``z``-dependent factors of the discriminant ``Disc_omega Q`` (the *edge polynomial*).
Setting ``z = z0`` in it gives the *vanishing-discriminant polynomial* in the model
parameters whose zero set is the boundary ``lambda_min = z0`` (curl descent digest §2.3;
the authors' ``solve_eta2_minus_4zeta3`` is the same condition for the readout layer).

Numerically, the lower edge is found on the physical branch: as ``omega -> 0^-`` the branch
behaves as ``z ~ 1/omega -> -inf``; following it leftwards, ``z`` increases up to its first
local maximum, the lower edge (or, without one, the limit at the end of the branch: an
atom). Rank-finite perturbations ``theta e e^T`` of a free sum produce BBP outliers where
``G(z) = 1/theta`` (Baik, Ben Arous & Peche 2005; Benaych-Georges & Nadakuditi 2011),
i.e. at ``z = blue(1/theta)`` when ``1/theta`` lies on the branch between ``0^-`` and the
edge's ``omega``.

Reviewed from an unreviewed work-in-progress module: the explicit two-atom R-transform
(vectorised edges), the faster edge polynomial and :meth:`FreeSum.outlier` are new; the
resultant construction and the root-tracking branch are kept (and cross-checked in
``tests/curl_descent/test_freeprob.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import sympy as sp

__all__ = [
    "Z",
    "OMEGA",
    "Summand",
    "atoms",
    "compound_free_poisson",
    "free_poisson",
    "shift",
    "FreeSum",
]

Z = sp.Symbol("z")
OMEGA = sp.Symbol("omega")
_R = sp.Symbol("r")


@dataclass(frozen=True)
class Summand:
    """One free summand: a polynomial ``relation(r, omega) = 0`` satisfied by its R-transform.

    ``explicit`` holds ``R(omega)`` itself on the physical branch when it has a closed form
    (rational, or with radicals); then the sum's Blue function is explicit. ``poles``
    lists its poles on the negative axis (expressions in the parameters): the physical
    branch of the sum ends at the one nearest ``0^-``.
    """

    relation: sp.Expr
    explicit: sp.Expr | None = None
    label: str = ""
    poles: tuple = ()


def _clear(expr: sp.Expr) -> sp.Expr:
    return sp.expand(sp.numer(sp.together(sp.expand(expr))))


def atoms(weights: Sequence, locations: Sequence, label: str = "atoms") -> Summand:
    """The law ``sum_i p_i delta_{a_i}`` (e.g. a diagonal sign matrix ``D``).

    Its Cauchy transform ``G(z) = sum_i p_i/(z - a_i)``; ``omega = G(z)`` with
    ``z = r + 1/omega`` gives the R-transform relation. For two atoms the relation is
    quadratic in ``r`` and the root with ``R(0) = sum_i p_i a_i`` is kept as the explicit
    R-transform.
    """
    ps = [sp.sympify(p) for p in weights]
    locs = [sp.sympify(a) for a in locations]
    g = sum(p / (Z - a) for p, a in zip(ps, locs, strict=True))
    rel = _clear(OMEGA - g)
    rel = _clear(rel.subs(Z, _R + 1 / OMEGA))
    explicit = None
    if len(ps) <= 2 and sp.degree(rel, _R) <= 2:
        mean = sum(p * a for p, a in zip(ps, locs, strict=True))
        for root in sp.solve(rel, _R):
            lim = sp.limit(root, OMEGA, 0, "-")
            if sp.simplify(lim - mean) == 0:
                explicit = root
                break
    return Summand(rel, explicit, label)


def compound_free_poisson(rate, jumps: Sequence, weights: Sequence, label="poisson") -> Summand:
    """``R(omega) = rate * sum_j w_j a_j / (1 - a_j omega)`` (jumps ``a_j``, weights ``w_j``).

    The law of ``(1/N) sum_{k<=K} d_k z_k z_k^T`` with ``z_k ~ N(0, I_N)``, ``rate = K/N``
    and ``d_k = a_j`` for a fraction ``w_j`` of the ``k`` (free Poisson when one jump).
    """
    rate = sp.sympify(rate)
    R = rate * sum(
        sp.sympify(w) * sp.sympify(a) / (1 - sp.sympify(a) * OMEGA)
        for a, w in zip(jumps, weights, strict=True)
    )
    poles = tuple(1 / sp.sympify(a) for a in jumps if sp.sympify(a).is_negative)
    return Summand(_clear(_R - R), sp.together(R), label, poles)


def free_poisson(rate, jump=1, label="free_poisson") -> Summand:
    """Marchenko--Pastur: ``R(omega) = rate * jump / (1 - jump * omega)``."""
    return compound_free_poisson(rate, [jump], [1], label)


def shift(a, label="shift") -> Summand:
    """``a I``: ``R(omega) = a``."""
    a = sp.sympify(a)
    return Summand(_R - a, a, label)


@dataclass
class FreeSum:
    """The free additive convolution of ``summands`` (sympy spectral curve, edges, numerics).

    Parameters
    ----------
    summands : sequence of Summand
    params : sequence of sympy.Symbol
        The free parameters, in the order numeric values are passed.
    """

    summands: Sequence[Summand]
    params: Sequence[sp.Symbol]
    _num: dict = field(default_factory=dict, repr=False)

    # -- symbolic --------------------------------------------------------------
    @cached_property
    def blue(self) -> sp.Expr | None:
        """``z(omega) = sum_i R_i(omega) + 1/omega`` when every R-transform is explicit."""
        if all(s.explicit is not None for s in self.summands):
            return sum(s.explicit for s in self.summands) + 1 / OMEGA
        return None

    @cached_property
    def spectral_curve(self) -> sp.Expr:
        """``Q(z, omega)``: the polynomial whose zero set contains ``omega = G(z)``.

        The last summand's ``r`` is ``z - 1/omega - sum(other r)``; the others are eliminated
        one by one by resultants; factors free of ``z`` or of ``omega`` (``omega = 0``,
        parameter factors) are dropped.
        """
        rs = [sp.Symbol(f"r_{i}") for i in range(len(self.summands))]
        rels = [s.relation.subs(_R, rs[i]) for i, s in enumerate(self.summands)]
        q = _clear(rels[-1].subs(rs[-1], Z - 1 / OMEGA - sum(rs[:-1])))
        for i in range(len(self.summands) - 1):
            q = sp.resultant(q, rels[i], rs[i])
        q = sp.expand(q)
        keep = sp.Integer(1)
        for f, m in sp.factor_list(q)[1]:
            if f.has(Z) and f.has(OMEGA):
                keep *= f**m
        return sp.expand(keep)

    @cached_property
    def edge_polynomial(self) -> sp.Expr:
        """The branch points of ``omega(z)``: the odd-multiplicity, ``z``-dependent factors of
        ``Disc_omega Q`` that do not divide ``Q``'s leading coefficient in ``omega``."""
        q = sp.Poly(self.spectral_curve, OMEGA)
        disc = sp.discriminant(q.as_expr(), OMEGA)
        gens = (Z, *self.params)
        lead = sp.Poly(q.LC(), *gens)
        out = sp.Integer(1)
        for f, m in sp.factor_list(disc)[1]:
            if not f.has(Z) or m % 2 == 0:
                continue
            if lead.as_expr().has(Z) and lead.rem(sp.Poly(f, *gens)).is_zero:
                continue
            out *= f
        return sp.expand(out)

    def boundary_polynomial(self, z0) -> sp.Expr:
        """The vanishing-discriminant polynomial: ``edge_polynomial(z = z0)`` in the
        parameters, with numeric and monomial factors removed (its zero set holds the
        boundary ``lambda_edge = z0``)."""
        e = sp.expand(self.edge_polynomial.subs(Z, sp.sympify(z0)))
        out = sp.Integer(1)
        for f, m in sp.factor_list(e)[1]:
            if f.is_number or f.is_Symbol or (f.is_Pow and f.base.is_Symbol):
                continue
            out *= f**m
        return sp.expand(out)

    def outlier_curve(self, theta) -> sp.Expr:
        """``Q(z, 1/theta)``: outliers of ``A + theta e e^T`` (``e`` a unit vector
        delocalised with respect to ``A``'s eigenbasis) solve ``G_A(z) = 1/theta``."""
        return sp.expand(self.spectral_curve.subs(OMEGA, 1 / sp.sympify(theta)))

    # -- numeric ---------------------------------------------------------------
    def _blue_fns(self):
        if "blue" not in self._num:
            b = self.blue
            self._num["blue"] = sp.lambdify((OMEGA, *self.params), b, "numpy")
            self._num["dblue"] = sp.lambdify((OMEGA, *self.params), sp.diff(b, OMEGA), "numpy")
        return self._num["blue"], self._num["dblue"]

    def _coeffs_z(self):
        """Coefficients of ``Q`` in ``z`` (highest first) as numpy functions of (omega, *params)."""
        if "cz" not in self._num:
            poly = sp.Poly(self.spectral_curve, Z)
            self._num["cz"] = [
                sp.lambdify((OMEGA, *self.params), c, "numpy") for c in poly.all_coeffs()
            ]
        return self._num["cz"]

    def branch(self, omegas: np.ndarray, values: Sequence[float], *, explicit: bool = True):
        """``z(omega)`` on the physical branch (``~ 1/omega`` at ``0^-``).

        With an explicit Blue function (and ``explicit``) it is evaluated directly (NaN
        where a radical turns complex: the branch has ended); otherwise the roots of
        ``Q(., omega)`` are followed continuously from ``1/omega``.
        """
        omegas = np.asarray(omegas, dtype=float)
        values = [float(v) for v in values]
        if explicit and self.blue is not None:
            f, _ = self._blue_fns()
            with np.errstate(all="ignore"):
                z = np.asarray(f(omegas.astype(complex), *values), dtype=complex) + 0 * omegas
            ok = np.abs(z.imag) <= 1e-12 * (1 + np.abs(z.real))
            return np.where(ok, z.real, np.nan)
        cz = self._coeffs_z()
        zs = np.empty(len(omegas))
        prev = None
        for k, w in enumerate(omegas):
            co = np.array([complex(f(w, *values)) for f in cz])
            nz = np.flatnonzero(np.abs(co) > 1e-300)
            co = co[nz[0] :] if nz.size else co
            roots = np.roots(co) if co.size > 1 else np.array([np.nan])
            target = 1.0 / w if prev is None else prev
            j = int(np.argmin(np.abs(roots - target)))
            zs[k] = roots[j].real if abs(roots[j].imag) < 1e-7 * (1 + abs(roots[j])) else np.nan
            prev = roots[j]
        return zs

    def branch_end(self, values: Sequence[float]) -> float:
        """The pole of the summands' R-transforms nearest ``0^-`` (``-inf`` if none)."""
        if "poles" not in self._num:
            ps = [p for s in self.summands for p in s.poles]
            self._num["poles"] = [sp.lambdify(self.params, p, "numpy") for p in ps]
        ends = [float(f(*values)) for f in self._num["poles"]]
        ends = [e for e in ends if e < 0]
        return max(ends) if ends else -np.inf

    def omega_grid(self, values: Sequence[float], points: int) -> np.ndarray:
        """Decreasing ``omega`` from ``0^-`` to the branch end: geometric from ``0^-`` over
        16 decades, or, before a pole ``p``, geometric in ``omega/p`` from both ends."""
        end = self.branch_end(values)
        if not np.isfinite(end):
            return -np.geomspace(1e-8, 1e8, points)
        h = points // 2
        u = np.concatenate([np.geomspace(1e-10, 0.5, h), 1 - np.geomspace(0.5, 1e-13, h)[1:]])
        return end * u

    def _edge_bracket(self, values, points: int, explicit: bool):
        om = self.omega_grid(values, points)
        zs = self.branch(om, values, explicit=explicit)
        ok = np.isfinite(zs)
        if not ok[0]:
            return om, zs, None, 0
        stop = int(np.argmin(ok)) if not ok.all() else len(zs)
        dec = np.flatnonzero(np.diff(zs[:stop]) < 0)
        return om, zs, (int(dec[0]) if dec.size else None), stop

    def lower_edge(
        self, values: Sequence[float], *, points: int = 3000, explicit: bool = True
    ) -> float:
        """The lower edge of the limiting spectrum at numeric parameter ``values``.

        Scan ``omega`` from ``0^-`` leftwards (geometric grid over 16 decades) on the
        physical branch; the first local maximum of ``z(omega)`` is refined by Brent's
        method on the sympy derivative ``dz/domega`` (explicit Blue function) or by a
        bounded maximisation. Without one, the limit at the end of the branch (an atom, or
        the point where the branch turns) is returned.
        """
        from scipy.optimize import brentq, minimize_scalar

        values = [float(v) for v in values]
        om, zs, i, stop = self._edge_bracket(values, points, explicit)
        if stop == 0:
            return float("nan")
        if i is None:
            return float(zs[stop - 1])
        lo, hi = om[min(i + 1, len(om) - 1)], om[max(i - 1, 0)]
        if explicit and self.blue is not None:
            f, df = self._blue_fns()
            g = lambda w: float(np.real(df(complex(w), *values)))  # noqa: E731
            try:
                if g(lo) * g(hi) < 0:
                    w = brentq(g, lo, hi, xtol=1e-15, rtol=1e-13)
                    return float(np.real(f(complex(w), *values)))
            except (ValueError, ZeroDivisionError):
                pass

        def zb(w):
            return float(self.branch(np.array([w]), values, explicit=explicit)[0])

        res = minimize_scalar(
            lambda w: -zb(w), bounds=(lo, hi), method="bounded",
            options={"xatol": 1e-14 * max(1.0, abs(lo))},
        )
        return float(max(-res.fun, zs[i], zs[min(i + 1, stop - 1)]))

    def edge_omega(self, values: Sequence[float], *, points: int = 3000) -> float:
        """``G`` at the lower edge: the ``omega`` of the branch maximum (``-inf`` if none)."""
        from scipy.optimize import brentq

        values = [float(v) for v in values]
        om, zs, i, stop = self._edge_bracket(values, points, True)
        if i is None:
            return -np.inf if stop == len(om) else float(om[stop - 1])
        lo, hi = om[min(i + 1, len(om) - 1)], om[max(i - 1, 0)]
        _, df = self._blue_fns()
        g = lambda w: float(np.real(df(complex(w), *values)))  # noqa: E731
        if g(lo) * g(hi) < 0:
            return float(brentq(g, lo, hi, xtol=1e-15, rtol=1e-13))
        return float(om[i])

    def outlier(self, theta: float, values: Sequence[float]) -> float:
        """The BBP outlier of ``A + theta e e^T`` below the spectrum (NaN if there is none).

        ``G_A(z) = 1/theta`` with ``theta < 0``: ``z = blue(1/theta)`` when ``1/theta`` lies
        between the lower edge's ``omega`` and ``0^-`` (explicit Blue function required).
        """
        if self.blue is None:
            raise ValueError("outlier needs an explicit Blue function")
        w = 1.0 / float(theta)
        if w >= 0 or w <= self.edge_omega(values):
            return float("nan")
        f, _ = self._blue_fns()
        return float(np.real(f(complex(w), *[float(v) for v in values])))

    def edges(self, values: Sequence[float]) -> np.ndarray:
        """Real roots of the edge polynomial at ``values`` (all candidate spectral edges)."""
        fns = self._edge_fns()
        co = np.array([float(f(*values)) for f in fns])
        nz = np.flatnonzero(co != 0)
        r = np.roots(co[nz[0] :]) if nz.size else np.array([])
        return np.sort(r[np.abs(r.imag) < 1e-9 * (1 + np.abs(r))].real)

    def _edge_fns(self):
        if "edge" not in self._num:
            poly = sp.Poly(self.edge_polynomial, Z)
            self._num["edge"] = [sp.lambdify(self.params, c, "numpy") for c in poly.all_coeffs()]
        return self._num["edge"]

    def edges_grid(self, *arrays: np.ndarray) -> np.ndarray:
        """Smallest real root of the edge polynomial on broadcast parameter arrays.

        Batched companion-matrix eigenvalues (one LAPACK call for the whole grid); NaN where
        there is no real root. Where the leading coefficient vanishes the degree drops and
        the point is NaN (evaluate it with :meth:`lower_edge`).
        """
        fns = self._edge_fns()
        arrays = np.broadcast_arrays(*[np.asarray(a, dtype=float) for a in arrays])
        shape = arrays[0].shape
        co = np.stack(
            [np.broadcast_to(np.asarray(f(*arrays), dtype=float), shape) for f in fns], axis=-1
        ).reshape(-1, len(fns))
        d = co.shape[1] - 1
        lead = co[:, :1]
        good = np.abs(lead[:, 0]) > 0
        comp = np.zeros((co.shape[0], d, d))
        with np.errstate(all="ignore"):
            comp[:, 0, :] = -co[:, 1:] / np.where(good[:, None], lead, 1.0)
        comp[:, np.arange(1, d), np.arange(d - 1)] = 1.0
        ev = np.linalg.eigvals(comp)
        real = np.abs(ev.imag) < 1e-7 * (1 + np.abs(ev.real))
        vals = np.where(real, ev.real, np.inf).min(axis=1)
        vals[~np.isfinite(vals) | ~good] = np.nan
        return vals.reshape(shape)
