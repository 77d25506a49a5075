"""Balanced predictive coding with noise, chaos and delays (Kadmon, Timcheck & Ganguli 2020).

"Predictive coding in balanced neural networks with noise, chaos and delays",
NeurIPS 2020 (arXiv:2006.14178). The network equations are a reconstruction
(``shared/papers/predictive_coding.md`` §1.2; the paper's body could not be
read), with tau = 1:

.. math::

    \\dot h_i = -h_i + b\\,w_i\\,[x(t) - \\hat x(t - d)] + g \\sum_j J_{ij}\\,\\phi(h_j(t - d'))
               + \\sigma \\xi_i(t), \\qquad \\hat x = \\frac1N \\sum_j w_j \\phi(h_j),

``J_ij ~ N(0, 1/N)``, unit-intensity white noise, ``d' = d`` when
``delay_on = all`` and ``0`` when ``delay_on = feedback`` (the default).
Reconstruction choices kept as parameters (defaults first): ``weights``
gaussian N(0, 1) | binary +-1; ``delay_on`` feedback | all; ``phi`` tanh (any
sympy expression in ``h``); the diagonal of the balance term is kept
(self-coupling ``-(b/N) w_i^2 phi_i``, neglected by the theory; digest pitfall 4).

Mean-field theory (digest §2, derived symbolically here and in
:mod:`meanfield.solvers.dmft`): the amplified error ``y = b (x - <xhat>)`` solves
``x - y/b = F(y; Delta_0)``, ``F = E_w E_z[w phi(w y + sqrt(Delta_0) z)]``
(paper eq. 6, Fig. 1B), with ``Delta_0`` from the DMFT; the collective-mode gain
``kappa = E_w E_z[w^2 phi'(.)]``; ``bias = x - F = y/b``; the decoder variance by
linear response of the collective mode with the full spectrum (delay included);
``error = sqrt(bias^2 + std^2)``. The delay's Hopf boundary is
``b kappa = K_c(d) = sqrt(1 + w_c^2)``, ``w_c d = pi - arctan(w_c)``; chaos sets in
where ``g^2 E[phi'^2] = 1`` on the static branch (``g_c = 1`` at ``x = 0``).
For a sinusoidal or Ornstein-Uhlenbeck input the theory linearises around the
static point at the input's mean: the tracking error has transfer function
``H(w) = (1 + i w) / (1 + i w + b kappa e^{-i w d})``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import sympy as sp

from .._model import Model, SolveResult, System
from .._params import Param, ParamError
from .._symbols import GaussExpect
from ..solvers import dmft

__all__ = ["PredictiveCoding", "hopf_gain", "hopf_frequency"]

_SYSTEMS: dict[tuple, System] = {}


def hopf_frequency(d: float) -> float:
    """``w_c`` with ``w_c d = pi - arctan(w_c)`` (digest §2.5); ``inf`` at ``d = 0``."""
    from scipy.optimize import brentq

    if d <= 0:
        return float("inf")
    return float(brentq(lambda w: w * d - np.pi + np.arctan(w), 1e-12, np.pi / d, xtol=1e-14))


def hopf_gain(d: float) -> float:
    """``K_c(d) = sqrt(1 + w_c^2)``: the loop gain ``b kappa`` of the Hopf point."""
    w = hopf_frequency(d)
    return float(np.sqrt(1.0 + w * w)) if np.isfinite(w) else float("inf")


class PredictiveCoding(Model):
    """Balanced predictive-coding rate network (Kadmon, Timcheck & Ganguli 2020)."""

    name = "predictive_coding"
    description = (
        "coding error (bias, std) of a balanced predictive-coding rate network with "
        "private noise, weight disorder (chaos) and delays; rate and spiking simulators"
    )
    reference = "Kadmon, Timcheck & Ganguli, NeurIPS 2020; arXiv:2006.14178"
    params: ClassVar[dict[str, Param]] = {
        "b": Param("b", "float", 10.0, lo=0, doc="balance strength (rank-one feedback gain)"),
        "sigma": Param("sigma", "float", 0.75, lo=0, doc="private white-noise amplitude"),
        "g": Param("g", "float", 0.0, lo=0, doc="random-weight gain (J_ij ~ N(0, g^2/N))"),
        "d": Param("d", "float", 0.0, lo=0, doc="synaptic delay (units of tau)"),
        "x": Param("x", "float", 0.2, doc="input (its mean for time-varying inputs)"),
        "n": Param("n", "int", 1400, lo=2, doc="network size N"),
        "phi": Param("phi", "str", "tanh", doc="nonlinearity: sympy expression in h"),
        "weights": Param(
            "weights", "choice", "gaussian", choices=("gaussian", "binary"),
            doc="encoder = decoder weights: N(0, 1) or +-1 (reconstruction; default gaussian)",
        ),
        "delay_on": Param(
            "delay_on", "choice", "feedback", choices=("feedback", "all"),
            doc="delay on the xhat feedback only, or on all recurrent input",
        ),
        "input": Param(
            "input", "choice", "constant", choices=("constant", "sinusoid", "ou"),
            doc="x(t): constant x, x + amp sin(omega t), or OU with mean x, std amp",
        ),
        "amp": Param("amp", "float", 0.1, lo=0, doc="sinusoid amplitude / OU std"),
        "omega": Param("omega", "float", 1.0, lo=0, lo_open=True, doc="sinusoid angular freq."),
        "tau_x": Param("tau_x", "float", 1.0, lo=0, lo_open=True, doc="OU correlation time"),
        "engine": Param(
            "engine", "choice", "rate", choices=("rate", "spiking"),
            doc="simulator: the rate network (the theory's model) or the Boerlin-Machens-Deneve "
                "spiking network with Gamma = 2 w / b (sims.engines.spiking; g = 0, constant x)",
        ),
        "rule": Param(
            "rule", "choice", "one", choices=("one", "all"),
            doc="spiking only: one spike per step (the most suprathreshold neuron) or all",
        ),
        "lambda_v": Param("lambda_v", "float", 1.0, lo=0,
                          doc="spiking only: membrane leak of the voltage noise (units of 1/tau)"),
    }
    simulator = "meanfield.sims.engines.network:simulate_predictive_coding"
    contract: ClassVar[dict[str, tuple[str, ...]]] = {
        "solve": ("bias", "std", "error", "status"),
        "simulate": ("bias", "bias_sem", "std", "std_sem", "error", "error_sem", "status"),
        "threshold": ("param", "kind", "value", "status"),
    }
    observables_doc: ClassVar[dict[str, str]] = {
        "bias": "|x - <xhat>|: time-averaged decoder bias (y / b in the theory)",
        "std": "sqrt(<(xhat - x - <xhat - x>)^2>): temporal std of the coding error",
        "error": "sqrt(bias^2 + std^2): root-mean-square coding error",
        "y": "amplified error b (x - <xhat>)",
        "kappa": "collective-mode gain E[w^2 phi']",
        "delta0": "single-site variance Delta_0 of h - w y",
        "delta_inf": "its static (quenched) part",
        "loop_gain": "b kappa (Hopf when it reaches K_c(d))",
        "hopf_gain": "K_c(d)",
        "chaos_criterion": "g^2 E[phi'^2] on the static branch (> 1: chaos)",
    }
    threshold_kinds: ClassVar[tuple[str, ...]] = ("delay", "chaos")
    threshold_params: ClassVar[dict[str, str]] = {"delay": "b", "chaos": "g"}
    simulate_options: ClassVar[dict[str, str]] = {
        "t_max": "simulated time after the transient (default 60)",
        "t_burn": "transient discarded (default 5)",
        "dt": "time step (default auto: 0.05 / (1 + b kappa_max + g), <= d/10, dividing d)",
        "network": "independent (a network per trial) or shared (one J, w for all trials)",
        "init": "stationary (theory's h = w y + sqrt(Delta0) z), zero, or random (N(0, 1))",
        "backend": "cpu or cuda (both engines)",
    }
    size_param: ClassVar[str | None] = "n"

    def check(self, v: dict[str, Any]) -> None:
        dmft.nonlinearity(v["phi"])

    # -- structure ------------------------------------------------------------
    @property
    def phi(self) -> dmft.Nonlinearity:
        return dmft.nonlinearity(self["phi"])

    @property
    def law(self) -> dmft.WeightLaw:
        return dmft.WeightLaw(self["weights"])

    @property
    def order_parameters(self) -> tuple[str, ...]:
        return ("y", "Delta0")

    def system(self) -> System:
        """Static self-consistency as a map on ``(y, Delta_0)`` (fixed-point branch).

        ``y <- b (x - F(y, Delta_0))``, ``Delta_0 <- sigma^2/2 + g^2 E[phi^2]``:
        exact for ``g = 0``; with chaos the solver uses the DMFT instead
        (:meth:`solve`). Gaussian ``w`` uses Stein's lemma,
        ``F = y E[phi'(B)]`` with ``B ~ N(0, y^2 + Delta_0)`` (sympy derivative).
        """
        key = (sp.srepr(self.phi.expr), self["weights"])
        if key not in _SYSTEMS:
            y, D = sp.symbols("y Delta0", real=True)
            b, x, g, s = sp.symbols("b x g sigma", real=True)
            B = sp.Dummy("B", real=True)
            phiB = self.phi.expr.subs(dmft.H, B)
            if self["weights"] == "gaussian":
                F = y * GaussExpect(sp.diff(phiB, B), B, 0, y**2 + D)
                P2 = GaussExpect(phiB**2, B, 0, y**2 + D)
            else:
                F = (GaussExpect(phiB, B, y, D) - GaussExpect(phiB, B, -y, D)) / 2
                P2 = (GaussExpect(phiB**2, B, y, D) + GaussExpect(phiB**2, B, -y, D)) / 2
            rhs = (b * (x - F), s**2 / 2 + g**2 * P2)
            _SYSTEMS[key] = System("map", (y, D), (b, x, g, s), rhs)
        return _SYSTEMS[key]

    def theta(self) -> np.ndarray:
        return np.array([self["b"], self["x"], self["g"], self["sigma"]], dtype=float)

    def initial_state(self, init: str) -> np.ndarray:
        return np.array([0.0, self["sigma"] ** 2 / 2 + self["g"] ** 2])

    def observables(self, state: np.ndarray) -> dict[str, Any]:
        y = float(state[0])
        b = self["b"]
        return {"y": y, "bias": abs(y / b) if b > 0 else None}

    # -- theory ------------------------------------------------------------------
    def transfer(self, y: float, delta0: float) -> float:
        """``F(y; Delta_0) = E_w E_z[w phi(w y + sqrt(Delta_0) z)]`` (paper eq. 6)."""
        return dmft.expect(self.phi, y, delta0, self.law, power=1)

    def kappa(self, y: float, delta0: float) -> float:
        """Collective-mode gain ``E_w E_z[w^2 phi'(w y + sqrt(Delta_0) z)]``."""
        return dmft.expect(self.phi.f1, y, delta0, self.law, power=2)

    def static(self, static_branch: bool = False, max_iter: int = 60, tol: float = 1e-11):
        """Solve ``x - y/b = F(y; Delta_0)`` jointly with the DMFT for ``Delta_0``.

        ``static_branch``: use the fixed-point branch at ``sigma = 0`` even where it
        is unstable (the continuation the chaos test is evaluated on).
        Returns ``(y, DMFTSolution, status, iterations)``.
        """
        from scipy.optimize import brentq

        b, x, g, s = self["b"], self["x"], self["g"], self["sigma"]
        phi, law = self.phi, self.law
        fmax = phi.sup * (law.abs_mean if law.name == "gaussian" else 1.0)

        def step(y):
            """One alternation: Delta_0 at ``y``, then ``y`` from (MF-a) at that Delta_0."""
            if static_branch:
                d = dmft.fixed_point_variance(phi, g, y, law)
                crit = g * g * dmft.expect(lambda u: phi.f1(u) ** 2, y, d, law)
                sol = dmft.DMFTSolution(d, d, y, g, 0.0, False, crit, "ok", law, phi)
            else:
                sol = dmft.solve_dmft(phi, g, s, y, law)
            if sol.status != "ok":
                return None, sol
            if b == 0:
                return 0.0, sol

            def r(yy):
                return yy - b * (x - self.transfer(yy, sol.delta0))

            lo, hi = b * (x - fmax) - 1.0, b * (x + fmax) + 1.0
            return float(brentq(r, lo, hi, xtol=1e-14, rtol=1e-13)), sol

        # the alternation's fixed point by secant steps on G(y) = step(y) - y
        y, prev = 0.0, None
        sol = None
        for it in range(1, max_iter + 1):
            y_new, sol = step(y)
            if y_new is None:
                return y, sol, "not_converged", it
            G = y_new - y
            if g == 0 or abs(G) <= tol * max(1.0, abs(y_new)):
                if g == 0:
                    sol.y = y_new  # Delta_0 = sigma^2/2 does not depend on y
                elif abs(G) > 0:
                    y_new, sol = step(y_new)  # Delta_0 at the converged y
                return y_new, sol, "ok", it
            y_next = y_new
            if prev is not None and G != prev[1]:
                y_next = y - G * (y - prev[0]) / (G - prev[1])
            prev = (y, G)
            y = y_next
        return y, sol, "not_converged", max_iter

    def tracking_variance(self, loop_gain: float) -> float:
        """Variance of the linearised tracking error for a time-varying input."""
        kind = self["input"]
        if kind == "constant" or self["amp"] == 0:
            return 0.0
        d, A = self["d"], self["amp"]

        def h2(om):
            z = 1 + 1j * om
            return np.abs(z) ** 2 / np.abs(z + loop_gain * np.exp(-1j * om * d)) ** 2

        if kind == "sinusoid":
            return float(A * A / 2 * h2(self["omega"]))
        from scipy.integrate import quad

        tx = self["tau_x"]

        def f(om):
            return 2 * A * A * tx / (1 + (om * tx) ** 2) * h2(om) / np.pi

        return float(quad(f, 0, np.inf, limit=400)[0])

    def solve(self, init: str | None = None) -> SolveResult:
        """Bias, std and error of the decoder from the mean-field theory (module docstring)."""
        y, sol, status, it = self.static()
        vals: dict[str, Any] = {"bias": None, "std": None, "error": None}
        if status != "ok":
            return SolveResult(np.array([y, np.nan]), it, "not_converged", vals)
        b, x, d = self["b"], self["x"], self["d"]
        kap = self.kappa(y, sol.delta0)
        bias = abs(x - self.transfer(y, sol.delta0))
        K = b * kap
        Kc = hopf_gain(d)
        vals.update(
            bias=bias, y=y, kappa=kap, delta0=sol.delta0, delta_inf=sol.delta_inf,
            loop_gain=K, hopf_gain=Kc if np.isfinite(Kc) else None,
            chaos_criterion=sol.criterion, chaotic=bool(sol.chaotic or sol.criterion > 1),
        )
        if K >= Kc:
            vals["std_note"] = "beyond the Hopf point: coherent oscillation, no linear response"
            return SolveResult(np.array([y, sol.delta0]), it, "oscillatory", vals)
        var, var0 = dmft.closed_loop_variance(sol, self["n"], K, d)
        var += self.tracking_variance(K)
        std = float(np.sqrt(max(var, 0.0)))
        vals.update(std=std, error=float(np.hypot(bias, std)), std_open_loop=float(np.sqrt(var0)))
        return SolveResult(np.array([y, sol.delta0]), it, "ok", vals)

    # -- thresholds -------------------------------------------------------------
    def threshold(self, param: str, kind: str, lo: float | None = None, hi: float | None = None):
        """Hopf (``kind='delay'``) or chaos (``kind='chaos'``) boundary in ``param``.

        ``delay``: test ``b kappa - K_c(d)`` with ``kappa`` at the self-consistent static
        solution at each value (digest §2.5). ``chaos``: test ``g^2 E[phi'^2] - 1`` on the
        static branch of the noiseless network (``sigma`` is ignored; digest §2.2).
        Both located by :func:`meanfield.solvers.bifurcation.locate_crossing`.
        """
        from ..solvers.bifurcation import locate_crossing

        if kind not in self.threshold_kinds:
            raise ParamError("kind", "one of " + ", ".join(self.threshold_kinds), kind)
        if param not in ("b", "sigma", "g", "d", "x"):
            raise ParamError("param", "one of b, sigma, g, d, x", param)
        spec = self.params[param]
        default = {"b": (1e-2, 1e4), "sigma": (0.0, 3.0), "g": (0.05, 5.0), "d": (1e-3, 10.0),
                   "x": (0.0, 2.0)}[param]
        lo = default[0] if lo is None else float(lo)
        hi = default[1] if hi is None else float(hi)
        spec.validate(lo)
        spec.validate(hi)
        if kind == "delay" and param != "d" and self["d"] == 0:
            from ..solvers.threshold import ThresholdResult

            res = ThresholdResult(param, kind, None, "no_transition", (lo, hi))
            res.details["reason"] = "d = 0: no Hopf instability at any balance"
            return res
        test = self.delay_test(param) if kind == "delay" else self.chaos_test(param)
        return locate_crossing(test, lo, hi, param=param, kind=kind, points=25)

    def delay_test(self, param: str):
        def test(v):
            m = self.replace(**{param: float(v)})
            y, sol, st, _ = m.static()
            if st != "ok":
                return np.nan
            return m["b"] * m.kappa(y, sol.delta0) - hopf_gain(m["d"])

        return test

    def chaos_test(self, param: str):
        def test(v):
            m = self.replace(**{param: float(v), "sigma": 0.0})
            _, sol, st, _ = m.static(static_branch=True)
            return sol.criterion - 1.0 if st == "ok" else np.nan

        return test

    # -- simulation -----------------------------------------------------------
    def simulation_bytes(self, size: int, trials: int, **engine: Any) -> int:
        """State, noise chunk and (for g > 0) the disorder matrices."""
        if self["engine"] == "spiking":
            try:
                dt = float(engine.get("dt") or 1e-3)
            except (TypeError, ValueError):
                dt = 1e-3
            ring = (int(self["d"] / dt) + 1) if dt > 0 else 1  # uint8 spike history
            return int((8 * 8 + ring) * size * trials)
        per_trial = 8 * size * 8
        dense = 8 * size * size * (trials if self["g"] > 0 else 0)
        return int(per_trial * trials + dense)
