"""bench/fa.py's torch rows: skipped cleanly without torch; with torch, the same network.

``make bench`` runs in the core install (no torch): the torch rows must come back as rows
that say why they were skipped, never as an ImportError. With the ``[torch]`` extra
(``make test-torch`` runs this file too) the torch-autograd epoch must train exactly the
network our engine trains: same initial weights, minibatch order and SGD steps, so the
epoch's mean cross-entropy agrees to round-off (measured: 2.2e-16 absolute on a loss
of 1.42 for the bench's 64-256-256-10 network; the band is 1e-12 relative) and the test
accuracy is identical. Power: a 2% larger learning rate moves the loss by 1.7e-3
relative (measured), nine orders of magnitude outside the band.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def fa(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT))
    import bench.fa as mod

    return mod


def test_torch_rows_are_skipped_rows_without_torch(fa, monkeypatch):
    why = "skipped: torch not installed (test)"
    monkeypatch.setattr(fa, "_torch_missing", lambda: why)
    rows = fa._torch_rows(None, (256, 256), 4096, 256, True, None)
    assert len(rows) == 4  # the epoch row and r = 8, 32, 128
    for row in rows:
        assert math.isnan(row.time_s) and math.isnan(row.baseline_s)
        assert row.notes == why
    assert [r.name.rsplit("r=", 1)[-1] for r in rows[1:]] == ["8", "32", "128"]


def test_torch_missing_reason_matches_the_install(fa):
    try:
        import torch  # noqa: F401
    except ImportError:
        assert fa._torch_missing().startswith("skipped: torch not installed")
    else:
        assert fa._torch_missing() is None


def test_torch_epoch_trains_the_same_network_as_the_engine(fa):
    pytest.importorskip("torch", reason="torch extra not installed (make test-torch)")
    from meanfield.sims.engines.learning.mlp import digits, train_mlp

    D = digits()
    hidden = (32, 16)
    ours = train_mlp(
        D["Xtr"], D["ytr"], D["Xte"], D["yte"], hidden=hidden, rule="bp",
        optimizer="sgd", lr=0.05, epochs=1, batch=32, seed=3,
    )  # fmt: skip
    loss, acc = fa._torch_epoch(D, hidden, 0.05, 32, 3)
    assert abs(loss - ours["train_loss"][0]) <= 1e-12 * ours["train_loss"][0]
    assert acc == ours["test_acc"][0]
    # power: one step of a different learning rate is visible far above the band
    loss2, _ = fa._torch_epoch(D, hidden, 0.051, 32, 3)
    assert abs(loss2 - loss) > 1e-6 * loss


def test_numpy_epoch_trains_the_same_network_as_the_engine(fa):
    """The bench's plain-numpy baseline is the engine's epoch written out (same band)."""
    from meanfield.sims.engines.learning.mlp import digits, train_mlp

    D = digits()
    hidden = (32, 16)
    ours = train_mlp(
        D["Xtr"], D["ytr"], D["Xte"], D["yte"], hidden=hidden, rule="bp",
        optimizer="sgd", lr=0.05, epochs=1, batch=32, seed=3,
    )  # fmt: skip
    loss, acc = fa._numpy_epoch(D, hidden, 0.05, 32, 3)
    assert abs(loss - ours["train_loss"][0]) <= 1e-12 * ours["train_loss"][0]
    assert acc == ours["test_acc"][0]
