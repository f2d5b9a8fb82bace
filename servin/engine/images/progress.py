"""Progress of a long image operation (pull, push), as the engine reports it.

The front doors translate these onto their own messages (servin.v1 ``ImageProgress``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class ProgressEvent:
    """One step: an item's progress (``id`` set) or a status line (``status`` set)."""

    id: str = ""          # a layer's short digest
    action: str = ""      # "Waiting", "Downloading", "Extracting", "Pull complete", ...
    current: int = 0
    total: int = 0
    done: bool = False
    status: str = ""      # a line for plain output

    @classmethod
    def line(cls, text: str) -> ProgressEvent:
        """A status line."""
        return cls(status=text)


Reporter = Callable[[ProgressEvent], None]


def short(digest: str) -> str:
    """The 12-hex-digit form of a digest, as progress lines name layers."""
    return digest.removeprefix("sha256:")[:12]
