"""CLI grid strings: ``name=lo:hi:n`` and ``name=v1,v2,...``."""

from __future__ import annotations

import numpy as np
import pytest

from meanfield._params import ParamError
from meanfield.sweep import parse_grid


def test_linspace():
    name, v = parse_grid("delta=0.1:0.9:5")
    assert name == "delta"
    np.testing.assert_allclose(v, np.linspace(0.1, 0.9, 5))
    assert parse_grid(" snr = 2:2:1 ")[0] == "snr"
    np.testing.assert_array_equal(parse_grid("snr=2:2:1")[1], [2.0])


def test_explicit_lists():
    name, v = parse_grid("delta=0.1,0.2,0.5")
    assert name == "delta" and v.dtype.kind == "f"
    np.testing.assert_allclose(v, [0.1, 0.2, 0.5])
    _, k = parse_grid("k=1,2,4")
    assert k.dtype.kind == "i" and list(k) == [1, 2, 4]
    _, p = parse_grid("prior=gauss, rademacher")
    assert list(p) == ["gauss", "rademacher"]
    np.testing.assert_allclose(parse_grid("delta=0.3")[1], [0.3])
    _, d = parse_grid("damping=0.5,auto")  # the model validates each value
    assert list(d) == ["0.5", "auto"]


@pytest.mark.parametrize(
    ("spec", "got"),
    [
        ("delta=0.9:0.1:5", "0.9:0.1:5"),
        ("delta=0.1:0.9:0", "0.1:0.9:0"),
        ("delta=0.1:0.9", "0.1:0.9"),
        ("delta=0.1:0.9:2.5", "0.1:0.9:2.5"),
        ("delta=a:b:3", "a:b:3"),
        ("delta=0:inf:3", "0:inf:3"),
        ("delta=0.1:0.2:3:4", "0.1:0.2:3:4"),
    ],
)
def test_bad_range_names_the_parameter(spec, got):
    with pytest.raises(ParamError) as e:
        parse_grid(spec)
    assert e.value.name == "grid delta"
    assert e.value.allowed == "lo:hi:n with lo <= hi and n >= 1"
    assert e.value.got == got
    assert str(e.value) == f"grid delta must be lo:hi:n with lo <= hi and n >= 1; got {got!r}"


@pytest.mark.parametrize("spec", ["delta=", "delta=0.1,,0.2", "delta=nan,1", "delta=1,inf"])
def test_bad_list_names_the_parameter(spec):
    with pytest.raises(ParamError, match=r"^grid delta must be ") as e:
        parse_grid(spec)
    assert e.value.name == "grid delta"
    assert isinstance(e.value, ValueError)


@pytest.mark.parametrize("spec", ["delta0.1:0.2:3", "=0.1:0.2:3", ""])
def test_missing_name(spec):
    with pytest.raises(ParamError, match=r"^grid must be name=lo:hi:n or name=v1,v2"):
        parse_grid(spec)
