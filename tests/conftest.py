"""Hypothesis profiles and shared fixtures.

Profiles: ``ci`` (default; few examples, derandomised, no deadline) and
``nightly`` (``HYPOTHESIS_PROFILE=nightly``; many examples).
"""

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=6,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("nightly", max_examples=60, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
