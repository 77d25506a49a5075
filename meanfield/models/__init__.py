"""Bundled models; importing this package registers them."""

from .tensor import Tensor

__all__ = ["Tensor"]
