"""Low-rank tensor decomposition: Bayesian AMP and its state evolution.

Kadmon & Ganguli, "Statistical mechanics of low-rank tensor decomposition",
NeurIPS 2018 / J. Stat. Mech. 2019 124016 (arXiv:1810.10065).

Model (rank one; our normalisation, ``shared/papers/tensor.md`` §1):

.. math::

    Y = N^{-(p-1)/2}\\, x^1 \\otimes \\cdots \\otimes x^p + \\sqrt{\\Delta}\\, W,
    \\qquad x^\\alpha_i \\sim P_\\alpha \\text{ i.i.d.},\\; i \\le N_\\alpha = n_\\alpha N,

with ``W`` i.i.d. standard normal. State evolution (tensor.md §3), with
``M_a = E[x_a xhat_a]`` per mode:

.. math::

    \\hat M_\\alpha = \\Delta^{-1} \\prod_{\\beta\\ne\\alpha} n_\\beta M_\\beta, \\qquad
    M_\\alpha' = E_{x, z}\\big[x\\, f_\\alpha(\\hat M_\\alpha, \\hat M_\\alpha x
                 + \\sqrt{\\hat M_\\alpha} z)\\big],

and the replica-symmetric free entropy whose stationary points are its fixed
points, ``Phi(M) = sum_a n_a psi_a(Mhat_a) - (p-1)/(2 Delta) prod_b n_b M_b``.
For ``p = 2`` and zero-mean priors the trivial fixed point loses stability at
``Delta = v_1 v_2 sqrt(n_1 n_2)`` (BBP; Baik, Ben Arous & Péché 2005).
"""

from __future__ import annotations

import itertools
from typing import Any, ClassVar

import numpy as np
import sympy as sp

from .._model import Model, System
from .._params import Param, ParamError
from .._symbols import symbols_for
from ..priors import LAM, PRIORS, Prior, make_prior
from ..vector_prior import from_upper, sym_matrix, upper_pairs, vector_prior

__all__ = ["Tensor"]

_SYSTEMS: dict[tuple, tuple[System, list[Prior]]] = {}


def _per_mode(name: str, value: Any, order: int) -> tuple:
    vals = value if isinstance(value, tuple) else (value,)
    if len(vals) == 1:
        return vals * order
    if len(vals) != order:
        raise ParamError(
            name, f"one value or a comma-separated list of {order} values (one per mode)", value
        )
    return vals


class Tensor(Model):
    """Rank-one order-p tensor with a prior per mode (Kadmon & Ganguli 2018)."""

    name = "tensor"
    description = "Bayesian AMP and state evolution for low-rank, arbitrarily shaped tensors"
    reference = "Kadmon & Ganguli, NeurIPS 2018; arXiv:1810.10065"
    params: ClassVar[dict[str, Param]] = {
        "order": Param("order", "int", 2, lo=2, hi=8, doc="tensor order p"),
        "shape": Param(
            "shape",
            "float",
            1.0,
            lo=0,
            lo_open=True,
            per_mode=True,
            doc="mode-size ratios n_a = N_a / N",
        ),
        "rank": Param(
            "rank",
            "int",
            1,
            lo=1,
            hi=4,
            doc="rank r (r > 1: r x r overlap matrices per mode, vector denoisers)",
        ),
        "delta": Param("delta", "float", 0.5, lo=0, lo_open=True, doc="noise variance"),
        "prior": Param(
            "prior",
            "choice",
            "gaussian",
            choices=tuple(PRIORS),
            per_mode=True,
            doc="prior of each mode",
        ),
        "mean": Param(
            "mean",
            "float",
            0.0,
            per_mode=True,
            doc="prior mean (gaussian, rademacher, gauss_bernoulli)",
        ),
        "var": Param(
            "var",
            "float",
            1.0,
            lo=0,
            lo_open=True,
            per_mode=True,
            doc="prior variance of the Gaussian part",
        ),
        "rho": Param(
            "rho",
            "float",
            0.5,
            lo=0,
            hi=1,
            lo_open=True,
            per_mode=True,
            doc="sparsity (fraction of non-zeros)",
        ),
        "init": Param(
            "init", "choice", "random", choices=("random", "informed"), doc="initialisation"
        ),
        "eps": Param(
            "eps",
            "float",
            1e-6,
            lo=0,
            hi=1,
            lo_open=True,
            hi_open=True,
            doc="overlap of a random start (vanishing at large N)",
        ),
        "damping": Param(
            "damping",
            "float",
            None,
            lo=0,
            hi=1,
            lo_open=True,
            doc="AMP damping eta: xhat <- eta f + (1 - eta) xhat; "
            "auto: 0.8 at order 2 (undamped, spike-and-slab priors often "
            "oscillate), 0.5 above",
        ),
        "damping_mode": Param(
            "damping_mode",
            "choice",
            "fixed",
            choices=("fixed", "adaptive"),
            doc="fixed eta, or adaptive (halve eta when the AMP residual grows)",
        ),
        "tol": Param("tol", "float", 1e-12, lo=0, lo_open=True, doc="state-evolution tolerance"),
        "max_iter": Param("max_iter", "int", 100_000, lo=1, doc="state-evolution iterations"),
    }
    simulator = "meanfield.sims.engines.amp:simulate_tensor"
    contract: ClassVar[dict[str, tuple[str, ...]]] = {
        "solve": ("status", "overlap", "mse", "iterations", "free_energy", "branch"),
        "simulate": ("overlap", "overlap_sem", "mse", "mse_sem", "status"),
        "threshold": ("param", "kind", "value", "status"),
    }
    observables_doc: ClassVar[dict[str, str]] = {
        "overlap": "per mode M_a = E[x_a xhat_a] (rank r: the r x r overlap matrix)",
        "mse": "per mode, per entry E[x_a^2] - M_a (rank r: mean over the diagonal)",
        "free_energy": "replica-symmetric free entropy Phi at the fixed point",
        "branch": "uninformative or informative (the start the fixed point was reached from)",
    }
    threshold_kinds: ClassVar[tuple[str, ...]] = ("algorithmic", "dynamic", "information")
    threshold_params: ClassVar[dict[str, str]] = dict.fromkeys(threshold_kinds, "delta")
    simulate_options: ClassVar[dict[str, str]] = {
        "max_iter": "AMP iterations (int)",
        "tol": "AMP convergence tolerance on the estimate change",
        "dtype": "float64 or float32 tensor storage",
        "init": "random or informed AMP start (default: the model's init)",
    }
    inits: ClassVar[tuple[str, ...]] = ("random", "informed")
    branches: ClassVar[dict[str, str]] = {"random": "uninformative", "informed": "informative"}

    def check(self, v: dict[str, Any]) -> None:
        p = v["order"]
        for key in ("shape", "prior", "mean", "var", "rho"):
            _per_mode(key, v[key], p)
        priors = self.modes  # builds and validates the priors
        # products of p overlaps (each up to E[x^2]) must stay finite in float64
        bound = 10.0 ** (300 // p)
        means = _per_mode("mean", v["mean"], p)
        vars_ = _per_mode("var", v["var"], p)
        for a, pr in enumerate(priors):
            try:
                m2 = float(pr.second_moment)
            except (OverflowError, ValueError):
                m2 = float("inf")
            if not (np.isfinite(m2) and m2 < bound):
                big_mean = abs(float(means[a])) >= np.sqrt(float(vars_[a]))
                name, got = ("mean", v["mean"]) if big_mean else ("var", v["var"])
                raise ParamError(
                    name,
                    f"a float with E[x^2] = mean^2 + var below 1e{300 // p} at order {p} "
                    "(float64 range of the overlaps' products)",
                    got,
                )

    # -- structure -----------------------------------------------------------------
    @property
    def order(self) -> int:
        return self["order"]

    @property
    def shape(self) -> tuple[float, ...]:
        return tuple(float(s) for s in _per_mode("shape", self["shape"], self.order))

    @property
    def modes(self) -> list[Prior]:
        """The prior of each mode, with numeric parameters (cached: models are immutable)."""
        cached = self.__dict__.get("_modes")
        if cached is None:
            cached = self._build_modes()
            object.__setattr__(self, "_modes", cached)
        return list(cached)

    def _build_modes(self) -> list[Prior]:
        p = self.order
        names = _per_mode("prior", self["prior"], p)
        means = _per_mode("mean", self["mean"], p)
        vars_ = _per_mode("var", self["var"], p)
        rhos = _per_mode("rho", self["rho"], p)
        return [make_prior(names[a], mean=means[a], var=vars_[a], rho=rhos[a]) for a in range(p)]

    @property
    def rank(self) -> int:
        return self["rank"]

    @property
    def order_parameters(self) -> tuple[str, ...]:
        if self.rank == 1:
            return tuple(f"M_{a + 1}" for a in range(self.order))
        pairs = upper_pairs(self.rank)
        return tuple(f"M_{a + 1}_{s + 1}{t + 1}" for a in range(self.order) for s, t in pairs)

    def system(self) -> System:
        priors = self.modes
        key = (self.order, self.rank, tuple(pr.name for pr in priors))
        if key not in _SYSTEMS:
            if self.rank == 1:
                _SYSTEMS[key] = (_build_system(self.order, priors), priors)
            else:
                _SYSTEMS[key] = (_build_system_rank(self.order, priors, self.rank), priors)
        return _SYSTEMS[key][0]

    def _per_entry(self, diagonal: list[float], off: list[float]) -> np.ndarray:
        """The state with ``diagonal[a]`` on each mode's diagonal and ``off[a]`` elsewhere."""
        if self.rank == 1:
            return np.array(diagonal, dtype=float)
        pairs = upper_pairs(self.rank)
        return np.array(
            [diagonal[a] if s == t else off[a] for a in range(self.order) for s, t in pairs]
        )

    def overlap_matrices(self, state: np.ndarray) -> np.ndarray:
        """The state as ``(p, r, r)`` overlap matrices (``r = 1``: ``(p, 1, 1)``)."""
        r, p = self.rank, self.order
        state = np.asarray(state, dtype=float)
        return from_upper(state.reshape(state.shape[:-1] + (p, r * (r + 1) // 2)), r)

    def theta(self) -> np.ndarray:
        vals = [float(self["delta"]), *self.shape]
        for pr in self.modes:
            vals += list(pr.values)
        return np.array(vals)

    def initial_state(self, init: str) -> np.ndarray:
        pri = self.modes
        off = [pr.mean**2 for pr in pri]
        if init == "random":
            return self._per_entry([pr.mean**2 + self["eps"] for pr in pri], off)
        if init == "informed":
            return self._per_entry([pr.second_moment for pr in pri], off)
        raise ParamError("init", "one of random, informed", init)

    def uninformative_state(self) -> np.ndarray:
        """``M_a = E[x_a]^2``: the overlap of estimators that ignore the data
        (rank ``r``: ``E[x] E[x]^T``, every entry ``E[x_a]^2``)."""
        m2 = [pr.mean**2 for pr in self.modes]
        return self._per_entry(m2, m2)

    def vary(self, param: str, values):
        """Vectorised along the noise (``delta`` enters only ``theta[0]``)."""
        if param != "delta":
            return super().vary(param, values)
        values = np.asarray(values, dtype=float)
        for v in (values.min(), values.max()):
            self.params["delta"].validate(float(v))
        theta = np.repeat(self.theta()[None, :], len(values), axis=0)
        theta[:, 0] = values
        s0 = np.stack([self.initial_state(i) for i in self.inits])
        s0 = np.repeat(s0[None], len(values), axis=0)
        u = np.repeat(self.uninformative_state()[None], len(values), axis=0)
        return theta, s0, u

    def observables(self, state: np.ndarray) -> dict[str, Any]:
        """Overlaps and per-entry MSE ``E[x^2] - M`` of each mode.

        Rank ``r > 1``: ``overlap`` holds each mode's ``r x r`` matrix and
        ``mse`` the mean over the diagonal, ``(1/r) sum_s (E[x_s^2] - M_ss)``.
        """
        rho = np.array([pr.second_moment for pr in self.modes])
        if self.rank == 1:
            return {"overlap": np.asarray(state).tolist(), "mse": (rho - state).tolist()}
        mats = self.overlap_matrices(state)
        diag = np.einsum("...ss->...s", mats).mean(axis=-1)
        return {"overlap": mats.tolist(), "mse": (rho - diag).tolist()}

    def simulation_bytes(
        self, size: int, trials: int, dtype: str = "float64", **engine: Any
    ) -> int:
        """The sampled tensors (``trials`` of them in ``dtype``) plus one trial's
        float64 sampling temporaries (planted outer product, noise, sum)."""
        dims = [max(1, int(round(n * size))) for n in self.shape]
        entries = float(np.prod([float(d) for d in dims]))
        return int(entries * (trials * np.dtype(dtype).itemsize + 3 * 8))

    def solver_options(self) -> dict[str, Any]:
        return {"tol": self["tol"], "max_iter": self["max_iter"]}

    def scan_scale(self, param: str) -> float:
        """A natural scale of ``param`` for threshold scans."""
        if param == "delta":
            rho = np.prod([pr.second_moment for pr in self.modes])
            n = np.prod(self.shape) ** ((self.order - 1) / self.order)
            return float(rho * n)
        return 1.0


def _parameters(priors: list[Prior]):
    """``n_1..n_p``, ``delta``, the system's parameter list (``delta``, the
    ``n``, then each mode's prior parameters) and each mode's renaming of its
    prior's symbols (``mean`` -> ``mean_a``)."""
    n = symbols_for("n", len(priors), positive=True)
    delta = sp.Symbol("delta", positive=True)
    params: list[sp.Symbol] = [delta, *n]
    locals_ = []
    for a, pr in enumerate(priors):
        local = {s: sp.Symbol(f"{s.name}_{a + 1}", **s.assumptions0) for s in pr.params}
        params += [local[s] for s in pr.params]
        locals_.append(local)
    return n, delta, params, locals_


def _build_system(order: int, priors: list[Prior]) -> System:
    """State evolution and free entropy of the order-``order`` model (tensor.md §3)."""
    p = order
    M = symbols_for("M", p, real=True)
    n, delta, params, locals_ = _parameters(priors)
    rhs, psi = [], []
    for a, pr in enumerate(priors):
        local = locals_[a]
        lam = sp.Mul(*[n[b] * M[b] for b in range(p) if b != a]) / delta
        rhs.append(pr.se_map.xreplace(local).subs(LAM, lam))
        psi.append(n[a] * pr.free_entropy.xreplace(local).subs(LAM, lam))
    potential = sp.Add(*psi) - (p - 1) / (2 * delta) * sp.Mul(*[n[b] * M[b] for b in range(p)])
    return System("map", tuple(M), tuple(params), tuple(rhs), potential)


def _build_system_rank(order: int, priors: list[Prior], r: int) -> System:
    """Rank-``r`` state evolution: ``r x r`` overlaps ``M_a`` per mode.

    The effective signal-to-noise matrix of mode ``a`` is the Hadamard product
    ``Lam_a = Delta^{-1} prod_{b != a} (n_b M_b)`` (entrywise: the CP tensor's
    field for component ``s`` pairs with ``t`` through ``prod_b M_b[s, t]``),
    ``M_a' = E[f_a(Lam_a, Lam_a x + Lam_a^{1/2} z) x^T]``, and the free entropy
    ``Phi = sum_a n_a psi_a(Lam_a) - (p-1)/(2 Delta) sum_{st} prod_b n_b M_b[s,t]``
    (Lesieur et al. 2017, spiked tensor, rank r; Kadmon & Ganguli 2018 §3).
    For ``r = 1`` this is :func:`_build_system`.
    """
    p = order
    pairs = upper_pairs(r)
    M = [
        tuple(sp.Symbol(f"M_{a + 1}_{s + 1}{t + 1}", real=True) for s, t in pairs) for a in range(p)
    ]
    Mm = [sym_matrix(M[a], r) for a in range(p)]
    n, delta, params, locals_ = _parameters(priors)
    rhs, psi = [], []
    for a, pr in enumerate(priors):
        local = locals_[a]
        others = [b for b in range(p) if b != a]
        lam = sp.zeros(r, r)
        for s, t in itertools.product(range(r), repeat=2):
            lam[s, t] = sp.Mul(*[n[b] * Mm[b][s, t] for b in others]) / delta
        vp = vector_prior(pr, r)
        args = [lam[s, t] for s, t in pairs] + [local[s] for s in pr.params]
        # one template per prior: modes sharing a prior share compiled code
        rhs += [vp.se_template(k, *args) for k in range(len(pairs))]
        psi.append(n[a] * vp.free_entropy_template(0, *args))
    coupling = sum(
        (sp.Mul(*[n[b] * Mm[b][s, t] for b in range(p)]) for s in range(r) for t in range(r)),
        sp.S.Zero,
    )
    potential = sp.Add(*psi) - (p - 1) / (2 * delta) * coupling
    state = tuple(x for a in range(p) for x in M[a])
    return System("map", state, tuple(params), tuple(rhs), potential)
