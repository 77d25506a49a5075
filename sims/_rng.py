"""Seeded random streams: one child stream per trial via ``SeedSequence``.

Random numbers are indexed by trial, never by thread, so results do not depend
on the backend or the launch configuration; the same seed gives the same
numbers.
"""

from __future__ import annotations

import numpy as np

__all__ = ["trial_generators"]


def trial_generators(seed: int, trials: int) -> list[np.random.Generator]:
    """Independent generators, one per trial, children of ``SeedSequence(seed)``."""
    if int(seed) != seed or seed < 0:
        from meanfield._params import ParamError

        raise ParamError("seed", "an integer in [0, inf)", seed)
    children = np.random.SeedSequence(int(seed)).spawn(int(trials))
    return [np.random.default_rng(c) for c in children]
