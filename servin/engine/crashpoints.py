"""Named points where a test can make the daemon die, to prove a crash there is repaired.

``SERVIN_CRASH_AT=point[,point...]`` in the daemon's environment arms them: the first time the
daemon reaches an armed point it SIGKILLs itself (no cleanup, no flush: a real crash). Unset,
``crashpoint`` costs one truth test. The crash-point suite (tests/hardening) arms each point of
each mutating operation in turn, restarts the daemon and checks what the next start repairs.
"""

from __future__ import annotations

import os
import signal
import sys

ENV = "SERVIN_CRASH_AT"

_ARMED = frozenset(p for p in os.environ.get(ENV, "").split(",") if p)


def crashpoint(name: str) -> None:
    """Die here (SIGKILL) if the point ``name`` is armed."""
    if _ARMED and name in _ARMED:
        # One line so the test can tell the point was reached (stderr is unbuffered).
        sys.stderr.write(f"crashpoint {name}: killing the daemon\n")
        sys.stderr.flush()
        os.kill(os.getpid(), signal.SIGKILL)
