"""Bundled models, one module per theory; importing this package registers them.

Every module of this package is imported (so a fifth model is one new file
here); each defines a :class:`meanfield.Model` subclass with a ``name``.
"""

import importlib as _importlib
import pkgutil as _pkgutil
import sys as _sys
import types as _types

from .tensor import Tensor

for _m in _pkgutil.iter_modules(__path__):
    if not _m.name.startswith("_"):
        _importlib.import_module(f"{__name__}.{_m.name}")

__all__ = ["Tensor"]


class _CallablePackage(_types.ModuleType):
    """Importing this package binds ``meanfield.models`` to it, over the API function
    :func:`meanfield.models` (the registered names); calling the package does the same."""

    def __call__(self) -> list[str]:
        from ..api import models

        return models()


_sys.modules[__name__].__class__ = _CallablePackage
