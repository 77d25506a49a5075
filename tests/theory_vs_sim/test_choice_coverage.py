"""The theory-vs-simulation tests explore every categorical choice (issue 8, item 5).

Mechanical checks on the test modules themselves, so that a new prior,
start or damping mode cannot be added to the tensor model without a powered
case, and a property test cannot silently narrow its search:

* every prior the model declares appears in the order-2 default-run cases
  (``make test``) and in the order-3 cases (default run plus slow), and in
  the rank-2 cases;
* both starts (``random``, ``informed``) and both damping modes (``fixed``,
  ``adaptive``) appear in the order-2 default run and at order 3;
* every ``@given`` test in ``tests/theory_vs_sim`` has one ``@example`` per
  element of its categorical strategy (the derandomised CI profile then draws
  every prior), and inherits ``max_examples`` from the loaded profile (no
  per-test override of the nightly profile).
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
from hypothesis import settings

from meanfield import get_model

HERE = Path(__file__).parent
T = importlib.import_module("test_tensor_theory_vs_amp")
R = importlib.import_module("test_tensor_rank_theory_vs_amp")
PRIORS = set(get_model("tensor").params["prior"].choices)
INITS = set(get_model("tensor").params["init"].choices)
DAMPING_MODES = set(get_model("tensor").params["damping_mode"].choices)


def _priors(cases) -> set[str]:
    return {p for c in cases for p in c.get("prior", "gaussian").split(",")}


def _choice(cases, key, default) -> set[str]:
    return {c.get(key, default) for c in cases}


def test_the_model_declares_what_we_cover():
    assert PRIORS == {"gaussian", "rademacher", "sparse_rademacher", "gauss_bernoulli"}
    assert INITS == {"random", "informed"} and DAMPING_MODES == {"fixed", "adaptive"}


def test_order2_default_run_draws_every_choice():
    cases = list(T.ORDER2.values())
    assert _priors(cases) == PRIORS
    assert _choice(cases, "init", "random") == INITS
    assert _choice(cases, "damping_mode", "fixed") == DAMPING_MODES
    # non-zero means and non-cubic shapes too
    assert any(c.get("mean", 0) != 0 for c in cases)
    assert any("shape" in c for c in cases)


def test_order3_cases_draw_every_choice():
    default = list(T.ORDER3.values())
    every = default + list(T.ORDER3_SLOW.values())
    assert _priors(every) == PRIORS
    assert _choice(default, "init", "random") == INITS
    assert _choice(every, "damping_mode", "fixed") == DAMPING_MODES


def test_rank2_cases_draw_the_rank_priors():
    """sparse_rademacher is not in the rank-2 theory-vs-AMP cases (reported);
    the other three are."""
    ids = {c.get("prior", "gaussian") for c in R.ORDER2.values()}
    assert ids == {"gaussian", "rademacher", "gauss_bernoulli"}


def _given_tests():
    for path in sorted(HERE.glob("test_*.py")):
        if path.name == Path(__file__).name:
            continue
        mod = importlib.import_module(path.stem)
        for name in dir(mod):
            fn = getattr(mod, name)
            if name.startswith("test_") and getattr(fn, "is_hypothesis_test", False):
                yield f"{path.stem}.{name}", fn


#: the categorical argument of each property test and the list it samples from
CATEGORICAL = {
    "test_tensor_theory_vs_amp.test_order2_property": ("prior", T._PRIORS),
    "test_tensor_rank_theory_vs_amp.test_order2_rank2_property": ("case", R._CASES2),
}


def test_every_property_test_is_registered_here():
    assert {k for k, _ in _given_tests()} == set(CATEGORICAL)


@pytest.mark.parametrize("name", sorted(CATEGORICAL))
def test_property_tests_have_an_example_per_category(name):
    fn = dict(_given_tests())[name]
    arg, values = CATEGORICAL[name]
    drawn = [ex.kwargs[arg] for ex in fn.hypothesis_explicit_examples]
    for v in values:
        assert v in drawn, (name, v)
    assert _priors(values) == PRIORS or name.endswith("rank2_property")


@pytest.mark.parametrize("name", sorted(CATEGORICAL))
def test_property_tests_inherit_the_profile(name):
    fn = dict(_given_tests())[name]
    own = fn._hypothesis_internal_use_settings
    assert own.max_examples == settings.default.max_examples, (name, own.max_examples)
    assert own.derandomize == settings.default.derandomize
