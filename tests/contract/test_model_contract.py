"""Every registered model: registry, declaration, compilation."""

import numpy as np
import pytest
import sympy as sp

import meanfield
from meanfield import ParamError, get_model, registry
from meanfield._symbols import GaussExpect

MODELS = sorted(registry())


def test_registry_maps_names_to_their_classes():
    for name, cls in registry().items():
        assert cls.name == name
        assert get_model(name) is cls


def test_unknown_model_is_a_clear_error():
    with pytest.raises(ParamError, match=r"model must be one of .*; got 'nope'"):
        get_model("nope")


@pytest.mark.parametrize("name", MODELS)
def test_defaults_validate_and_compile(name):
    model = get_model(name)()
    system = model.system()
    assert len(system.state) == len(model.order_parameters)
    assert len(system.params) == len(model.theta())
    assert system.jacobian.shape == (system.dim, system.dim)


def _sympy_value(expr, subs):
    """Evaluate with sympy only: GaussExpect by 121-point Gauss-Hermite in mpmath precision."""

    def ge_value(e):
        h, B, m, v = e.args
        z, w = np.polynomial.hermite_e.hermegauss(121)
        w = w / np.sqrt(2 * np.pi)
        mm = float(m.subs(subs))
        vv = float(v.subs(subs))
        return sum(
            float(wi) * float(h.subs(subs).subs(B, mm + np.sqrt(vv) * zi))
            for zi, wi in zip(z, w, strict=True)
        )

    e = expr.replace(lambda x: isinstance(x, GaussExpect), lambda x: sp.Float(ge_value(x)))
    return float(e.subs(subs).evalf())


@pytest.mark.parametrize("name", MODELS)
def test_compiled_equals_sympy_at_random_points(name):
    model = get_model(name)()
    system = model.system()
    rng = np.random.default_rng(0)
    theta = model.theta()
    for _ in range(2):
        state = rng.uniform(0.1, 0.9, size=system.dim)
        subs = dict(zip(system.state, state, strict=True))
        subs.update(zip(system.params, theta, strict=True))
        got = system.evaluate("rhs", state, theta)
        exact = [_sympy_value(e, subs) for e in system.rhs]
        # 121 vs 81 nodes on smooth integrands: agreement to 1e-10
        np.testing.assert_allclose(got, exact, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    "params,name",
    [
        (dict(delta=-1.0), "delta"),
        (dict(delta="x"), "delta"),
        (dict(prior="laplace"), "prior"),
        (dict(order=2, shape="1,1,1"), "shape"),
        (dict(order=3, prior="gaussian,rademacher"), "prior"),
        (dict(rho=1.5, prior="sparse_rademacher"), "rho"),
        (dict(var=0.0), "var"),
        (dict(order=1), "order"),
        (dict(init="warm"), "init"),
        (dict(mean=1.0, prior="rademacher"), "mean"),
        (dict(colour=3), "colour"),
    ],
)
def test_bad_parameters_name_themselves(params, name):
    with pytest.raises(ValueError) as err:
        meanfield.solve("tensor", params)
    msg = str(err.value)
    assert msg.startswith(f"{name} must be ")
    assert "; got " in msg and "\n" not in msg
