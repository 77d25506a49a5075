"""Simulators that check the theory: ``simulate(model, size=, trials=, seed=, backend=)``.

Installed as :mod:`meanfield.sims`. Each model names its simulator in its
declaration (:attr:`meanfield.Model.simulator`, ``"module:function"``); the
simulator is one of the engines under :mod:`meanfield.sims.engines`, one per
kind of dynamics (iterated maps today: :mod:`~meanfield.sims.engines.amp`).
Engines run many seeded trials at once on the CPU (numba) or the GPU
(numba-CUDA) from one scalar kernel body.

What every simulation shares is checked here, before any engine runs: the
size, trial count and backend arguments, that a CUDA backend has a GPU, and
that the job fits in the machine's available memory.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from typing import Any

__all__ = ["simulate", "simulator_for", "available_memory", "check_backend", "check_memory"]


def simulator_for(model) -> Callable[..., dict[str, Any]]:
    """The simulator a model declares (imported on first use)."""
    from meanfield._params import ParamError

    target = getattr(type(model), "simulator", None)
    if not target:
        from meanfield._model import registry

        have = sorted(n for n, c in registry().items() if getattr(c, "simulator", None))
        raise ParamError("model", "a model with a simulator (" + ", ".join(have) + ")", model.name)
    module, _, fn = target.partition(":")
    return getattr(importlib.import_module(module), fn)


def available_memory() -> int:
    """Bytes of memory available to a new allocation (``MemAvailable``; a cgroup limit wins)."""
    avail = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    if avail is None:
        try:
            avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):  # pragma: no cover (not POSIX)
            return 1 << 62
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path) as f:
                raw = f.read().strip()
            if raw.isdigit():
                used_path = path.replace("memory.max", "memory.current").replace(
                    "limit_in_bytes", "usage_in_bytes"
                )
                with open(used_path) as f:
                    used = int(f.read().strip())
                avail = min(avail, max(0, int(raw) - used))
        except (OSError, ValueError):
            continue
    return int(avail)


def _fmt_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"  # pragma: no cover


def check_memory(needed: int, *, size: int, trials: int, what: str = "this simulation") -> None:
    """Refuse, before allocating, a job that needs more than the available memory."""
    from meanfield._params import ParamError

    avail = available_memory()
    if needed > avail:
        raise ParamError(
            "size",
            f"small enough for {what} to fit in memory ({_fmt_bytes(needed)} needed for "
            f"size={size} with --trials {trials}, {_fmt_bytes(avail)} available; "
            "reduce size or trials)",
            size,
        )


def check_backend(backend: str) -> None:
    """``cpu`` always; ``cuda`` only with a usable NVIDIA GPU (or the CUDA simulator)."""
    from meanfield._params import ParamError

    if backend not in ("cpu", "cuda"):
        raise ParamError("backend", "one of cpu, cuda", backend)
    if backend == "cpu" or os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        return
    try:
        from numba import cuda

        ok = bool(cuda.is_available())
    except Exception:  # noqa: BLE001 (numba-cuda missing or broken: no GPU here)
        ok = False
    if not ok:
        raise ParamError(
            "backend",
            "cpu here: the CUDA backend needs an NVIDIA GPU and driver, and none was found",
            backend,
        )


def simulate(
    model,
    *,
    size: int | None = None,
    trials: int = 8,
    seed: int = 0,
    backend: str = "cpu",
    **kw: Any,
) -> dict[str, Any]:
    """Simulate ``model`` (a validated :class:`meanfield.Model`) and summarise over trials.

    Parameters
    ----------
    model : meanfield.Model
    size : int, optional
        System size ``N`` (default 256). For a model whose size is one of its
        parameters (:attr:`~meanfield.Model.size_param`, e.g. the network size
        ``n``) it defaults to that parameter and must not contradict it.
    trials : int
        Independent instances, each seeded by its own ``SeedSequence`` child.
    seed : int
    backend : {'cpu', 'cuda'}
    **kw
        Engine options (:attr:`~meanfield.Model.simulate_options`).

    Returns
    -------
    dict
        JSON-ready, with the model's ``simulate`` keys
        (``describe(model)["json"]["simulate"]``).
    """
    from meanfield._params import ParamError

    sp = getattr(type(model), "size_param", None)
    if sp is not None:
        if size is None:
            size = model[sp]
        elif size != model[sp]:
            raise ParamError("size", f"equal to {sp}={model[sp]!r} (or omitted)", size)
    if size is None:
        size = 256
    if isinstance(size, bool) or not isinstance(size, int | float) or int(size) != size or size < 2:
        raise ParamError("size", "an integer in [2, inf)", size)
    if isinstance(trials, bool) or not isinstance(trials, int | float) or int(trials) != trials:
        raise ParamError("trials", "an integer in [1, inf)", trials)
    if trials < 1:
        raise ParamError("trials", "an integer in [1, inf)", trials)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ParamError("seed", "an integer in [0, inf)", seed)
    fn = simulator_for(model)
    check_backend(backend)
    try:
        needed = model.simulation_bytes(int(size), int(trials), **kw)
    except (TypeError, ValueError, OverflowError):  # a bad option: the engine refuses it
        needed = 0
    check_memory(needed, size=int(size), trials=int(trials))
    return fn(model, size=int(size), trials=int(trials), seed=int(seed), backend=backend, **kw)
