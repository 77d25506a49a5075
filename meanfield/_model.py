"""Model base class, the registry, and the compiled system a model declares.

A model is a declaration: validated :class:`~meanfield._params.Param` fields,
order parameters and sympy equations (:meth:`Model.system`). The machinery that
works on any declared system -- Jacobians, compilation, fixed points,
stability, thresholds, sweeps -- lives in :mod:`meanfield.solvers`,
:mod:`meanfield._codegen` and :mod:`meanfield.sweep`.

Subclasses register themselves by ``name`` through ``__init_subclass__``.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar

import numpy as np
import sympy as sp

from . import _codegen
from ._params import Param, ParamError, validate
from ._symbols import exact_expectations

__all__ = ["Model", "System", "SolveResult", "registry", "get_model"]

_REGISTRY: dict[str, type[Model]] = {}


def registry() -> dict[str, type[Model]]:
    """Registered model classes by name (importing the bundled models first)."""
    import importlib

    importlib.import_module("meanfield.models")  # registers the bundled models

    return dict(_REGISTRY)


def get_model(name: str) -> type[Model]:
    reg = registry()
    if name not in reg:
        raise ParamError("model", "one of " + ", ".join(sorted(reg)), name)
    return reg[name]


@dataclass(frozen=True)
class System:
    """A declared dynamical system on the order parameters.

    Attributes
    ----------
    kind : {'map', 'flow'}
        ``map``: ``s_{t+1} = F(s_t)`` (state evolution); ``flow``:
        ``ds/dt = F(s)`` (learning dynamics, mean-field relaxation).
    state : tuple of sympy.Symbol
        Order parameters, in order.
    params : tuple of sympy.Symbol
        Numeric parameters (their values come from :meth:`Model.theta`).
    rhs : tuple of sympy.Expr
        ``F`` component by component.
    potential : sympy.Expr, optional
        A free energy (free entropy) whose stationary points are the fixed points.
    """

    kind: str
    state: tuple
    params: tuple
    rhs: tuple
    potential: sp.Expr | None = None
    _compiled: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self):
        # shared by every model: expectations sympy can do exactly become
        # closed forms before anything is differentiated or compiled
        rhs = tuple(exact_expectations(sp.sympify(e)) for e in self.rhs)
        object.__setattr__(self, "rhs", rhs)

    @property
    def dim(self) -> int:
        return len(self.state)

    @cached_property
    def jacobian(self) -> sp.Matrix:
        """``dF/ds`` derived by sympy (Gaussian expectations by Price's theorem)."""
        return sp.Matrix(self.rhs).jacobian(sp.Matrix(self.state))

    def _fn(self, what: str) -> _codegen.ScalarFunction:
        if what not in self._compiled:
            args = [*self.state, *self.params]
            if what == "rhs":
                exprs = list(self.rhs)
            elif what == "jacobian":
                exprs = list(self.jacobian)
            elif what == "potential":
                if self.potential is None:
                    raise ValueError("this system declares no potential")
                exprs = [self.potential]
            else:  # pragma: no cover
                raise KeyError(what)
            self._compiled[what] = _codegen.scalar_function(exprs, args, name=what)
        return self._compiled[what]

    def evaluate(self, what: str, state: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """Evaluate ``rhs``, ``jacobian`` or ``potential`` on batches.

        ``state`` has shape ``(..., dim)`` and ``theta`` ``(..., n_params)``.
        """
        state = np.asarray(state, dtype=float)
        theta = np.asarray(theta, dtype=float)
        shape = np.broadcast_shapes(state.shape[:-1], theta.shape[:-1])
        s = np.broadcast_to(state, shape + state.shape[-1:])
        t = np.broadcast_to(theta, shape + theta.shape[-1:])
        cols = [s[..., i] for i in range(self.dim)] + [t[..., j] for j in range(t.shape[-1])]
        out = np.stack(_codegen.evaluate(self._fn(what), *cols), axis=-1)
        if what == "jacobian":
            out = out.reshape(shape + (self.dim, self.dim))
        elif what == "potential":
            out = out[..., 0]
        return out


@dataclass
class SolveResult:
    """Theory at one point: the fixed point reached and how."""

    state: np.ndarray
    iterations: int
    status: str
    values: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``status`` first; a non-finite number is ``null`` and never
        passes as ``ok`` (the status becomes ``non_finite`` and ``non_finite``
        lists the keys)."""
        out: dict[str, Any] = {"status": self.status}
        out.update(self.values)
        out["iterations"] = int(self.iterations)
        bad = [k for k, v in self.values.items() if _has_non_finite(v)]
        if bad and out["status"] == "ok":
            out["status"] = "non_finite"
            out["non_finite"] = bad
        return _jsonable(out)


def _has_non_finite(v) -> bool:
    if isinstance(v, bool | str) or v is None:
        return False
    if type(v) is float:
        return not math.isfinite(v)
    if type(v) is list and all(type(x) is float for x in v):
        return not all(math.isfinite(x) for x in v)
    try:
        arr = np.asarray(v, dtype=float)
    except (TypeError, ValueError):
        return False
    return not bool(np.all(np.isfinite(arr)))


def _jsonable(d):
    out = {}
    for k, v in d.items():
        if isinstance(v, np.ndarray):
            v = v.tolist()
        if isinstance(v, (np.floating, float)):
            v = None if not np.isfinite(v) else float(v)
        if isinstance(v, list):
            v = [None if (isinstance(x, float) and not np.isfinite(x)) else x for x in v]
        if isinstance(v, np.integer):
            v = int(v)
        out[k] = v
    return out


class Model(ABC):
    """Base class of every model.

    Subclasses declare ``name``, ``params`` (a dict of :class:`Param`),
    ``order_parameters`` and implement :meth:`system`, :meth:`theta`,
    :meth:`initial_state` and :meth:`observables`.

    Instances are immutable: :meth:`replace` returns a new, validated one.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    reference: ClassVar[str] = ""
    params: ClassVar[dict[str, Param]]

    # -- what the shared machinery and the CLI need to know (declarations) --------
    #: The simulator, ``"module:function"``, imported only when a simulation
    #: runs; called as ``function(model, size=, trials=, seed=, backend=, **engine)``
    #: and returning a JSON-ready dict with the ``simulate`` keys of
    #: :attr:`contract`. ``None``: the model has no simulator.
    simulator: ClassVar[str | None] = None
    #: The stable ``--json`` keys of each command, in the order they are printed
    #: (a command may return more keys; these are the ones a user may rely on).
    contract: ClassVar[dict[str, tuple[str, ...]]] = {
        "solve": ("status",),
        "simulate": ("status",),
        "threshold": ("param", "kind", "value", "status"),
    }
    #: Observables reported by ``solve``/``simulate``: name -> meaning.
    observables_doc: ClassVar[dict[str, str]] = {}
    #: Threshold kinds ``threshold(param=, kind=)`` accepts (the first is the default).
    threshold_kinds: ClassVar[tuple[str, ...]] = ()
    #: The parameter each threshold kind is located in when ``param`` is not given.
    threshold_params: ClassVar[dict[str, str]] = {}
    #: Extra keyword arguments of the simulator (``simulate(..., **engine)``): name -> doc.
    simulate_options: ClassVar[dict[str, str]] = {}
    #: A parameter that *is* the simulated system size (e.g. the network size
    #: ``n``), or ``None`` when ``size`` is a separate simulation argument.
    size_param: ClassVar[str | None] = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:
            if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
                raise TypeError(f"a model named {cls.name!r} is already registered")
            _REGISTRY[cls.name] = cls

    def __init__(self, **values: Any):
        vals = validate(self.params, values)
        object.__setattr__(self, "_values", vals)
        self.check(vals)

    def __setattr__(self, key, value):
        raise AttributeError(f"{type(self).__name__} is immutable; use .replace(...)")

    # -- declaration -----------------------------------------------------------
    def check(self, values: dict[str, Any]) -> None:  # noqa: B027 (optional hook)
        """Cross-parameter validation (override); raise :class:`ParamError`."""

    @property
    def values(self) -> dict[str, Any]:
        return dict(self._values)

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def replace(self, **changes: Any) -> Model:
        """A copy with ``changes``: only the changed values are validated (the
        others already are, and validation is idempotent), then :meth:`check`."""
        for k in changes:
            if k not in self.params:
                raise ParamError(k, "a known parameter (" + ", ".join(self.params) + ")",
                                 changes[k])
        vals = dict(self._values)
        for k, v in changes.items():
            vals[k] = self.params[k].validate(v)
        new = object.__new__(type(self))
        object.__setattr__(new, "_values", vals)
        new.check(vals)
        return new

    @property
    @abstractmethod
    def order_parameters(self) -> tuple[str, ...]:
        """Names of the order parameters (the state of :meth:`system`)."""

    @abstractmethod
    def system(self) -> System:
        """The symbolic system (depends only on structural parameters)."""

    @abstractmethod
    def theta(self) -> np.ndarray:
        """Numeric values of ``system().params``, in order."""

    @abstractmethod
    def initial_state(self, init: str) -> np.ndarray:
        """Initial order parameters for ``init`` (e.g. 'random', 'informed')."""

    @abstractmethod
    def observables(self, state: np.ndarray) -> dict[str, Any]:
        """JSON-ready observables at a state (overlap, mse, ...)."""

    def vary(self, param: str, values) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Parameters, initial states and uninformative states along ``param``.

        Returns ``theta (n, k)``, ``s0 (n, len(inits), dim)`` and ``u (n, dim)``.
        Models override this with a vectorised version for their common axes.
        """
        ms = [self.replace(**{param: float(v)}) for v in values]
        theta = np.stack([m.theta() for m in ms])
        inits = list(getattr(self, "inits", ()))
        s0 = np.stack([np.stack([m.initial_state(i) for i in inits]) for m in ms])
        u = (
            np.stack([m.uninformative_state() for m in ms])
            if hasattr(self, "uninformative_state")
            else s0[:, 0]
        )
        return theta, s0, u

    # -- shared machinery --------------------------------------------------------
    def solve(self, init: str | None = None) -> SolveResult:
        """Iterate the declared system to a fixed point (see :mod:`meanfield.solvers`).

        Models whose theory is not a fixed point of one declared system (a
        self-consistency solved another way) override this; the result's
        ``values`` must hold the ``solve`` keys of :attr:`contract`.
        """
        from .solvers.fixed_point import solve_model

        return solve_model(self, init=init)

    def threshold(
        self, param: str, kind: str, lo: float | None = None, hi: float | None = None
    ):
        """A threshold in ``param`` (a :class:`~meanfield.solvers.threshold.ThresholdResult`).

        The default handles the iterated-map kinds (algorithmic, dynamic,
        information) of :mod:`meanfield.solvers.threshold`; models with other
        kinds (a Hopf or chaos boundary, a stability edge) override this and
        call the shared bifurcation machinery.
        """
        from .solvers.threshold import find_threshold

        return find_threshold(self, param=param, kind=kind, lo=lo, hi=hi)

    def simulation_bytes(self, size: int, trials: int, **engine: Any) -> int:
        """Memory the simulator needs for ``trials`` instances of ``size`` (0: negligible).

        ``engine`` holds the simulator options of the run (e.g. ``dtype``).

        :func:`meanfield.sims.simulate` refuses a run that would not fit in the
        machine's available memory before allocating anything.
        """
        return 0

    @classmethod
    def describe(cls) -> dict[str, Any]:
        """Parameters, observables, thresholds and the JSON keys of each command."""
        return {
            "name": cls.name,
            "description": cls.description,
            "reference": cls.reference,
            "params": {
                k: {"allowed": p.allowed(), "default": p.default, "doc": p.doc}
                for k, p in cls.params.items()
            },
            "observables": dict(cls.observables_doc),
            "thresholds": {k: cls.threshold_params.get(k) for k in cls.threshold_kinds},
            "simulator": cls.simulator,
            "simulate_options": dict(cls.simulate_options),
            "size_param": cls.size_param,
            "json": {k: list(v) for k, v in cls.contract.items()},
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self._values.items())})"
