"""Sizes and durations printed the way docker prints them (used by the daemon and the CLI)."""

from __future__ import annotations

import time

_DECIMAL_UNITS = ("B", "kB", "MB", "GB", "TB", "PB")
_BINARY_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def _scaled(n: float, base: int, units: tuple[str, ...], precision: int) -> str:
    value = float(n)
    unit = 0
    while value >= base and unit < len(units) - 1:
        value /= base
        unit += 1
    return f"{value:.{precision}g}{units[unit]}"


def human_size(n: float, precision: int = 3) -> str:
    """Decimal units with ``precision`` significant digits: ``4.26MB``, ``512B`` (docker's
    go-units HumanSizeWithPrecision; progress messages use 4)."""
    return _scaled(n, 1000, _DECIMAL_UNITS, precision)


def binary_size(n: float) -> str:
    """Binary units with 4 significant digits, as docker shows memory: ``1.465MiB``."""
    return _scaled(n, 1024, _BINARY_UNITS, 4)


def human_duration(seconds: float) -> str:
    """docker's (go-units) HumanDuration: ``Less than a second``, ``3 minutes``, ``2 weeks``."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    minutes = s // 60
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = round(s / 3600)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{hours // 24 // 365} years"


def ago(epoch_seconds: float, now: float | None = None) -> str:
    """``3 minutes ago`` for a past instant."""
    return human_duration((now or time.time()) - epoch_seconds) + " ago"
