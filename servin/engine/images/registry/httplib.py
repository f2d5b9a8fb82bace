"""httpx, imported when the engine first talks to a registry rather than at daemon start.

httpx's package ``__init__`` also imports ``httpx._main``, its command-line client, which
loads rich, pygments and click whenever they are installed (they are: Servin's own CLI and
console use them): some 5 MB of the daemon's memory and 300 ms of its start for nothing.
"""

from __future__ import annotations

import sys
from types import ModuleType


def load() -> ModuleType:
    """The httpx module (imported on first use, without its command-line client)."""
    module = sys.modules.get("httpx")
    if module is not None:
        return module
    # A None entry makes ``from ._main import main`` fail with ImportError, which httpx
    # expects (its CLI's extras are optional) and answers with a stub.
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
    import httpx

    return httpx
