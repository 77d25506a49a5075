"""Numba kernels shared by the generated solver drivers, compiled once per machine.

Generated drivers (``exec``-ed source, one per declared system) cannot use
numba's on-disk cache; the pieces that do not depend on the system live here
with ``cache=True``, so their compilation (LAPACK's ``geev`` wrapper costs
seconds of type inference) is paid once, not in every process.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["spectral_radius"]


@numba.njit(cache=True)
def spectral_radius(M: np.ndarray) -> float:  # pragma: no cover - compiled
    """Largest ``|eigenvalue|`` of the real square matrix ``M`` (complex eigenvalues included)."""
    ev = np.linalg.eigvals(M.astype(np.complex128))
    r = 0.0
    for k in range(ev.size):
        a = abs(ev[k])
        if a > r:
            r = a
    return r
