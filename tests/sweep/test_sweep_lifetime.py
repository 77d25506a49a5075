"""Process pools leave nothing behind, and work from scripts without a main guard.

* ``kill -9`` of a sweeping process running the ``local`` (forkserver) pool:
  within a few seconds no process of its session is left (workers, the
  forkserver, the resource tracker), and none keeps computing.
* ``sweep`` called at the top level of a plain script, or from ``python -``,
  returns real results (the points run in-process, with a one-line notice),
  never a dataset of ``BrokenProcessPool`` errors.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def _session_members(sid: int) -> list[int]:
    """Pids whose session id is ``sid`` (field 6 of /proc/PID/stat)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        state, session = fields[0], int(fields[3])
        if session == sid and state != "Z":
            out.append(int(d))
    return out


KILL_SCRIPT = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {here!r})
    from _sweep_toy import GRID, slow_point
    from meanfield.sweep import sweep

    def main():
        sweep("toy", {base!r}, GRID, executor="local", workers=2, point_fn=slow_point,
              store={store!r}, seed=5, progress=False)

    if __name__ == "__main__":
        main()
    """
)


def test_sigkill_leaves_no_process_behind(tmp_path):
    log, store = tmp_path / "log", tmp_path / "s.zarr"
    script = tmp_path / "run_sweep.py"
    script.write_text(
        KILL_SCRIPT.format(
            here=str(HERE), base={"sleep": 0.4, "log": str(log)}, store=str(store)
        )
    )
    proc = subprocess.Popen(
        [sys.executable, str(script)], cwd=tmp_path, start_new_session=True,
        stderr=subprocess.PIPE,
    )
    sid = proc.pid  # a new session: its id is the leader's pid
    try:
        deadline = time.monotonic() + 90
        while not log.exists() or len(log.read_text().splitlines()) < 2:
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "the sweep made no progress"
            time.sleep(0.05)
        members = _session_members(sid)
        assert len(members) >= 3, members  # the sweep, the forkserver, workers
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 10
        left = _session_members(sid)
        while left and time.monotonic() < deadline:
            time.sleep(0.1)
            left = _session_members(sid)
        assert not left, f"processes left behind after kill -9: {left}"
        n = len(log.read_text().splitlines())
        time.sleep(1.0)  # a surviving worker would finish its point (0.4 s) and log it
        assert len(log.read_text().splitlines()) == n
    finally:
        for pid in _session_members(sid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.stderr.close()


UNGUARDED = textwrap.dedent(
    """
    import meanfield
    ds = meanfield.sweep("tensor", {"order": 2}, {"delta": [0.5, 1.5]}, workers=2,
                         progress=False)
    print(",".join(str(s) for s in ds["status"].values))
    print(float(ds["overlap"].values[0, 0]))
    """
)


@pytest.mark.parametrize("how", ["file", "stdin"])
def test_unguarded_script_gets_results(tmp_path, how):
    script = tmp_path / "plain.py"
    script.write_text(UNGUARDED)
    args = [sys.executable, str(script)] if how == "file" else [sys.executable, "-"]
    r = subprocess.run(
        args, input=UNGUARDED if how == "stdin" else None, cwd=tmp_path,
        capture_output=True, text=True, timeout=300,
    )
    assert r.returncode == 0, r.stderr
    status, overlap = r.stdout.strip().splitlines()
    assert status == "ok,ok"
    assert abs(float(overlap) - 0.5) < 1e-6  # Gaussian spiked matrix: M = 1 - delta
    notice = [ln for ln in r.stderr.splitlines() if ln.startswith("meanfield.sweep:")]
    assert len(notice) == 1 and "in this process" in notice[0]
    assert "Traceback" not in r.stderr and "BrokenProcessPool" not in r.stderr


def test_guard_detection(tmp_path):
    import ast

    from meanfield._lifetime import _guard_ranges

    src = "x = 1\nif __name__ == '__main__':\n    main()\n    more()\nprint(2)\n"
    assert _guard_ranges(ast.parse(src)) == [(3, 4)]
    src2 = 'if "__main__" == __name__:\n    go()\n'
    assert _guard_ranges(ast.parse(src2)) == [(2, 2)]
    assert _guard_ranges(ast.parse("if name == '__main__':\n    go()\n")) == []
