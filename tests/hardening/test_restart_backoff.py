"""A restart policy whose start keeps failing backs off (docker's doubling delay) instead of
retrying at once, and the container starts again once the cause is gone."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from tests.daemon import DaemonProcess, short_tmpdir
from tests.hardening.crashkit import wait_for


def test_failing_restarts_back_off(engine: DaemonProcess) -> None:
    source = short_tmpdir("sv-bind-")
    try:
        engine.cli("run", "-d", "--restart", "always", "--name", "flaky", "-v",
                   f"{source}:/data", "busybox", "sh", "-c", "sleep 0.2; exit 1", check=True)

        def restarts() -> int:
            out = engine.cli("inspect", "-f", "{{.RestartCount}}", "flaky", check=True)
            return int(out.stdout.strip())

        wait_for(lambda: restarts() >= 1, 30, "the first restart")
        shutil.rmtree(source)  # every start fails from now on: the bind source is gone
        # Past 10 s after the last real run: a run that long resets the delay, and failed
        # starts used to count as one (a retry every 100 ms, for ever).
        time.sleep(11)
        before = restarts()
        time.sleep(4)
        failed = restarts() - before
        # With the back-off the delay has doubled past a second by now; retrying at 100 ms
        # made dozens in 4 s. A slower machine only makes fewer.
        assert failed <= 5, f"{failed} restart attempts in 4 s: no back-off"
        state = engine.cli("inspect", "-f", "{{.State.Status}} {{.State.Error}}", "flaky",
                           check=True).stdout
        assert "restarting" in state or "exited" in state, state
        Path(source).mkdir()
        engine.cli("start", "flaky", check=True)  # start works once the cause is gone
    finally:
        engine.cli("rm", "-f", "flaky")
        shutil.rmtree(source, ignore_errors=True)
