"""Up-front checks that an output path can be written (before anything is computed)."""

from __future__ import annotations

import os
from pathlib import Path

from ._params import ParamError

__all__ = ["writable_dir", "writable_file"]


def writable_dir(path: str | os.PathLike, name: str) -> Path:
    """Create ``path`` (a directory, parents included) or fail naming ``name``."""
    p = Path(os.fspath(path)).expanduser()
    try:
        p.mkdir(parents=True, exist_ok=True)
        probe = p / f".meanfield-write-probe-{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError as e:
        allowed = "a directory that can be created and written"
        raise ParamError(name, allowed, os.fspath(path)) from e
    return p


def writable_file(path: str | os.PathLike, name: str) -> Path:
    """Check that file ``path`` can be created or overwritten (nothing is left behind)."""
    p = Path(os.fspath(path)).expanduser()
    if p.is_dir():
        raise ParamError(name, "a file path (this is a directory)", os.fspath(path))
    existed = p.exists()
    try:
        with open(p, "ab"):
            pass
    except OSError as e:
        raise ParamError(name, "a file path that can be written", os.fspath(path)) from e
    if not existed:
        p.unlink(missing_ok=True)
    return p
