"""Named points where a test can make the daemon die, to prove a crash there is repaired.

``SERVIN_CRASH_AT=point[,point...]`` in the daemon's environment arms them: the first time the
daemon reaches an armed point it SIGKILLs itself (no cleanup, no flush: a real crash);
``point#N`` waits for the N-th time (e.g. the restart after a run's own start). Unset,
``crashpoint`` costs one truth test. The crash-point suite (tests/hardening) arms each point of
each mutating operation in turn, restarts the daemon and checks what the next start repairs.
"""

from __future__ import annotations

import os
import signal
import sys

ENV = "SERVIN_CRASH_AT"


def _parse(text: str) -> dict[str, int]:
    armed: dict[str, int] = {}
    for item in filter(None, text.split(",")):
        name, _, nth = item.partition("#")
        armed[name] = int(nth) if nth.isdigit() else 1
    return armed


_ARMED = _parse(os.environ.get(ENV, ""))
_HITS: dict[str, int] = {}


def crashpoint(name: str) -> None:
    """Die here (SIGKILL) if the point ``name`` is armed (and this is its armed hit)."""
    if _ARMED and name in _ARMED:
        _HITS[name] = _HITS.get(name, 0) + 1
        if _HITS[name] < _ARMED[name]:
            return
        # One line so the test can tell the point was reached (stderr is unbuffered).
        sys.stderr.write(f"crashpoint {name}: killing the daemon\n")
        sys.stderr.flush()
        os.kill(os.getpid(), signal.SIGKILL)
