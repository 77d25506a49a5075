"""Simulators that check the theory: ``simulate(model, size=, trials=, seed=, backend=)``.

Each model is routed to the engine for its kind of dynamics; engines run many
seeded trials at once on the CPU (numba) or the GPU (numba-CUDA) from one
scalar kernel body.
"""

from __future__ import annotations

from typing import Any

__all__ = ["simulate"]


def simulate(
    model, *, size: int = 256, trials: int = 8, seed: int = 0, backend: str = "cpu", **kw: Any
) -> dict[str, Any]:
    """Simulate ``model`` (a validated :class:`meanfield.Model`) and summarise over trials.

    Returns a JSON-ready dict; for the tensor model: ``overlap``, ``overlap_sem``,
    ``mse``, ``mse_sem`` (lists per mode), ``iterations``, ``converged``, ``status``; at
    rank ``r > 1`` (:mod:`sims.engines.amp_rank`) ``overlap`` and ``overlap_sem``
    hold each mode's matched ``r x r`` overlap matrix.
    """
    from meanfield._params import ParamError

    if int(size) != size or size < 2:
        raise ParamError("size", "an integer in [2, inf)", size)
    if int(trials) != trials or trials < 1:
        raise ParamError("trials", "an integer in [1, inf)", trials)
    if backend not in ("cpu", "cuda"):
        raise ParamError("backend", "one of cpu, cuda", backend)
    if model.name == "tensor" and model["rank"] > 1:
        from .engines.amp_rank import simulate_tensor_rank

        return simulate_tensor_rank(
            model, size=int(size), trials=int(trials), seed=int(seed), backend=backend, **kw
        )
    if model.name == "tensor":
        from .engines.amp import simulate_tensor

        return simulate_tensor(
            model, size=int(size), trials=int(trials), seed=int(seed), backend=backend, **kw
        )
    raise ParamError("model", "a model with a simulator (tensor)", model.name)
