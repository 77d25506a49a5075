"""Mutation checks (issue 8): each deliberate breakage of :mod:`_mutants` must fail its tests.

The fast test (default run) checks that every mutation still applies to the
current engine (its replaced text occurs exactly once) and that its targets
exist. The slow tests (``make mutations``) run each mutation's target tests in
a fresh pytest process with the mutation applied and assert that every one of
them fails (pytest exit status 1, each target reported failed); unmutated,
the same targets run (and pass) in the default ``make test``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

import _mutants  # noqa: E402


def _run(targets: list[str], mutation: str | None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")])
    env.pop("MEANFIELD_MUTATION", None)
    if mutation:
        env["MEANFIELD_MUTATION"] = mutation
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "_mutation_plugin", "-p",
           "no:cacheprovider", "-rfE", "--no-header", *targets]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=3000)


@pytest.mark.parametrize("name", sorted(_mutants.MUTATIONS))
def test_mutation_applies(name, monkeypatch):
    """The mutation finds its text in the current engine (then the process is
    restored: the patched module attributes are reset by monkeypatch)."""
    import importlib

    import meanfield
    from meanfield import api

    amp = importlib.import_module(_mutants.AMP)
    rank = importlib.import_module("meanfield.sims.engines.amp_rank")
    cth = importlib.import_module("meanfield.solvers.continuation_threshold")
    pc = importlib.import_module("meanfield.solvers.phase_curves")
    for mod, attr in [(amp, "run_amp"), (amp, "Stopping"), (rank, "Stopping"),
                      (api, "solve"), (meanfield, "solve"), (cth, "_end_x"), (cth, "_end"),
                      (cth, "_stable_end_before_fold"),
                      (pc, "bifurcating_fold"), (pc, "_info_refine"),
                      (importlib.import_module("meanfield.solvers.continuation"), "_split_step")]:
        monkeypatch.setattr(mod, attr, getattr(mod, attr))
    _mutants.apply(name)
    for target in _mutants.TARGETS[name]:
        path = target.split("::")[0]
        assert (ROOT / path).is_file(), target


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(_mutants.MUTATIONS))
def test_mutation_is_caught(name):
    targets = _mutants.TARGETS[name]
    out = _run(targets, name)
    text = out.stdout + out.stderr
    assert out.returncode == 1, (out.returncode, text[-4000:])
    for target in targets:
        assert f"FAILED {target}" in text, (target, text[-4000:])
