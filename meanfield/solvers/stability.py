"""Linear stability of fixed points from the sympy Jacobian."""

from __future__ import annotations

import numpy as np

from .._model import Model, System

__all__ = ["jacobian", "spectral_radius", "stability_margin"]


def jacobian(system: System, state, theta) -> np.ndarray:
    """The Jacobian ``dF/ds`` (derived by sympy) at ``state``, batched."""
    return system.evaluate("jacobian", state, theta)


def spectral_radius(system: System, state, theta) -> np.ndarray:
    """Largest eigenvalue modulus of the Jacobian (a map is stable iff < 1)."""
    return np.max(np.abs(np.linalg.eigvals(jacobian(system, state, theta))), axis=-1)


def stability_margin(system: System, state, theta) -> np.ndarray:
    """Negative when stable: ``rho(J) - 1`` for maps, ``max Re eig(J)`` for flows."""
    ev = np.linalg.eigvals(jacobian(system, state, theta))
    if system.kind == "map":
        return np.max(np.abs(ev), axis=-1) - 1.0
    return np.max(ev.real, axis=-1)


def is_stable(model: Model, state) -> bool:
    s = model.system()
    return bool(stability_margin(s, state, model.theta()) < 0)
