"""meanfield: theory-first statistical physics of neural computation and learning.

Public API (re-exports only): models are declarations
(:class:`meanfield._model.Model`), solved by the shared machinery in
:mod:`meanfield.solvers`, swept by :func:`meanfield.sweep.sweep`, and checked
against the simulators in :mod:`sims`.
"""

import os as _os

# numba's OpenMP threads spin while waiting; when other busy processes share
# the cores (sweep workers, a CI machine) that makes parallel kernels 20-100x
# slower. Wait passively unless the user chose otherwise (must be set before
# the first parallel region starts the OpenMP runtime).
_os.environ.setdefault("OMP_WAIT_POLICY", "passive")

from ._model import Model, SolveResult, System, get_model, registry
from ._params import Param, ParamError
from .api import describe, models, simulate, solve, threshold
from .priors import Prior, custom_prior, from_density, make_prior
from .sweep import sweep

__version__ = "0.1.0"


__all__ = [
    "Model",
    "System",
    "SolveResult",
    "Param",
    "ParamError",
    "Prior",
    "make_prior",
    "custom_prior",
    "from_density",
    "get_model",
    "registry",
    "models",
    "describe",
    "solve",
    "threshold",
    "simulate",
    "sweep",
]
