"""Parameter declarations with ranges, and the one error they raise.

Every model declares its parameters as :class:`Param` fields; validation and
parsing (from Python values or CLI strings) live here once. Errors read like
scikit-learn's: ``delta must be a float in (0, inf); got -1.0``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["ParamError", "Param", "validate"]


class ParamError(ValueError):
    """A parameter outside its allowed values.

    Parameters
    ----------
    name : str
        The parameter.
    allowed : str
        Human-readable allowed values ("a float in (0, inf)").
    got : object
        The value given.
    """

    def __init__(self, name: str, allowed: str, got: Any):
        self.name, self.allowed, self.got = name, allowed, got
        super().__init__(f"{name} must be {allowed}; got {got!r}")


@dataclass(frozen=True)
class Param:
    """Declaration of one model parameter.

    Attributes
    ----------
    name : str
    kind : {'float', 'int', 'choice', 'str'}
        Element type.
    default : object
    lo, hi : float, optional
        Bounds (``None`` for unbounded).
    lo_open, hi_open : bool
        Whether a bound is excluded.
    choices : tuple of str, optional
        Allowed values of a ``choice`` parameter.
    per_mode : bool
        Whether a comma-separated list (one value per mode) is accepted.
    doc : str
    """

    name: str
    kind: str
    default: Any
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    choices: tuple[str, ...] = ()
    per_mode: bool = False
    doc: str = ""

    def allowed(self) -> str:
        if self.kind == "choice":
            base = "one of " + ", ".join(self.choices)
        else:
            lo = "-inf" if self.lo is None else _fmt(self.lo)
            hi = "inf" if self.hi is None else _fmt(self.hi)
            lb = "(" if (self.lo is None or self.lo_open) else "["
            rb = ")" if (self.hi is None or self.hi_open) else "]"
            base = f"{'an integer' if self.kind == 'int' else 'a float'} in {lb}{lo}, {hi}{rb}"
        if self.default is None:
            base += " or auto"
        if self.per_mode:
            return base + " (or a comma-separated list, one per mode)"
        return base

    def _check_one(self, v: Any, shown: Any) -> Any:
        if self.kind == "choice":
            v = str(v).strip()
            if v not in self.choices:
                raise ParamError(self.name, self.allowed(), shown)
            return v
        if self.kind == "str":
            return str(v)
        try:
            if isinstance(v, bool):
                raise TypeError
            x = float(v)
        except (TypeError, ValueError):
            raise ParamError(self.name, self.allowed(), shown) from None
        if math.isnan(x):
            raise ParamError(self.name, self.allowed(), shown)
        if math.isinf(x) and (
            (x > 0 and (self.hi is None or self.hi_open or x > self.hi))
            or (x < 0 and (self.lo is None or self.lo_open or x < self.lo))
        ):  # an unbounded end is open: (0, inf) excludes inf
            raise ParamError(self.name, self.allowed(), shown)
        if self.kind == "int":
            if x != int(x):
                raise ParamError(self.name, self.allowed(), shown)
            x = int(x)
        if self.lo is not None and (x < self.lo or (self.lo_open and x == self.lo)):
            raise ParamError(self.name, self.allowed(), shown)
        if self.hi is not None and (x > self.hi or (self.hi_open and x == self.hi)):
            raise ParamError(self.name, self.allowed(), shown)
        return x

    def validate(self, value: Any) -> Any:
        """Check (and normalise) a value; raise :class:`ParamError` naming this parameter.

        ``None`` (or the string ``auto``) is accepted when the default is ``None``:
        the model then chooses.
        """
        if self.default is None and (value is None or (isinstance(value, str) and value == "auto")):
            return None
        if isinstance(value, str) and self.kind != "str":
            parts = [p for p in value.split(",")]
            if len(parts) > 1 or self.per_mode and "," in value:
                if not self.per_mode:
                    raise ParamError(self.name, self.allowed(), value)
                return tuple(self._check_one(p, value) for p in parts)
            return self._check_one(parts[0], value)
        if isinstance(value, (list, tuple)):
            if not self.per_mode:
                raise ParamError(self.name, self.allowed(), value)
            if len(value) == 0:
                raise ParamError(self.name, self.allowed(), value)
            return tuple(self._check_one(v, value) for v in value)
        return self._check_one(value, value)


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def validate(specs: dict[str, Param], values: dict[str, Any]) -> dict[str, Any]:
    """Validate ``values`` against ``specs``; unknown names are errors too."""
    out = {}
    for k in values:
        if k not in specs:
            raise ParamError(k, "a known parameter (" + ", ".join(specs) + ")", values[k])
    for name, spec in specs.items():
        out[name] = spec.validate(values.get(name, spec.default))
    return out
