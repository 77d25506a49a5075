"""``Model.replace`` validates only what changes, with the same result and the same errors
as building the model from scratch (the sweep's batched path builds its points this way)."""

from __future__ import annotations

import pytest

import meanfield
from meanfield import ParamError, registry


@pytest.mark.parametrize("name", sorted(registry()))
def test_replace_equals_a_fresh_build(name):
    cls = meanfield.get_model(name)
    base = cls()
    for pname, spec in cls.params.items():
        if spec.kind != "float" or spec.default is None:
            continue
        v = spec.default
        new = base.replace(**{pname: v})
        assert new.values == cls(**{**base.values, pname: v}).values
        assert type(new) is cls


def test_replace_rejects_what_a_build_rejects():
    m = meanfield.get_model("tensor")(order=3)
    with pytest.raises(ParamError, match="delta"):
        m.replace(delta=-1.0)
    with pytest.raises(ParamError, match="nope"):
        m.replace(nope=1.0)
    # the cross-parameter check runs too (one value per mode for per-mode parameters)
    with pytest.raises(ParamError) as fresh:
        meanfield.get_model("tensor")(order=3, mean="0.1,0.2")
    with pytest.raises(ParamError) as rep:
        m.replace(mean="0.1,0.2")
    assert str(rep.value) == str(fresh.value)
    # and strings are normalised as in a build
    assert m.replace(delta="0.5")["delta"] == 0.5
