"""Restart policies: when a container that stopped is started again, and how soon.

Docker's rules: ``no`` never; ``on-failure[:N]`` after a non-zero exit, at most N times (0 = no
limit); ``always`` after any exit; ``unless-stopped`` likewise unless the user stopped it. A
user's ``stop`` or ``kill`` holds off every policy until the next ``start``; at daemon start
``always`` containers are started even so, ``unless-stopped`` ones are not. The delay
doubles from 100 ms up to one minute, and falls back to 100 ms once a run lasted 10 s.
"""

from __future__ import annotations

from dataclasses import dataclass

from servin.engine.containers.model import RestartPolicy
from servin.errors import InvalidArgument

POLICIES = ("no", "on-failure", "always", "unless-stopped")
FIRST_DELAY = 0.1
MAX_DELAY = 60.0
STABLE_RUN = 10.0


def validate_policy(policy: RestartPolicy, auto_remove: bool) -> None:
    """Refuse policies docker refuses."""
    name = policy.name or "no"
    if name not in POLICIES:
        raise InvalidArgument(f"invalid restart policy {name!r} (no, on-failure[:N], always, "
                              "unless-stopped)")
    if policy.maximum_retry_count < 0:
        raise InvalidArgument("invalid restart policy: maximum retry count cannot be negative")
    if policy.maximum_retry_count and name != "on-failure":
        raise InvalidArgument(f"invalid restart policy: maximum retry count can only be used "
                              f"with 'on-failure', not {name!r}")
    if auto_remove and name != "no":
        raise InvalidArgument("conflicting options: cannot combine --restart and --rm")


def should_restart(policy: RestartPolicy, *, exit_code: int, restart_count: int,
                   manually_stopped: bool) -> bool:
    """Whether a container that just exited is to be started again."""
    name = policy.name or "no"
    if manually_stopped or name == "no":
        return False
    if name == "on-failure":
        limit = policy.maximum_retry_count
        return exit_code != 0 and (limit == 0 or restart_count < limit)
    return True


def restart_at_daemon_start(policy: RestartPolicy, *,
                            manually_stopped: bool) -> bool:
    """Whether a stopped container is started when the daemon starts."""
    name = policy.name or "no"
    return name == "always" or (name == "unless-stopped" and not manually_stopped)


@dataclass
class Backoff:
    """The delay before the next restart of one container."""

    delay: float = 0.0

    def next(self, ran_for: float) -> float:
        """The delay to wait now, given how long the last run lasted."""
        if ran_for >= STABLE_RUN or self.delay == 0.0:
            self.delay = FIRST_DELAY
        else:
            self.delay = min(self.delay * 2, MAX_DELAY)
        return self.delay
