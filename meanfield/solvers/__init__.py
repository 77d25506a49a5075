"""Generic solvers for declared systems: fixed points, stability, thresholds."""

from .fixed_point import iterate, solve_model
from .stability import jacobian, spectral_radius
from .threshold import ThresholdResult, find_threshold

__all__ = [
    "iterate",
    "solve_model",
    "jacobian",
    "spectral_radius",
    "find_threshold",
    "ThresholdResult",
]
