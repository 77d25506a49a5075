"""Rank-2 phase diagrams from traced boundaries (issue 9, item 4).

Order 3, Rademacher entries of mean ``mu``, rank 2. The column-symmetric lower
branch (``M = a 11^T`` in every mode) loses stability at a symmetry-breaking
branch point, not at its own fold; a short stable symmetry-broken branch leaves
the branch point towards smaller ``delta`` and ends at a fold of its own, which
is then the algorithmic threshold (at ``mu = 0.114`` it lies 6.4e-6, relative,
below the branch point; at ``mu = 0.3`` 0.76%; near ``mu = 0.057`` the two
coincide to 5e-10). The continuation used to end these branches in
``step_failed``, to read the segment's end off the wrong event, and ``phase``
painted lost columns ``easy``.

References here are independent of the continuation code: the branch point is
the root of ``rho(J) - 1`` with ``J`` a finite difference of the map at the
symmetric fixed point reached by plain iteration; the fold of the broken branch
is bracketed by plain iteration of the map (stays low inside the window,
reaches the informative point below it) with the stability of the low state
from the same finite-difference Jacobian.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import brentq

import meanfield
from meanfield import get_model
from meanfield.solvers import phase_curves
from meanfield.solvers.continuation import _Eval, continue_branches
from meanfield.solvers.continuation_threshold import cached_continuation, threshold_by_continuation

BASE = {"order": 3, "prior": "rademacher", "rank": 2}
LO, HI = 0.005, 0.5


def _model(mu):
    return get_model("tensor")(**BASE, mean=mu)


def _ev(m):
    return _Eval(cached_continuation(m, "delta", LO, HI, True).path)


def _iterate(ev, delta, s, steps):
    """Plain iteration of the state-evolution map (no Newton, no Jacobian)."""
    x = ev.path.x_of(delta)
    for _ in range(steps):
        s2 = ev.F(s, x)
        if np.max(np.abs(s2 - s)) < 1e-15:
            return s2
        s = s2
    return s


def _fd_jacobian(ev, x, s, h=1e-6):
    """Central differences of the compiled map at path coordinate ``x``."""
    return np.stack([(ev.F(s + h * e, x) - ev.F(s - h * e, x)) / (2 * h) for e in np.eye(ev.d)],
                    axis=1)


def _fd_radius(ev, delta, s):
    return float(np.max(np.abs(np.linalg.eigvals(_fd_jacobian(ev, ev.path.x_of(delta), s)))))


def test_branches_end_at_the_branch_point_not_in_failure():
    for mu in (0.057, 0.4):
        res = continue_branches(_model(mu), "delta", LO, HI, log=True)
        ends = [br.end for br in res.branches]
        assert "step_failed" not in ends and "max_points" not in ends, (mu, ends)
        assert "branch_point" in ends
        # the crawl past the pitchfork is cut (it was 4000 points at mu = 0.4)
        assert max(len(br.x) for br in res.branches) < 500


def test_algorithmic_threshold_is_the_branch_point_at_mu_0057():
    """Where the fold of the broken branch sits on the branch point, the
    threshold is the branch point: the root of ``rho(J_fd) - 1`` on the
    symmetric branch (measured agreement 2.4e-8; the old reading of the
    segment's end took the symmetric branch's fold, 1.7e-4 below)."""
    m = _model(0.057)
    r = threshold_by_continuation(m, "delta", "algorithmic", LO, HI, log=True)
    assert r is not None and r.status == "ok"
    ev = _ev(m)

    def g(d):
        return _fd_radius(ev, d, _iterate(ev, d, np.full(ev.d, 1e-3), 200000)) - 1.0

    # bracket: the symmetric branch exists down to its fold 1.7e-4 below
    ref = brentq(g, r.value * (1 - 3e-5), r.value * (1 + 1e-3), xtol=1e-15, rtol=1e-13)
    assert abs(r.value / ref - 1) < 1e-6, (r.value, ref)
    # the dynamics on either side (1e-3: within about 1e-6 of the branch point
    # the escape from the symmetric state outlasts the solver's iteration)
    lo = meanfield.solve("tensor", {**BASE, "mean": 0.057, "delta": r.value * (1 - 1e-3)})
    hi = meanfield.solve("tensor", {**BASE, "mean": 0.057, "delta": r.value * (1 + 1e-3)})
    assert np.asarray(lo["overlap"][0])[0, 0] > 0.9
    assert np.asarray(hi["overlap"][0])[0, 0] < 0.1


def test_algorithmic_threshold_is_the_fold_of_the_broken_branch_at_mu_0114():
    """The window between the fold and the branch point is 6.4e-6 wide
    (relative); the test resolves the threshold to +-3e-6 and so tells the
    fold from the branch point."""
    m = _model(0.114)
    r = threshold_by_continuation(m, "delta", "algorithmic", LO, HI, log=True)
    assert r is not None and r.status == "ok"
    alg = r.value
    ev = _ev(m)
    sym = _iterate(ev, alg * (1 + 1e-3), np.full(ev.d, 1e-3), 20000)
    assert np.ptp(sym) < 1e-12  # the symmetric low state
    broken = sym + np.tile([1e-4, -1e-4, 1e-4], 3)
    # the branch point, from the symmetric branch: 6.4e-6 above the fold
    rho_bp = _fd_radius(ev, alg * (1 + 3.2e-6), _iterate(ev, alg * (1 + 3.2e-6), sym, 200000))
    assert rho_bp > 1.0  # the symmetric state is already unstable inside the window
    # inside the window: the iteration settles on a stable low, symmetry-broken
    # fixed point (rho = 1 - 6e-5 there, so it crawls: the residual falls
    # 2.1e-9 -> 1.2e-9 from 10^4 to 2 10^4 steps, measured; it does not escape)
    d_in = alg * (1 + 3.2e-6)
    x_in = ev.path.x_of(d_in)
    s1 = _iterate(ev, d_in, broken, 10000)
    s2 = _iterate(ev, d_in, s1, 10000)
    r1, r2 = (np.max(np.abs(ev.F(s, x_in) - s)) for s in (s1, s2))
    assert r2 < 0.7 * r1 and r2 < 2e-9, (r1, r2)
    assert _fd_radius(ev, d_in, s2) < 1.0
    assert s2[0] < 0.1 and abs(s2[0] - s2[1]) > 1e-5
    # just below: no low fixed point left, the iteration reaches the informative one
    s_lo = _iterate(ev, alg * (1 - 3e-6), broken, 40000)
    assert s_lo[0] > 0.99, s_lo[:3]


@pytest.mark.parametrize(
    "xs",
    [
        # the algorithmic edge is a branch point with the fold of a broken
        # branch next to it: tracked as the margin's root plus branch switching
        np.linspace(0.06, 0.11, 6),
        # the edge is the broken branch's fold, tracked by the bordered system
        np.linspace(0.2, 0.3, 6),
    ],
    ids=["margin", "fold"],
)
def test_tracked_columns_agree_with_full_continuations(xs):
    """Columns tracked from their neighbours against a full continuation of
    each column (validated above): rtol 1e-8, measured 2e-13 except for the
    dynamic threshold at mean 0.22, 1.3e-9: two singular points of the upper
    branch lie 2.9e-10 apart in the path coordinate there (the second singular
    value of ``J - I`` is 3.5e-5); the tracked fold is the stable one (margin
    2e-16), the full continuation reads its neighbour (margin +3.5e-5). One
    full continuation (the first column) in each case, measured; without
    branch switching the margin case reads the branch point, 1e-6 to 2e-6
    (relative) above the fold."""
    ds = meanfield.api.phase("tensor", BASE, x="mean", xs=xs, ys=np.geomspace(LO, HI, 24))
    assert ds.attrs["full_continuations"] <= 2  # tracking is exercised
    assert ds.attrs["grid_columns"] == 0
    assert set(ds.status.values.tolist()) == {"first_order"}
    for i, mu in enumerate(xs):
        m = _model(float(mu))
        for k in ("algorithmic", "information", "dynamic"):
            ref = threshold_by_continuation(m, "delta", k, LO, HI, log=True)
            assert ref is not None and ref.status == "ok"
            np.testing.assert_allclose(ds[k].values[i], ref.value, rtol=1e-8, err_msg=(k, mu))


def test_a_lost_column_is_solved_on_the_grid(monkeypatch):
    """A column whose continuation fails is solved by the grid method, never
    painted ``easy`` (rank 1 here: the rank-2 grid takes 330 s a column, see
    the slow test below)."""
    base = {"order": 3, "prior": "rademacher"}
    xs, ys = np.array([0.05, 0.15]), np.geomspace(0.01, 0.5, 20)
    m = get_model("tensor")(**base)
    grid = meanfield.solvers.phase.phase_diagram(m, "mean", xs, ys=ys, method="grid")
    monkeypatch.setattr(phase_curves, "_column_full", lambda *a, **k: None)
    ds = meanfield.api.phase("tensor", base, x="mean", xs=xs, ys=ys)
    assert ds.attrs["grid_columns"] == 2
    np.testing.assert_array_equal(ds.region.values, grid.region.values)
    np.testing.assert_array_equal(ds.status.values, grid.status.values)
    assert (ds.region.values > 0).any()


@pytest.mark.slow
def test_rank2_traced_column_agrees_with_the_grid(monkeypatch):
    """The traced column against the grid method (every point iterated from both
    starts, thresholds bisected) at mu = 0.3: regions equal, thresholds 1e-6
    (measured 1.1e-7; the grid judges by iteration). 330 s."""
    ys = np.geomspace(LO, HI, 24)
    tr = meanfield.api.phase("tensor", BASE, x="mean", xs=[0.3], ys=ys)
    monkeypatch.setattr(phase_curves, "_column_full", lambda *a, **k: None)
    g = meanfield.api.phase("tensor", BASE, x="mean", xs=[0.3], ys=ys)
    assert g.attrs["grid_columns"] == 1
    np.testing.assert_array_equal(tr.region.values, g.region.values)
    np.testing.assert_array_equal(tr.status.values, g.status.values)
    for k in ("algorithmic", "information", "dynamic"):
        np.testing.assert_allclose(tr[k].values, g[k].values, rtol=1e-6, err_msg=k)


def test_branch_switching_finds_the_fold_of_the_broken_branch():
    """From a stable point of the symmetric branch at ``mu = 0.114``: the
    margin's root is the branch point, and :func:`bifurcating_fold` follows
    the bifurcating branch to its fold, the threshold validated above by plain
    iteration (agreement 1e-9 against the full continuation; measured 1e-13).
    Stopping at the branch point is 6.4e-6 off and fails."""
    m = _model(0.114)
    r = threshold_by_continuation(m, "delta", "algorithmic", LO, HI, log=True)
    ev = _ev(m)
    d0 = r.value * (1 + 1e-3)
    s0 = _iterate(ev, d0, np.full(ev.d, 1e-3), 20000)
    sb, xb, ok, side = phase_curves._margin_root(ev, s0, ev.path.x_of(d0))
    assert ok and side != 0.0
    kind, _, xf = phase_curves.bifurcating_fold(ev, sb, xb, side)
    assert kind == "fold"
    assert abs(xf - xb) > 1e-7  # not the branch point itself
    np.testing.assert_allclose(xf, ev.path.x_of(r.value), rtol=1e-9)


def _stable_free_energies(mu, delta):
    """Free energies of the stable fixed points from ``fixed_points`` (Newton
    from the solver's starts, no continuation), lowest overlap first."""
    fp = meanfield.api.fixed_points("tensor", {**BASE, "mean": mu, "delta": delta})
    st = [p for p in fp["fixed_points"] if p["stable"]]
    st.sort(key=lambda p: np.asarray(p["overlap"])[0, 0, 0])
    return [p["free_energy"] for p in st]


_NEAR_CUSP = np.linspace(0, 0.4, 64)[[56, 57]]


@pytest.mark.parametrize("mu", _NEAR_CUSP, ids=["mean0.3556", "mean0.3619"])
def test_information_near_the_cusp_is_the_crossing_of_the_stable_points(mu):
    """Near the rank-2 cusp the lower stable set is a short broken branch plus
    the symmetric branch, whose last stored point lies 0.018 in delta before
    its branch point: the crossing was missed (mean 0.3556: no value; mean
    0.3619: the dynamic threshold, 1.2% off). Reference: the free energies of
    the two stable fixed points change order across ``info (1 +- 1e-6)``."""
    m = _model(float(mu))
    for log in (True, False):
        r = threshold_by_continuation(m, "delta", "information", LO, HI, log=log)
        assert r is not None and r.status == "ok", log
        lo = _stable_free_energies(float(mu), r.value * (1 - 1e-6))
        hi = _stable_free_energies(float(mu), r.value * (1 + 1e-6))
        assert len(lo) == 2 and len(hi) == 2
        assert (lo[1] - lo[0]) * (hi[1] - hi[0]) < 0, (log, lo, hi)


def test_dynamic_near_the_cusp_is_where_the_informative_point_ends():
    """Next to the rank-2 cusp (mean 0.343) the symmetric upper branch folds at
    0.346659051 with a symmetry-breaking eigenvalue already above 1, while a
    broken branch next to it stays stable up to 0.3466613 (the continuation
    read the first fold, 6.5e-6 low). Reference: the number of stable fixed
    points from ``fixed_points`` 2e-6 (relative) either side."""
    mu = float(np.linspace(0, 0.4, 64)[54])
    r = threshold_by_continuation(_model(mu), "delta", "dynamic", LO, HI, log=True)
    assert r is not None and r.status == "ok"
    assert len(_stable_free_energies(mu, r.value * (1 - 2e-6))) == 2
    # beyond the dynamic threshold only the uninformative point is stable
    # (measured: two stable points up to 0.346661, now reported 0.3466613)
    assert len(_stable_free_energies(mu, r.value * (1 + 2e-6))) == 1


def test_tracked_information_near_the_cusp_stays_on_the_stable_points():
    """Tracked across the columns next to the rank-2 cusp, the information
    crossing slid onto an unstable branch (6.4e-4 off at mean 0.387; the free
    energies of the stable points, test above, place it where the full
    continuation does). Now each tracked crossing must join two stable points:
    agreement with full continuations rtol 1e-8 (measured 1e-14)."""
    xs = np.linspace(0, 0.4, 64)[54:62]
    ds = meanfield.api.phase("tensor", BASE, x="mean", xs=xs, ys=np.linspace(LO, HI, 64))
    assert ds.attrs["full_continuations"] <= 3
    # the slide built up from mean 0.343 and showed in the last four columns
    for i in range(4, len(xs)):
        m = _model(float(xs[i]))
        ref = threshold_by_continuation(m, "delta", "information", LO, HI, log=True)
        assert ref is not None and ref.status == "ok"
        np.testing.assert_allclose(ds.information.values[i], ref.value, rtol=1e-8, err_msg=xs[i])


@pytest.mark.parametrize("idx", [11, 35], ids=["mean0.0698", "mean0.2222"])
def test_linear_path_sees_the_branch_point_next_to_the_fold(idx):
    """With a linear ``delta`` axis one step of the symmetric low branch
    crossed its branch point and its fold together (three eigenvalues of
    ``J`` through 1 at once), the branch point went unseen and the
    algorithmic threshold was read at the symmetric fold (mean 0.0698:
    0.0191312, 3.8e-4 low) or at a neighbouring singular point (mean 0.2222:
    0.16525771, 3.9e-4 high). Steps that cross two eigenvalue events are now
    split. Log and linear paths agree to 1e-9 (measured 1e-13); the reference
    at mean 0.2222 is plain iteration from a slightly broken low start: a
    stable low fixed point (rho < 1, residual 1e-15) at alg (1 + 1e-4), the
    informative one at alg (1 - 1e-4), which the old value fails."""
    mu = float(np.linspace(0, 0.4, 64)[idx])
    m = _model(mu)
    lin = threshold_by_continuation(m, "delta", "algorithmic", LO, HI, log=False)
    log = threshold_by_continuation(m, "delta", "algorithmic", LO, HI, log=True)
    assert lin.status == log.status == "ok"
    np.testing.assert_allclose(lin.value, log.value, rtol=1e-9)
    if idx != 35:
        return
    ev = _ev(m)
    sym = _iterate(ev, lin.value * (1 + 1e-3), np.full(ev.d, 1e-3), 20000)
    broken = sym + np.tile([1e-4, -1e-4, 1e-4], 3)
    d_hi = lin.value * (1 + 1e-4)
    s_hi = _iterate(ev, d_hi, broken, 40000)
    assert np.max(np.abs(ev.F(s_hi, ev.path.x_of(d_hi)) - s_hi)) < 1e-12
    assert s_hi[0] < 0.1 and _fd_radius(ev, d_hi, s_hi) < 1.0
    assert _iterate(ev, lin.value * (1 - 1e-4), broken, 40000)[0] > 0.9


def test_the_broken_branch_is_not_followed_back_from_its_own_branch_point():
    """Mean 0.368 (column 58 of 64): the stable broken branch ends at the
    pitchfork where it meets the symmetric branch; branch switching there
    must follow the symmetric branch, not retrace the broken one along the
    null vector (which read the broken branch's far fold, 3% away, as its
    end, and lost the information threshold: ``out_of_range``)."""
    mu = float(np.linspace(0, 0.4, 64)[58])
    m = _model(mu)
    r = threshold_by_continuation(m, "delta", "information", LO, HI, log=True)
    assert r is not None and r.status == "ok"
    lo = _stable_free_energies(mu, r.value * (1 - 1e-6))
    hi = _stable_free_energies(mu, r.value * (1 + 1e-6))
    assert len(lo) == len(hi) == 2
    assert (lo[1] - lo[0]) * (hi[1] - hi[0]) < 0


def test_branch_report_crossings_reach_the_refined_ends():
    """``meanfield branch`` next to the rank-2 cusp (mean 0.3556): the
    information crossing lies past the last stored point of the symmetric
    lower branch, so the crossings between stored points missed it. The
    report takes stable segments to their refined ends; its crossing is the
    information threshold, itself checked against the free energies of
    ``fixed_points`` in the test above (rtol 1e-9)."""
    from meanfield.solvers.continuation import branch_report

    mu = float(_NEAR_CUSP[0])
    m = _model(mu)
    info = threshold_by_continuation(m, "delta", "information", LO, HI, log=True)
    assert info is not None and info.status == "ok"
    rep = branch_report(m, "delta", LO, HI, log=True)
    assert any(abs(c / info.value - 1) < 1e-9 for c in rep["crossings"]), rep["crossings"]


def test_price_jacobian_is_the_maps_derivative_where_the_thresholds_are():
    """The rank-2 Jacobian (Price's theorem on the 41^2 rule) is 1-18% off the
    derivative of the discretised map on the informative branch at small
    ``delta`` (measured 0.1-0.18 relative at mean 0.22-0.36, the issue-8
    finding), but the thresholds are read where the integrands are smooth.
    Against central differences of the compiled map (h = 1e-6, error ~1e-10)
    at the stored states nearest the thresholds, mean 0.114: the algorithmic
    edge (a branch point with the broken branch's fold next to it, where the
    margin's root is linear in the Jacobian's error) agrees to 1e-7 (measured
    1.0e-10), the dynamic fold to 1e-4 (measured 4.9e-6; a fold moves by the
    square of that error)."""
    m = _model(0.114)
    res = cached_continuation(m, "delta", LO, HI, True)
    ev = _Eval(res.path)
    for kind, tol in (("algorithmic", 1e-7), ("dynamic", 1e-4)):
        r = threshold_by_continuation(m, "delta", kind, LO, HI, log=True)
        x = ev.path.x_of(r.value)
        pts = [(abs(b.x[i] - x), np.asarray(b.states[i]), float(b.x[i]))
               for b in res.branches for i in range(len(b.x))]
        gap, s, xs = min(pts, key=lambda p: p[0])
        assert abs(ev.path.v_of(xs) / r.value - 1) < 2e-3, (kind, gap)
        fd = _fd_jacobian(ev, xs, s)
        err = np.max(np.abs(ev.J(s, xs) - fd)) / np.max(np.abs(fd))
        assert err < tol, (kind, err)
