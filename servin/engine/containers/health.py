"""Health checks: docker's HEALTHCHECK semantics, run inside the container by exec.

A container with a check starts ``starting``; each probe that exits 0 makes it ``healthy``
and resets the failing streak; ``retries`` failures in a row (a non-zero exit or a probe
that outlives ``timeout``) make it ``unhealthy``. Failures during ``start_period`` do not
count. The last five results are kept with their output (at most 4 KiB each).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from servin.engine.containers.model import HealthConfig, HealthResult
from servin.errors import InvalidArgument, ServinError

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 30.0
DEFAULT_TIMEOUT = 30.0
DEFAULT_RETRIES = 3
KEEP_RESULTS = 5
MAX_OUTPUT = 4096

STARTING = "starting"
HEALTHY = "healthy"
UNHEALTHY = "unhealthy"

# (container id, argv, timeout seconds) -> (exit code, output); raises ServinError if the
# probe cannot run at all.
Probe = Callable[[str, list[str], float], Awaitable[tuple[int, str]]]


@dataclass(frozen=True)
class HealthCheck:
    """A resolved health check."""

    argv: list[str]
    interval: float
    timeout: float
    start_period: float
    retries: int


def resolve_check(spec: HealthConfig | None, image: dict[str, Any]) -> HealthCheck | None:
    """The container's check: its own settings over the image's HEALTHCHECK; None if none."""
    image_check = image.get("Healthcheck") or {}
    test = list(spec.test) if spec is not None and spec.test else list(image_check.get("Test")
                                                                         or [])
    if spec is not None and spec.disabled:
        return None
    if not test or test[0] == "NONE":
        return None

    def seconds(ns_spec: int, image_key: str, default: float) -> float:
        ns = ns_spec or int(image_check.get(image_key) or 0)
        return ns / 1e9 if ns else default

    kind, args = test[0], test[1:]
    if kind == "CMD":
        argv = args
    elif kind == "CMD-SHELL":
        argv = ["/bin/sh", "-c", " ".join(args)]
    else:
        raise InvalidArgument(f"invalid health check test {test!r}: CMD, CMD-SHELL or NONE")
    if not argv:
        raise InvalidArgument("the health check has no command")
    retries = (spec.retries if spec is not None and spec.retries else
               int(image_check.get("Retries") or 0)) or DEFAULT_RETRIES
    return HealthCheck(
        argv=argv,
        interval=seconds(spec.interval_ns if spec else 0, "Interval", DEFAULT_INTERVAL),
        timeout=seconds(spec.timeout_ns if spec else 0, "Timeout", DEFAULT_TIMEOUT),
        start_period=seconds(spec.start_period_ns if spec else 0, "StartPeriod", 0.0),
        retries=retries,
    )


class HealthRunner:
    """Probes one container until cancelled, reporting each new status to ``on_change``."""

    def __init__(self, container_id: str, check: HealthCheck, probe: Probe,
                 on_result: Callable[[str, int, list[HealthResult]], Awaitable[None]],
                 started_at: float) -> None:
        self.container_id = container_id
        self.check = check
        self.probe = probe
        self.on_result = on_result
        self.started_at = started_at
        self.status = STARTING
        self.failing_streak = 0
        self.results: list[HealthResult] = []

    async def run(self) -> None:
        """Probe every ``interval`` until cancelled."""
        while True:
            await asyncio.sleep(self.check.interval)
            await self.probe_once()

    async def probe_once(self) -> None:
        """Run one probe and update the status."""
        start = time.time_ns()
        try:
            code, output = await asyncio.wait_for(
                self.probe(self.container_id, self.check.argv, self.check.timeout),
                self.check.timeout + 5)
        except TimeoutError:
            code, output = -1, f"Health check exceeded timeout ({self.check.timeout:g}s)"
        except ServinError as exc:
            code, output = -1, exc.message
        result = HealthResult(start_ns=start, end_ns=time.time_ns(), exit_code=code,
                              output=output[:MAX_OUTPUT])
        self.results = [*self.results, result][-KEEP_RESULTS:]
        in_start_period = time.time() - self.started_at < self.check.start_period
        if code == 0:
            self.failing_streak = 0
            self.status = HEALTHY
        elif not in_start_period:
            self.failing_streak += 1
            if self.failing_streak >= self.check.retries:
                self.status = UNHEALTHY
        await self.on_result(self.status, self.failing_streak, self.results)


class HealthChecks:
    """The running health checks of the daemon, one task per container."""

    def __init__(self) -> None:
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def start(self, runner: HealthRunner) -> None:
        """Begin probing (replacing an earlier runner for the container)."""
        self.stop(runner.container_id)
        task = asyncio.get_running_loop().create_task(runner.run())
        self._tasks[runner.container_id] = task

    def stop(self, container_id: str) -> None:
        """Stop probing a container."""
        task = self._tasks.pop(container_id, None)
        if task is not None:
            task.cancel()

    async def close(self) -> None:
        """Stop every runner."""
        for task in self._tasks.values():
            task.cancel()
        for task in list(self._tasks.values()):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
