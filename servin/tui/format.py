"""How the console spells values: compact durations, sizes, ports, sparklines, state colours.

Everything here is a pure function of its arguments (the current time is passed in), so the
screens render the same text for the same data: snapshot tests depend on it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from rich.text import Text

from servin.humanize import human_size

if TYPE_CHECKING:
    from google.protobuf.timestamp_pb2 import Timestamp

    from servin.api.servin.v1.containers_pb2 import PortMapping

SPARK = "▁▂▃▄▅▆▇█"

# State -> theme variable used to colour it; resolved by the screens' CSS-aware styles.
STATE_STYLES = {
    "running": "bold $success",
    "paused": "$warning",
    "restarting": "$warning",
    "created": "$accent",
    "exited": "$text-muted",
    "dead": "$error",
    "removing": "$text-muted",
}
HEALTH_STYLES = {"healthy": "$success", "unhealthy": "bold $error", "starting": "$warning"}


def ts_seconds(ts: Timestamp | None) -> float:
    """A protobuf Timestamp as float seconds (0.0 when unset)."""
    return ts.seconds + ts.nanos / 1e9 if ts is not None and (ts.seconds or ts.nanos) else 0.0


def short_duration(seconds: float) -> str:
    """``45s``, ``12m``, ``3h05m``, ``4d02h``: at most 6 characters, for a table column."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    m = s // 60
    if m < 60:
        return f"{m}m"
    h = m // 60
    if h < 24:
        return f"{h}h{m % 60:02d}m"
    d = h // 24
    if d < 100:
        return f"{d}d{h % 24:02d}h"
    return f"{d}d"


def size(n: float) -> str:
    """A byte count as docker prints it (``4.26MB``); ``-`` for nothing."""
    return human_size(n) if n else "-"


def ports_text(ports: Iterable[PortMapping]) -> str:
    """Published ports: ``0.0.0.0:8080->80/tcp`` shortened to ``8080->80/tcp``."""
    parts = []
    for p in ports:
        proto = p.protocol or "tcp"
        if p.host_port:
            host = f"{p.host_ip}:" if p.host_ip and p.host_ip not in ("0.0.0.0", "::") else ""
            parts.append(f"{host}{p.host_port}->{p.container_port}/{proto}")
        else:
            parts.append(f"{p.container_port}/{proto}")
    return ",".join(parts)


def sparkline(values: Sequence[float], width: int, top: float | None = None) -> str:
    """The last ``width`` values as block characters scaled to ``top`` (default: their max)."""
    tail = list(values)[-width:]
    if not tail:
        return " " * width
    peak = top if top else max(tail)
    if peak <= 0:
        return (SPARK[0] * len(tail)).rjust(width)
    out = []
    for v in tail:
        i = round(min(max(v, 0.0), peak) / peak * (len(SPARK) - 1))
        out.append(SPARK[i])
    return "".join(out).rjust(width)


MEMORY_FLOOR = 64 * 1024 * 1024  # the smallest top of a memory sparkline without a limit


def memory_top(limit: int, host_total: int, series: Sequence[float]) -> float:
    """The top of a memory sparkline: the container's own limit when it has one (a limit
    below the host's memory: the daemon reports the host's memory when there is none), else
    the recent peak with headroom, at least MEMORY_FLOOR. A flat 200 kB reads low and flat."""
    if limit and host_total and limit < host_total:
        return float(limit)
    peak = max(series) if series else 0.0
    return max(peak * 1.25, float(MEMORY_FLOOR))


def stopping_text(seconds_left: float, width: int) -> str:
    """A stop in progress: ``stopping (SIGKILL in 7s)``, shorter when ``width`` is small;
    ``killing`` once the grace period is over."""
    left = int(seconds_left + 0.999)
    if left <= 0:
        return "killing"
    full = f"stopping (SIGKILL in {left}s)"
    return full if len(full) <= width else f"stopping {left}s"


def graph_rows(values: Sequence[float], width: int, height: int, top: float) -> list[str]:
    """The last ``width`` values as a filled area ``height`` rows high, scaled to ``top``
    (top row first). Any value above zero shows at least the lowest eighth of a cell."""
    tail = list(values)[-width:] if width > 0 else []
    eighths = []
    for v in tail:
        if v <= 0 or top <= 0:
            eighths.append(0)
        else:
            eighths.append(max(1, min(height * 8, round(v / top * height * 8))))
    rows = []
    for r in range(height):
        floor = (height - 1 - r) * 8
        cells = []
        for e in eighths:
            fill = min(8, e - floor)
            cells.append(SPARK[fill - 1] if fill > 0 else " ")
        rows.append("".join(cells).rjust(width))
    return rows


def state_text(state: str, exit_code: int = 0) -> Text:
    """A container state, coloured; exited ones carry their code: ``exited(137)``."""
    label = f"{state}({exit_code})" if state == "exited" else state
    return Text(label, style=_plain(STATE_STYLES.get(state, "")))


def health_text(health: str) -> Text:
    """A health status, coloured; empty when the container has no check."""
    return Text(health or "", style=_plain(HEALTH_STYLES.get(health, "")))


def _plain(style: str) -> str:
    # Rich cannot resolve Textual's $variables: table cells get plain named colours, chosen
    # to read on dark and light backgrounds alike and to vanish cleanly under NO_COLOR.
    return (
        style.replace("$success", "green")
        .replace("$warning", "yellow")
        .replace("$error", "red")
        .replace("$accent", "cyan")
        .replace("$text-muted", "dim")
    )


def fit_middle(text: str, width: int) -> str:
    """``text`` cut to ``width`` cells in the middle when longer, so both ends stay:
    ``127.0.0.1:5000/t…/busybox:1.36`` keeps the registry and the tag."""
    if len(text) <= width or width < 5:
        return text[:width] if width < 5 else text
    tail = (width - 1) // 2 + (width - 1) % 2
    head = width - 1 - tail
    return f"{text[:head]}…{text[-tail:]}"


def short_id(ident: str) -> str:
    """The 12-character form of an ID (``sha256:`` dropped)."""
    return ident.removeprefix("sha256:")[:12]


def event_time(ts: Timestamp) -> str:
    """An event's time as ``HH:MM:SS`` UTC (the console shows UTC: servers log in UTC)."""
    import time

    secs = ts_seconds(ts)
    return time.strftime("%H:%M:%S", time.gmtime(secs)) if secs else "--:--:--"


def utc_stamp(secs: float) -> str:
    """``2025-01-01T12:00:00Z`` for an instant (``-`` when unset)."""
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(secs)) if secs else "-"


def error_text(exc: BaseException) -> str:
    """An error as the console says it: calm for calls this daemon does not implement."""
    from servin.client.errors import is_unsupported

    return "not supported by this daemon" if is_unsupported(exc) else str(exc)


def progress_bar(current: float, total: float, width: int, done: bool = False) -> str:
    """``█████░░░░░  52%`` (``width`` cells of bar); full when ``done``, blank when unknown."""
    if done:
        return "█" * width + " 100%"
    if total <= 0:
        return " " * (width + 5)
    frac = min(max(current / total, 0.0), 1.0)
    filled = int(frac * width)
    return "█" * filled + "░" * (width - filled) + f" {int(frac * 100):3d}%"
