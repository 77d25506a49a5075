"""Imported only inside a multiprocessing forkserver that meanfield starts.

It makes the forkserver die with the process that started it (Linux
``PR_SET_PDEATHSIG``), so that a ``kill -9`` of a sweep leaves no forkserver
behind; see :mod:`meanfield._lifetime`. Importing it anywhere else would tie
that process to its parent, so nothing else imports it.
"""

import os

from ._lifetime import set_pdeathsig

if set_pdeathsig() and os.getppid() == 1:  # the starter already died
    os._exit(1)
