"""Counts the hardening tests report at the end of the run (kill points, fuzz inputs...)."""

from __future__ import annotations

from collections import Counter

FIGURES: Counter[str] = Counter()


def count(name: str, n: int = 1) -> None:
    """Add ``n`` to the figure ``name`` (printed in pytest's terminal summary)."""
    FIGURES[name] += n
