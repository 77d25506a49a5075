"""Continuation, folds, thresholds and cusps (issue 9) against closed forms.

Independent values: the cubic zero-mean Gaussian spinodal
``Delta_dyn = (p-2)^(p-2) / (p-1)^(p-1)`` and the tricritical point
``mu_c = 1/(2 sqrt 2)``, ``Delta_c = 27/64`` (Kadmon & Ganguli 2018; derived by
sympy in :func:`meanfield.closed_forms.cubic_gaussian`), and the grid scan with
bisection (``method="scan"``, the former method, ~1e-8 relative).
"""

import json

import numpy as np
import pytest

import meanfield
from meanfield.closed_forms import cubic_gaussian
from meanfield.solvers import continuation as C
from meanfield.solvers.codim2 import cusp
from meanfield.solvers.threshold import find_threshold

pytestmark = pytest.mark.filterwarnings("ignore")

KINDS = ("algorithmic", "information", "dynamic")


def _model(**kw):
    return meanfield.get_model("tensor")(order=3, prior="gaussian", **kw)


@pytest.fixture(scope="module")
def s_branch():
    return C.continue_branches(_model(mean=0.1), "delta", 0.01, 1.0)


def test_s_shaped_branch_has_unstable_middle_and_two_folds(s_branch):
    folds = sorted(f["value"] for f in s_branch.folds)
    assert len(folds) == 2 and all(f["status"] == "ok" for f in s_branch.folds)
    (br,) = s_branch.branches  # one curve from the informed and the random starts
    between = (br.values > folds[0] * 1.01) & (br.values < folds[1] * 0.99)
    # three fixed points in the window: stable, unstable, stable along the curve
    for v in np.linspace(folds[0] * 1.05, folds[1] * 0.95, 5):
        crossings = np.flatnonzero(np.diff(np.sign(br.values - v)) != 0)
        assert len(crossings) == 3
    assert (~br.stable[between]).any() and br.stable[between].any()
    # the unstable segment lies between the two stable ones
    i_unst = np.flatnonzero(~br.stable)
    assert br.tangent_x[i_unst].max() < 0  # traced backwards in delta
    assert br.end == "range"


def test_fold_residuals_are_exact(s_branch):
    ev = C._Eval(s_branch.path)
    for f in s_branch.folds:
        g = ev.G(f["state"], f["x"])
        assert np.max(np.abs(g)) < 1e-12
        sv = np.linalg.svd(ev.A(f["state"], f["x"]), compute_uv=False)
        assert sv[-1] < 1e-9


@pytest.mark.parametrize("mean", [0.1, 0.3])
def test_thresholds_agree_with_the_scan(mean):
    m = _model(mean=mean)
    for k in KINDS:
        a = find_threshold(m, kind=k)
        b = find_threshold(m, kind=k, method="scan")
        assert a.status == b.status == "ok"
        assert a.details.get("method") == "continuation"
        # the scan bisects to rtol 1e-8 (its iteration cap near a spinodal ~3e-8)
        assert a.value == pytest.approx(b.value, rel=1e-6)


def test_zero_mean_dynamic_spinodal_exact():
    cf = cubic_gaussian(3)
    exact = float(cf["delta_dyn"].subs(cf["symbols"][2], 1))
    res = find_threshold(_model(), kind="dynamic")
    assert res.status == "ok"
    assert res.value == pytest.approx(exact, rel=1e-12)
    alg = find_threshold(_model(), kind="algorithmic")
    assert alg.status == "ok" and alg.value == 0.0


def test_tricritical_point_is_the_cusp():
    cf = cubic_gaussian(3)
    v = cf["symbols"][2]
    c = cusp(_model(mean=0.1), "delta", (0.01, 1.0), "mean", (0.05, 0.6), start=0.1)
    assert c["status"] == "ok"
    assert c["mean"] == pytest.approx(float(cf["mu_c"].subs(v, 1)), rel=1e-9)
    assert c["delta"] == pytest.approx(float(cf["delta_c"].subs(v, 1)), rel=1e-9)
    assert c["residual"] < 1e-12


def test_mutation_unrefined_folds_are_detected(monkeypatch, s_branch):
    """A continuation that skips the bordered Newton (folds at the nearest traced
    point) misses the 1e-6 agreement: the check can fail."""
    good = sorted(f["value"] for f in s_branch.folds)

    def lazy(ev, s, x, tol=C.TOL, steps=40):
        return s, x, True

    monkeypatch.setattr(C, "refine_fold", lazy)
    bad = C.continue_branches(_model(mean=0.1), "delta", 0.01, 1.0)
    got = sorted(f["value"] for f in bad.folds)
    assert max(abs(a - b) / b for a, b in zip(got, good, strict=True)) > 1e-6


def test_branch_api_and_cli_keys(capsys):
    res = meanfield.api.branch("tensor", {"order": 3, "mean": 0.1}, param="delta", lo=0.01, hi=1.0)
    assert {"param", "points", "folds", "status"} <= set(res)
    assert res["status"] == "ok" and len(res["folds"]) == 2
    p = res["points"][0]
    assert {"value", "state", "stable", "free_energy", "overlap", "branch"} <= set(p)
    from meanfield.cli import main

    rc = main(
        [
            "branch",
            "tensor",
            "--param",
            "delta",
            "--range",
            "0.01:1",
            "--set",
            "order=3",
            "--set",
            "mean=0.1",
            "--json",
        ]
    )
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["folds"] == pytest.approx(res["folds"], rel=1e-12)
    assert main(["branch", "tensor", "--param", "delta", "--range", "1:0.1"]) == 2
