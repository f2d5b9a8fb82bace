"""docker's human texts for containers: the ``STATUS`` and ``COMMAND`` columns of ``ps``."""

from __future__ import annotations

import time

from servin.engine.containers.model import EXITED, PAUSED, RUNNING, Container
from servin.humanize import ago, human_duration

_HEALTH = {"starting": " (health: starting)", "healthy": " (healthy)",
           "unhealthy": " (unhealthy)"}


def status_text(c: Container, now: float | None = None) -> str:
    """docker's status: "Up 2 minutes (healthy)", "Exited (0) 3 seconds ago", "Created"."""
    s = c.state
    now = now or time.time()
    if s.status == RUNNING:
        return f"Up {human_duration(now - s.started_at_ns / 1e9)}{_HEALTH.get(s.health_status, '')}"
    if s.status == PAUSED:
        return f"Up {human_duration(now - s.started_at_ns / 1e9)} (Paused)"
    if s.status == "restarting":
        if not s.finished_at_ns:
            return f"Restarting ({s.exit_code})"
        return f"Restarting ({s.exit_code}) {ago(s.finished_at_ns / 1e9, now)}"
    if s.status == EXITED:
        if not s.finished_at_ns:
            return f"Exited ({s.exit_code})"
        return f"Exited ({s.exit_code}) {ago(s.finished_at_ns / 1e9, now)}"
    return s.status.capitalize()


def command_text(command: list[str]) -> str:
    """The command as ``ps`` shows it: dockerd's, the program then its arguments joined by
    spaces, an argument containing a space in single quotes."""
    if not command:
        return ""
    args = [f"'{a}'" if " " in a else a for a in command[1:]]
    return " ".join([command[0], *args])
