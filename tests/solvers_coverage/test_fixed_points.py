"""``fixed-points`` (CLI and :func:`meanfield.api.fixed_points`) against closed forms (issue 8).

Every fixed point of the state evolution, with stability, the Jacobian's
spectral radius and the free entropy, against tensor.md §3 values computed in
``_gauss_closed`` (roots of a polynomial, closed-form psi and Jacobian) and,
at order 2, the BBP formulas:

* order 3, N(0, 1): M = 0 (stable, radius 0) and M = (1 -+ sqrt(1 - 4 Delta))/2
  (unstable / stable);
* order 3, N(0.2, 1): the three roots of M^2 (rho - M) = Delta (M - mu^2) inside
  the spinodal window, one root outside it;
* order 2, N(0, 1): M = 0 (radius 1/Delta) and M = (1 - Delta^2)/(1 + Delta) below
  Delta = 1 (radius Delta), M = 0 alone above.

Tolerances: overlaps, radii and free entropies to 1e-9 relative (Newton to
1e-11 on a map that is smooth there), 1e-12 absolute for values at zero.
"""

from __future__ import annotations

import json

import _gauss_closed as gc
import numpy as np
import pytest
from typer.testing import CliRunner

from meanfield import api, cli

REL, ABS = 1e-9, 1e-12


def _order3(delta, mu):
    out = []
    for m in gc.fixed_points(delta, mu):
        r = gc.spectral_radius(m, delta)
        out.append((m, r, gc.phi(m, delta, mu)))
    return out


def _order2(delta):
    out = [(0.0, 1.0 / delta, 0.0)]
    if delta < 1.0:
        m = (1 - delta**2) / (1 + delta)
        lam = m / delta
        phi = 2 * (-0.5 * np.log1p(lam) + lam / 2) - m**2 / (2 * delta)
        out.append((m, delta, phi))  # 1 + lam = 1/Delta: radius f'(lam)/Delta = Delta
    return out


CASES = {
    "order3-zero-mean": (dict(order=3, delta=0.2), 3, _order3(0.2, 0.0)),
    "order3-mean0.2-window": (dict(order=3, mean=0.2, delta=0.2), 3, _order3(0.2, 0.2)),
    "order3-mean0.2-below": (dict(order=3, mean=0.2, delta=0.1), 3, _order3(0.1, 0.2)),
    "order2-below-bbp": (dict(order=2, delta=0.5), 2, _order2(0.5)),
    "order2-above-bbp": (dict(order=2, delta=1.5), 2, _order2(1.5)),
}


def _check(got, p, expected):
    assert len(got) == len(expected), (got, expected)
    for f, (m, radius, phi) in zip(got, expected, strict=True):
        assert f["overlap"] == pytest.approx([m] * p, rel=REL, abs=ABS)
        assert f["spectral_radius"] == pytest.approx(radius, rel=REL, abs=ABS)
        assert f["stable"] is (radius < 1.0)
        assert f["free_energy"] == pytest.approx(phi, rel=REL, abs=ABS)


def test_closed_forms_are_what_they_say():
    """The expected values themselves: three roots at order 3 in the window, one below."""
    assert [len(gc.fixed_points(d, mu)) for d, mu in [(0.2, 0.0), (0.2, 0.2), (0.1, 0.2)]] == [
        3,
        3,
        1,
    ]
    m = gc.fixed_points(0.2, 0.0)
    assert m[1:] == pytest.approx([(1 - np.sqrt(0.2)) / 2, (1 + np.sqrt(0.2)) / 2], rel=1e-14)


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_api_fixed_points(case):
    params, p, expected = CASES[case]
    got = api.fixed_points("tensor", params)["fixed_points"]
    _check(got, p, expected)
    # mse is rho - M per mode (rho = mu^2 + 1)
    rho = params.get("mean", 0.0) ** 2 + 1.0
    for f, (m, _, _) in zip(got, expected, strict=True):
        assert f["mse"] == pytest.approx([rho - m] * p, rel=REL, abs=ABS)


def test_cli_fixed_points_json_and_table():
    args = ["fixed-points", "tensor", "--set", "order=3", "--set", "mean=0.2", "--set", "delta=0.2"]
    r = CliRunner().invoke(cli.app, [*args, "--json"])
    assert r.exit_code == 0, r.output
    got = json.loads(r.stdout)["fixed_points"]
    _check(got, 3, CASES["order3-mean0.2-window"][2])
    table = CliRunner().invoke(cli.app, args)
    assert table.exit_code == 0, table.output
    lines = [ln for ln in table.stdout.splitlines() if ln.strip()]
    assert lines[0].split() == ["overlap", "stability", "spectral_radius", "free_energy"]
    assert [ln.split()[-3] for ln in lines[-3:]] == ["stable", "unstable", "stable"]
