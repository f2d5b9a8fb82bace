"""Build facts reported by ``servin version``."""

from __future__ import annotations

import subprocess
from functools import cache
from pathlib import Path


@cache
def git_commit() -> str:
    """The short commit of a source checkout, or "" for an installed release."""
    src = Path(__file__).resolve().parent.parent
    if not (src / ".git").exists():
        return ""
    try:
        out = subprocess.run(
            ["git", "-C", str(src), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except OSError:
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""
