"""Worker processes that die with the process that started them, and a check
that a process pool can be started from the calling script at all.

Process pools (the sweep's ``local`` executor, a local dask cluster) start
children through a forkserver or ``spawn``. When the sweeping process is
killed with ``SIGKILL`` nothing in Python runs, so the children must notice by
themselves:

* on Linux every worker asks the kernel for ``SIGKILL`` when its parent dies
  (``prctl(PR_SET_PDEATHSIG)``); the forkserver does the same at start-up
  (:mod:`meanfield._forkserver_preload`), so the chain sweep -> forkserver ->
  workers unwinds at once, and the resource tracker then sees its pipe close
  and exits;
* every worker also watches the sweeping process's pid (``pidfd`` where the
  kernel has it, else polling) and exits when it is gone -- this covers a
  forkserver that was started earlier by other code, and other platforms.

:func:`unguarded_main` tells whether worker processes would re-run the calling
script (a top-level call outside ``if __name__ == "__main__":``, or a script
read from standard input), in which case the caller runs the work in-process.
"""

from __future__ import annotations

import ast
import os
import signal
import sys
import threading

__all__ = ["set_pdeathsig", "watch_parent", "init_worker_lifetime", "unguarded_main"]

_PR_SET_PDEATHSIG = 1


def set_pdeathsig(sig: int = signal.SIGKILL) -> bool:
    """Ask Linux to send ``sig`` to this process when its parent exits (False elsewhere)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):  # pragma: no cover (no libc prctl)
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover (exists, owned by someone else)
        return True
    return True


def watch_parent(pid: int, interval: float = 0.5) -> threading.Thread:
    """A daemon thread that ends this process (``os._exit``) once ``pid`` is gone."""

    def wait_pidfd(fd: int) -> None:
        import select

        p = select.poll()
        p.register(fd, select.POLLIN)
        while not p.poll(None):  # pragma: no cover (poll(None) blocks until ready)
            pass

    def run() -> None:
        fd = None
        if hasattr(os, "pidfd_open"):
            try:
                fd = os.pidfd_open(pid)
            except OSError:
                fd = None
        if fd is not None:
            wait_pidfd(fd)
        else:
            import time

            while _alive(pid):
                time.sleep(interval)
        os._exit(1)

    t = threading.Thread(target=run, name=f"meanfield-watch-{pid}", daemon=True)
    t.start()
    return t


def init_worker_lifetime(owner_pid: int) -> None:
    """Worker start-up: die with the parent, and with ``owner_pid`` (the sweeping process)."""
    set_pdeathsig()
    if not _alive(owner_pid):  # the owner died before we got here
        os._exit(1)
    watch_parent(owner_pid)


def _guard_ranges(tree: ast.Module) -> list[tuple[int, int]]:
    """Line ranges of top-level ``if __name__ == "__main__":`` bodies."""
    out = []
    for node in tree.body:
        if not isinstance(node, ast.If):
            continue
        t = node.test
        if (
            isinstance(t, ast.Compare)
            and len(t.ops) == 1
            and isinstance(t.ops[0], ast.Eq)
            and {_name(t.left), _name(t.comparators[0])} == {"__name__", "'__main__'"}
        ):
            out.append((node.body[0].lineno, max(n.end_lineno or n.lineno for n in node.body)))
    return out


def _name(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return repr(node.value)
    return ""


def unguarded_main() -> str | None:
    """Why worker processes would re-run the caller's script, or ``None`` when they would not.

    Spawned and forkserver workers re-import the main script (as
    ``__mp_main__``). That is harmless when the script keeps its work under
    ``if __name__ == "__main__":``; when the call that got here runs at the
    script's top level outside such a block, each worker would start the work
    again (and multiprocessing refuses, breaking the pool). A script read from
    standard input (``python -``) cannot be re-imported at all. Interactive
    sessions, ``python -c`` and notebooks have no main file and are safe.
    """
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if main is None or path is None:
        return None
    if not os.path.isfile(path):
        return f"the main script ({path}) is not a file that worker processes can import"
    frame = sys._getframe(1)
    lineno = None
    while frame is not None:
        if frame.f_globals is main.__dict__ and frame.f_code.co_name == "<module>":
            lineno = frame.f_lineno
            break
        frame = frame.f_back
    if lineno is None:
        return None
    try:
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), filename=path)
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return None
    if any(lo <= lineno <= hi for lo, hi in _guard_ranges(tree)):
        return None
    return (
        f"{os.path.basename(path)} line {lineno} runs outside an "
        "`if __name__ == \"__main__\":` block, so worker processes would re-run it"
    )
