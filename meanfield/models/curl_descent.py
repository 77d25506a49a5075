"""Curl descent: student--teacher learning with rule-flipped neurons (Ninou, Kadmon & Cayco-Gajic).

"Curl descent: non-gradient learning dynamics with sign-diverse plasticity", NeurIPS 2025
(arXiv:2510.02765). Conventions and derivations: ``shared/papers/curl_descent.md`` (the
digest; the paper's body could not be read, its sections are quoted as "digest §").

Student and teacher ``N -> K -> 1``: ``a1 = W1 x``, ``h = phi(a1)``, ``yhat = phi(w2 . h)``,
inputs ``x ~ N(0, sigma^2 I)`` (``sigma^2 = 1/2`` as published), loss ``L = 1/2 mean (yhat -
y)^2``. Curl descent (digest §1.2) replaces gradient descent by
``theta_dot = -eta P grad L~`` with ``P = blockdiag(I_K (x) D1, D2)``: ``D1`` flips the
updates of the first ``n1 = floor(alpha_h N)`` *input* neurons (columns of ``W1``), ``D2``
those of the first ``n2 = floor(alpha_r K)`` *hidden* neurons (entries of ``w2``). As in the
published code there is no ``phi'(a2)`` at the output (``L~`` is the matching loss; for a
linear network ``L~ = L``). Compression ratio ``c = N/K`` (digest pitfall 1).

Theory (linear network, derived here with sympy; digest §2):

* error dynamics ``e_dot = -eta A Sigma e`` with ``A = |w2|^2 D1 + W1^T D2 W1``, exactly
  (:func:`error_dynamics_sympy`);
* on the solution manifold the Jacobian's nonzero eigenvalues are those of
  ``-eta A Sigma`` (real), so the manifold is stable iff ``A > 0`` (:func:`curl_flow_sympy`);
* per-unit conserved quantities ``C_k = w1_k^T D1 w1_k - (D2)_kk w2_k^2`` of the
  unnormalised flow (:func:`conserved_sympy`);
* the origin: pairs ``+-eta sqrt(s_D (D2)_kk)``, a saddle (GD) or a center;
* at a random balanced point (``W1`` i.i.d. variance ``s^2/N``, ``|w2|^2 = s^2``) the large-N
  spectrum of ``A/s^2 = D1 + W~^T D2 W~`` is a free additive convolution
  (:mod:`meanfield.freeprob`); its lower edge gives the boundaries ``alpha_h*(c)`` and
  ``alpha_r*(c)`` (the vanishing-discriminant polynomials ``F1``, ``F2`` are derived, not
  pasted); for ``c > 2/3`` one flipped input already destabilises the manifold through the
  BBP outlier at ``2/(3c) - 1``.

The simulators (published discrete mode with Frobenius renormalisation, and the clean
continuous-time flow) are in :mod:`meanfield.sims.engines.learning.student_teacher`.
"""

from __future__ import annotations

import math
from functools import cache
from typing import Any, ClassVar

import numpy as np
import sympy as sp

from .._model import Model, SolveResult, System
from .._params import Param, ParamError

__all__ = [
    "CurlDescent",
    "PHIS",
    "phi_expr",
    "free_sum",
    "lambda_min_theory",
    "boundary_polynomials",
    "outlier_theory",
    "boundary_grid",
    "sign_vectors",
    "balanced_point",
    "a_matrix",
    "curl_flow_sympy",
    "error_dynamics_sympy",
    "conserved_sympy",
    "curl_field_sympy",
    "matching_potential",
    "origin_eigenvalues",
    "saxe_solution",
    "saxe_expr",
]

PHIS = ("lin", "tanh", "relu")
#: Largest input dimension ``solve`` samples (an ``N x N`` symmetric eigenproblem).
SOLVE_MAX_N = 4000
_X = sp.Symbol("x", real=True)
ALPHA, BETA, C = sp.symbols("alpha beta c", positive=True)


def phi_expr(name: str) -> sp.Expr:
    """The nonlinearity as a sympy expression in ``x``."""
    if name == "lin":
        return _X
    if name == "tanh":
        return sp.tanh(_X)
    if name == "relu":
        return sp.Piecewise((_X, _X > 0), (0, True))
    raise ParamError("phi", "one of " + ", ".join(PHIS), name)


# -- random-matrix theory (digest §2.3) -------------------------------------------------


@cache
def free_sum(hidden_flips: bool, readout_flips: bool):
    """The free sum whose spectrum is the large-N law of ``A/s^2 = D1 + W~^T D2 W~``.

    Parameters (in order): ``alpha`` (fraction of flipped inputs, only with
    ``hidden_flips``), ``beta`` (fraction of flipped hidden units, only with
    ``readout_flips``), ``c``. ``alpha = 0`` exactly is *not* the limit ``alpha -> 0+``
    (an outlier band; digest pitfall 7), so the flip-free layers use ``I`` (a shift).
    """
    from .. import freeprob as fp

    d1 = fp.atoms([1 - ALPHA, ALPHA], [1, -1], "D1") if hidden_flips else fp.shift(1, "I")
    if readout_flips:
        w = fp.compound_free_poisson(1 / C, [1, -1], [1 - BETA, BETA], "W^T D2 W")
    else:
        w = fp.free_poisson(1 / C, label="W^T W")
    params = [p for p, on in ((ALPHA, hidden_flips), (BETA, readout_flips)) if on] + [C]
    return fp.FreeSum([d1, w], params)


def _frac_args(alpha_h: float, alpha_r: float, c: float):
    h, r = alpha_h > 0, alpha_r > 0
    vals = [v for v, on in ((alpha_h, h), (alpha_r, r)) if on] + [c]
    return free_sum(h, r), vals


def lambda_min_theory(c: float, alpha_h: float = 0.0, alpha_r: float = 0.0) -> float:
    """Large-N lower edge of the spectrum of ``A/s^2`` at a random balanced point.

    Digest §2.3: ``z(omega) = R(omega) + 1/omega`` followed from ``omega = 0^-`` to its first
    local maximum. ``alpha = 0`` and ``alpha -> 0+`` differ (for ``c > 1/9`` a vanishing
    fraction of flipped inputs leaves a band at the BBP outlier ``2/(3c) - 1``).
    """
    fs, vals = _frac_args(float(alpha_h), float(alpha_r), float(c))
    with np.errstate(all="ignore"):
        return fs.lower_edge(vals)


def outlier_theory(c: float) -> float:
    """The BBP outlier of one flipped input, ``G_{I + W~^T W~}(z) = -1/2`` (digest §2.3).

    Solved on the explicit Blue function (``2/(3c) - 1``, existing for ``c > 1/9``); NaN
    where the outlier is absorbed in the bulk.
    """
    return free_sum(False, False).outlier(-2.0, [float(c)])


@cache
def boundary_polynomials() -> dict[str, sp.Expr]:
    """``F1(alpha, c)`` (hidden flips) and ``F2(alpha, c)`` (readout flips), derived.

    The lower edge of the free sum crosses 0 where the spectral curve's discriminant
    vanishes at ``z = 0``: :meth:`meanfield.freeprob.FreeSum.boundary_polynomial` of the
    resultant-eliminated curve (digest §2.3 prints them; tests compare up to a constant).
    """
    f1 = free_sum(True, False).boundary_polynomial(0)
    f2 = free_sum(False, True).boundary_polynomial(0).subs(BETA, ALPHA)
    return {"F1": sp.expand(f1), "F2": sp.expand(f2)}


def boundary_grid(c: np.ndarray, alpha: np.ndarray, layer: str = "hidden") -> np.ndarray:
    """``lambda_min`` of ``A/s^2`` on a grid (broadcast ``c`` and ``alpha``).

    The smallest real root of the edge polynomial, batched over the grid (one LAPACK call;
    :meth:`meanfield.freeprob.FreeSum.edges_grid`). ``alpha = 0`` uses the flip-free law.
    Atoms are not branch points, so they are added: for ``c > 1`` the rank-``K`` part leaves
    an eigenvalue ``d`` of ``D1`` of multiplicity ``m`` with multiplicity ``m - K`` (atoms at
    ``+1`` and, when ``alpha_h > 1/c``, at ``-1``: no stable balanced point, digest §2.2).
    Stable where the value is positive.
    """
    c, alpha = np.broadcast_arrays(np.asarray(c, float), np.asarray(alpha, float))
    fs = free_sum(layer == "hidden", layer == "readout")
    out = fs.edges_grid(alpha, c)
    zero = alpha == 0
    if zero.any():
        out = np.where(zero, free_sum(False, False).edges_grid(c), out)
    ah = alpha if layer == "hidden" else np.zeros_like(alpha)
    out = np.where((1 - ah) > 1 / c, np.minimum(out, 1.0), out)
    out = np.where(ah > 1 / c, np.minimum(out, -1.0), out)
    return out


# -- finite networks ----------------------------------------------------------------


def n_flips(alpha: float, n: int) -> int:
    """``floor(alpha n)`` as in the published code's ``int(alpha * n)`` (round-off guarded)."""
    return int(math.floor(alpha * n + 1e-9))


def sign_vectors(n: int, k: int, alpha_h: float, alpha_r: float) -> tuple[np.ndarray, np.ndarray]:
    """Diagonals of ``D1`` (``n``) and ``D2`` (``k``): the first ``floor(alpha n)`` are -1."""
    d1 = np.ones(n)
    d1[: n_flips(alpha_h, n)] = -1.0
    d2 = np.ones(k)
    d2[: n_flips(alpha_r, k)] = -1.0
    return d1, d2


def balanced_point(n: int, k: int, s: float, rng: np.random.Generator):
    """A random balanced point: ``W1`` i.i.d. ``N(0, s^2/N)``, ``w2`` uniform with ``|w2| = s``.

    This is the ensemble of the large-N theory (digest §2.3) and of ``solve``. It is *not*
    the published random initialisation (``w2`` i.i.d., so ``|w2|^2 ~ s^2 chi^2_K / K``),
    which the digest's finite-size Monte Carlo (§3: 0.44, 0.60, 0.82 at N = 100, K = 10,
    n2 = 1, 2, 5) actually sampled: at K = 10 the two differ (here 0.36, 0.73, 1.00), see
    ``tests/curl_descent/test_cd_sim.py::test_digest_finite_size_monte_carlo``.
    """
    w1 = rng.standard_normal((k, n)) * (s / math.sqrt(n))
    w2 = rng.standard_normal(k)
    w2 *= s / np.linalg.norm(w2)
    return w1, w2


def a_matrix(w1: np.ndarray, w2: np.ndarray, d1: np.ndarray, d2: np.ndarray) -> np.ndarray:
    """``A = |w2|^2 D1 + W1^T D2 W1`` (digest §2.1); works on stacks ``(..., K, N)``."""
    w1 = np.asarray(w1)
    w2 = np.asarray(w2)
    sq = np.sum(w2 * w2, axis=-1)[..., None, None]
    eye = np.eye(w1.shape[-1])
    d1 = np.asarray(d1)[..., None, :] * eye
    return sq * d1 + np.swapaxes(w1, -1, -2) @ (np.asarray(d2)[..., :, None] * w1)


# -- sympy derivations (digest §2.1, 2.2, 2.4, 2.5) ------------------------------------


def _net_symbols(n: int, k: int):
    w1 = sp.Matrix(k, n, lambda i, j: sp.Symbol(f"W1_{i}_{j}", real=True))
    w2 = sp.Matrix(1, k, lambda i, j: sp.Symbol(f"w2_{j}", real=True))
    return w1, w2


def curl_flow_sympy(n: int, k: int, d1, d2, sigma=None, vstar=None, eta=1):
    """The linear curl-descent vector field, derived by sympy from the loss.

    ``L = 1/2 e^T Sigma e``, ``e = W1^T w2 - v*`` (the population loss of a linear
    student); ``theta_dot = -eta P grad L``, ``theta = (vec W1 row-major, w2)``.

    Returns ``(theta, rhs, loss)`` with ``theta`` a list of symbols and ``rhs`` a sympy
    Matrix; the Jacobian is ``rhs.jacobian(theta)``.
    """
    w1, w2 = _net_symbols(n, k)
    if sigma is None:
        sigma = sp.eye(n)
    sigma = sp.Matrix(sigma)
    if vstar is None:
        vstar = sp.Matrix(n, 1, lambda i, j: sp.Symbol(f"v_{i}", real=True))
    vstar = sp.Matrix(vstar)
    e = w1.T * w2.T - vstar
    loss = (e.T * sigma * e)[0, 0] / 2
    theta = list(w1) + list(w2)
    grad = sp.Matrix([sp.diff(loss, t) for t in theta])
    p = [d1[j] for _ in range(k) for j in range(n)] + [d2[i] for i in range(k)]
    rhs = sp.Matrix([-eta * p[i] * grad[i] for i in range(len(theta))])
    return theta, rhs, loss


def matching_potential(phi: str) -> sp.Expr:
    """``Phi(x)`` with ``Phi' = phi``: the published update follows the matching loss
    ``mean[Phi(a2) - y a2]`` (no ``phi'(a2)``; digest §1.2), ``= L + const`` for ``lin``."""
    if phi == "relu":
        return sp.Piecewise((_X**2 / 2, _X > 0), (0, True))
    if phi == "tanh":
        return sp.log(sp.cosh(_X))
    return _X**2 / 2


def curl_field_sympy(n: int, k: int, phi: str, x: np.ndarray, y: np.ndarray, d1, d2):
    """The curl vector field of the published update on a data set, derived by sympy.

    ``theta_dot = -P grad_theta L~``, ``L~ = (1/P) sum_mu [Phi(a2_mu) - y_mu a2_mu]``,
    ``a2 = w2 . phi(W1 x)``, ``theta = (vec W1 row-major, w2)``: one full-batch,
    unnormalised step of the discrete mode is ``theta + lr theta_dot``. Returns a numpy
    function ``f(theta) -> theta_dot`` (sympy ``diff``, then ``lambdify``).
    """
    w1, w2 = _net_symbols(n, k)
    big_phi = matching_potential(phi)
    f = phi_expr(phi)
    loss = 0
    for mu in range(x.shape[0]):
        a1 = w1 * sp.Matrix(x[mu])
        h = [f.subs(_X, a1[i]) for i in range(k)]
        a2 = sum(w2[0, i] * h[i] for i in range(k))
        loss += big_phi.subs(_X, a2) - float(y[mu]) * a2
    loss = loss / x.shape[0]
    theta = list(w1) + list(w2)
    p = [float(d1[j]) for _ in range(k) for j in range(n)] + [float(d2[i]) for i in range(k)]
    field = [-p[i] * sp.diff(loss, t) for i, t in enumerate(theta)]
    fn = sp.lambdify(theta, field, "math", cse=True)
    return lambda th: np.asarray(fn(*np.asarray(th, float)), dtype=float)


def error_dynamics_sympy(n: int, k: int, d1, d2) -> sp.Matrix:
    """``e_dot + eta A Sigma e`` computed symbolically by the chain rule (should vanish).

    ``e = W1^T w2 - v*``; ``e_dot = sum_theta (de/dtheta) theta_dot`` with
    ``theta_dot`` from :func:`curl_flow_sympy` and a symbolic symmetric ``Sigma``.
    """
    sig = sp.Matrix(n, n, lambda i, j: sp.Symbol(f"S_{min(i, j)}_{max(i, j)}", real=True))
    eta = sp.Symbol("eta", positive=True)
    theta, rhs, _ = curl_flow_sympy(n, k, d1, d2, sigma=sig, eta=eta)
    w1, w2 = _net_symbols(n, k)
    vstar = sp.Matrix(n, 1, lambda i, j: sp.Symbol(f"v_{i}", real=True))
    e = w1.T * w2.T - vstar
    edot = e.jacobian(sp.Matrix(theta)) * rhs
    a = (w2 * w2.T)[0, 0] * sp.diag(*d1) + w1.T * sp.diag(*d2) * w1
    return sp.expand(edot + eta * a * sig * e)


def conserved_sympy(n: int, k: int, d1, d2) -> list[sp.Expr]:
    """``dC_k/dt`` along the linear curl flow, for ``C_k = w1_k^T D1 w1_k - (D2)_kk w2_k^2``.

    Derived by sympy (gradient of ``C_k`` dotted with the vector field); zero identically.
    """
    theta, rhs, _ = curl_flow_sympy(n, k, d1, d2)
    w1, w2 = _net_symbols(n, k)
    out = []
    for u in range(k):
        ck = sum(d1[j] * w1[u, j] ** 2 for j in range(n)) - d2[u] * w2[0, u] ** 2
        out.append(sp.expand(sum(sp.diff(ck, t) * r for t, r in zip(theta, rhs, strict=True))))
    return out


def origin_eigenvalues(s_d: float, d2: np.ndarray, eta: float = 1.0) -> np.ndarray:
    """Nonzero eigenvalues at ``theta = 0`` (digest §2.5): ``+-eta sqrt(s_D (D2)_kk)`` per unit.

    ``s_D = a^T D1 a`` with ``a = Sigma v*``; complex (a center) where ``s_D (D2)_kk < 0``.
    """
    r = np.sqrt(np.asarray(s_d * np.asarray(d2), dtype=complex))
    return eta * np.concatenate([r, -r])


@cache
def _saxe_system() -> System:
    a, s, tau = sp.symbols("a s_star tau", real=True)
    return System("flow", (a,), (s, tau), (2 * a * (s - a) / tau,))


def saxe_expr() -> sp.Expr:
    """Saxe et al. (2014) logistic mode strength as a sympy expression in ``t``:
    ``a = s* a0 e^{2 s* t/tau} / (s* + a0 (e^{2 s* t/tau} - 1))`` (digest §5.1); that it solves
    ``tau a' = 2 a (s* - a)``, ``a(0) = a0`` is checked symbolically in the tests."""
    t, a0, s, tau = sp.symbols("t a0 s_star tau", positive=True)
    e = sp.exp(2 * s * t / tau)
    return s * a0 * e / (s + a0 * (e - 1))


def saxe_solution(t, a0: float, s_star: float, tau: float) -> np.ndarray:
    """``a(t)`` of :func:`saxe_expr` evaluated with numpy."""
    return _saxe_closed()(np.asarray(t, float), a0, s_star, tau)


@cache
def _saxe_closed():
    t, a0, s, tau = sp.symbols("t a0 s_star tau", positive=True)
    return sp.lambdify((t, a0, s, tau), saxe_expr(), "numpy")


# -- the model --------------------------------------------------------------------------


class CurlDescent(Model):
    """Student--teacher networks trained by curl descent (rule-flipped neurons)."""

    name = "curl_descent"
    description = (
        "N -> K -> 1 student-teacher networks whose input or hidden neurons flip their "
        "plasticity rule: stability of the solution manifold (free probability), chaos "
        "(q, Lyapunov) and saddle escape; published discrete mode and continuous flow"
    )
    reference = "Ninou, Kadmon & Cayco-Gajic, NeurIPS 2025; arXiv:2510.02765"
    params: ClassVar[dict[str, Param]] = {
        "c": Param("c", "float", 0.5, lo=0, lo_open=True, doc="compression ratio N/K"),
        "alpha_h": Param("alpha_h", "float", 0.0, lo=0, hi=1,
                         doc="fraction of rule-flipped input neurons (flips on W1; n1/N)"),
        "alpha_r": Param("alpha_r", "float", 0.0, lo=0, hi=1,
                         doc="fraction of rule-flipped hidden neurons (flips on w2; n2/K)"),
        "hidden": Param("hidden", "int", 100, lo=1, doc="hidden units K (N = round(c K))"),
        "seed": Param("seed", "int", 0, lo=0, doc="seed of the sampled point (solve)"),
        "s": Param("s", "float", 1.0, lo=0, lo_open=True, doc="student weight scale"),
        "phi": Param("phi", "choice", "lin", choices=PHIS, doc="nonlinearity (hidden and output)"),
        "mode": Param("mode", "choice", "discrete", choices=("discrete", "flow"),
                      doc="discrete: the published simulation (minibatch steps, Frobenius "
                          "renormalisation, no phi' at the output); flow: the clean "
                          "continuous-time full-batch flow, unnormalised (adaptive ODE)"),
        "samples": Param("samples", "int", 250, lo=1, doc="training-set size P"),
        "batch": Param("batch", "int", 10, lo=1, doc="minibatch size (discrete mode)"),
        "lr": Param("lr", "float", 0.1, lo=0, lo_open=True, doc="learning rate (per epoch)"),
        "epochs": Param("epochs", "int", 500, lo=1, doc="training epochs (flow: t = lr epochs)"),
        "init": Param("init", "choice", "random", choices=("random", "teacher"),
                      doc="student start: random (scale s) or at the teacher (chaos runs)"),
        "teacher": Param("teacher", "choice", "uniform", choices=("uniform", "normal"),
                         doc="weight law of teacher and student (uniform: U(+-1/sqrt(fan-in)))"),
        "teacher_scale": Param("teacher_scale", "float", 1.0, lo=0, lo_open=True,
                               doc="teacher weight scale"),
    }
    simulator = "meanfield.sims.engines.learning.student_teacher:simulate_curl_descent"
    contract: ClassVar[dict[str, tuple[str, ...]]] = {
        "solve": ("lambda_min", "stable", "lambda_min_theory", "status"),
        "simulate": ("final_error", "final_error_sem", "q", "q_sem", "lyapunov",
                     "lyapunov_sem", "status"),
        "threshold": ("param", "kind", "value", "status"),
    }
    observables_doc: ClassVar[dict[str, str]] = {
        "lambda_min": "smallest eigenvalue of A/s^2 at a sampled balanced point",
        "stable": "lambda_min > 0: the solution manifold is stable there (A > 0)",
        "lambda_min_theory": "large-N lower spectral edge of A/s^2 (free probability)",
        "stable_theory": "lambda_min_theory > 0",
        "outlier_theory": "BBP outlier 2/(3c) - 1 of one flipped input (null if absorbed)",
        "final_error": "test loss 1/2 mean (yhat - y)^2 at the end of training",
        "q": "chaos order parameter <var_t theta_i>_i / var_i <theta_i>_t over the last epochs",
        "lyapunov": "maximal Lyapunov exponent of the simulated map, per epoch (neutral "
                    "directions projected out)",
    }
    threshold_kinds: ClassVar[tuple[str, ...]] = ("stability",)
    threshold_params: ClassVar[dict[str, str]] = {"stability": "alpha_h"}
    simulate_options: ClassVar[dict[str, str]] = {
        "tail": "epochs at the end over which q is measured (default min(1000, epochs/2))",
        "lyapunov": "measure the maximal Lyapunov exponent (default true; discrete mode)",
        "lyap_epochs": "epochs of the Lyapunov measurement after a warm-up (default 200)",
        "record": "number of log-spaced epochs at which errors are recorded (default 50)",
        "threshold": "log10 error threshold for epochs_to_threshold (default -3)",
    }
    size_param: ClassVar[str | None] = "hidden"

    def check(self, v: dict[str, Any]) -> None:
        if v["batch"] > v["samples"]:
            raise ParamError("batch", f"at most samples = {v['samples']}", v["batch"])

    # -- sizes ------------------------------------------------------------------------
    @property
    def n_in(self) -> int:
        """``N = round(c K)`` (a network needs ``N >= 1``: :meth:`require_network`)."""
        return int(round(self["c"] * self["hidden"]))

    def require_network(self) -> None:
        """Refuse ``c K < 1/2`` (no input neuron) for the commands that build a network."""
        if self.n_in < 1:
            raise ParamError(
                "c", f"at least 1/(2 hidden) = {0.5 / self['hidden']:.3g} for a network "
                "(N = round(c K) >= 1)", self["c"])

    @property
    def signs(self) -> tuple[np.ndarray, np.ndarray]:
        return sign_vectors(self.n_in, self["hidden"], self["alpha_h"], self["alpha_r"])

    # -- declared system: the flip-free aligned mode (Saxe et al. 2014) -------------
    @property
    def order_parameters(self) -> tuple[str, ...]:
        return ("a",)

    def system(self) -> System:
        """``tau a_dot = 2 a (s* - a)``: the balanced, aligned linear mode without flips
        (digest §5.1), ``tau = 1/(eta sigma^2)``."""
        return _saxe_system()

    def theta(self) -> np.ndarray:
        return np.array([1.0, 1.0 / (self["lr"] * 0.5)])

    def initial_state(self, init: str) -> np.ndarray:
        return np.array([1e-3])

    def observables(self, state: np.ndarray) -> dict[str, Any]:
        return {"a": float(state[0])}

    # -- theory -------------------------------------------------------------------------
    def solve(self, init: str | None = None) -> SolveResult:
        """Stability of the solution manifold at a sampled balanced point (digest §2.2, 2.3).

        ``W1`` i.i.d. ``N(0, s^2/N)``, ``|w2|^2 = s^2`` (seeded by ``seed``); ``lambda_min``
        is the smallest eigenvalue of ``A/s^2`` and ``lambda_min_theory`` the large-N edge
        at the realised fractions ``n1/N``, ``n2/K``.
        """
        self.require_network()
        n, k = self.n_in, self["hidden"]
        if n > SOLVE_MAX_N or k * n > 2e7:
            raise ParamError("hidden", f"small enough that N = round(c K) <= {SOLVE_MAX_N} and "
                             "K N <= 2e7 for solve (one N x N "
                             "eigenvalue problem)", self["hidden"])
        d1, d2 = self.signs
        rng = np.random.default_rng(np.random.SeedSequence(self["seed"]))
        # A/s^2 is the A of the unit-scale point (W1/s, w2/s): sample that (no overflow)
        w1, w2 = balanced_point(n, k, 1.0, rng)
        lam = float(np.linalg.eigvalsh(a_matrix(w1, w2, d1, d2))[0])
        ah, ar = float(np.mean(d1 < 0)), float(np.mean(d2 < 0))
        lt = lambda_min_theory(self["c"], ah, ar)
        out = outlier_theory(self["c"]) if ah > 0 else float("nan")
        values = {
            "lambda_min": lam,
            "stable": bool(lam > 0),
            "lambda_min_theory": lt,
            "stable_theory": bool(lt > 0) if np.isfinite(lt) else None,
            "outlier_theory": None if not np.isfinite(out) else out,
            "n_in": n,
            "n_flipped_in": int(np.sum(d1 < 0)),
            "n_flipped_hidden": int(np.sum(d2 < 0)),
        }
        status = "ok" if np.isfinite(lt) and np.isfinite(lam) else "not_converged"
        return SolveResult(np.array([lam]), 1, status, values)

    def threshold(self, param: str, kind: str, lo: float | None = None, hi: float | None = None):
        """The large-N stability boundary in ``param`` (``alpha_h``, ``alpha_r`` or ``c``).

        Test function ``lambda_min_theory`` (the lower edge of ``A/s^2``), located by
        :func:`meanfield.solvers.bifurcation.locate_crossing` on ``(0, 1]`` for a fraction
        (from ``1e-9``: ``alpha -> 0+``) or ``[1e-3, 1e2]`` for ``c``. A fraction whose edge
        is negative already at ``0+`` has value ``0`` (status ``ok``, ``details['reason']``
        ``outlier``: one flip destabilises, e.g. hidden flips at ``c > 2/3``); one stable on the
        whole range is ``no_transition``.
        """
        from ..solvers.bifurcation import locate_crossing
        from ..solvers.threshold import ThresholdResult

        if kind not in self.threshold_kinds:
            raise ParamError("kind", "one of " + ", ".join(self.threshold_kinds), kind)
        if param not in ("alpha_h", "alpha_r", "c"):
            raise ParamError("param", "one of alpha_h, alpha_r, c", param)
        v = self.values
        dlo, dhi = (1e-9, 1.0) if param != "c" else (1e-3, 1e2)
        lo = dlo if lo is None else float(lo)
        hi = dhi if hi is None else float(hi)
        if not (np.isfinite(lo) and np.isfinite(hi)) or lo >= hi:
            raise ParamError("lo/hi", "finite bounds with lo < hi", (lo, hi))
        self.params[param].validate(lo)
        self.params[param].validate(hi)
        if param == "c":
            lo = max(lo, 1e-12)

        def test(x: float) -> float:
            w = dict(v, **{param: x})
            return lambda_min_theory(w["c"], w["alpha_h"], w["alpha_r"])

        res = locate_crossing(test, lo, hi, param=param, kind=kind, points=49, log=True,
                              xtol=1e-13, rtol=1e-11)
        if res.status == "no_transition" and param != "c" and res.details.get("sign", 0) < 0:
            out = ThresholdResult(param, kind, 0.0, "ok", (0.0, lo))
            out.details["reason"] = "outlier: unstable for any flip (alpha -> 0+)"
            return out
        return res

    def simulation_bytes(self, size: int, trials: int, **engine: Any) -> int:
        n = int(round(self["c"] * size))
        per = 8 * (4 * size * n + 8 * size + n * (self["samples"] + 100))
        lyap = 8 * 4 * size * n if engine.get("lyapunov", True) else 0
        tail = 8 * (size * n + size) * 2
        return int(trials * (per + lyap + tail))
