"""A test "pod": a process in a network namespace of its own, running podserver.py."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from servin.engine.linux.prctl import set_pdeathsig

PODSERVER = Path(__file__).with_name("podserver.py")


class NetnsPod:
    """Runs the pod servers in a fresh network namespace (``unshare --net``); stop() ends it."""

    def __init__(self, blob: Path) -> None:
        self.blob = blob
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> NetnsPod:
        self.proc = subprocess.Popen(
            ["unshare", "--net", sys.executable, str(PODSERVER), str(self.blob)],
            stdout=subprocess.PIPE, text=True,
            # The pod dies with the test process, however that one ends.
            preexec_fn=lambda: set_pdeathsig(signal.SIGKILL))
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if line.strip() != "ready":
            self.stop()
            raise RuntimeError(f"the netns pod did not start: {line!r}")
        return self

    @property
    def netns_path(self) -> str:
        assert self.proc is not None
        return f"/proc/{self.proc.pid}/ns/net"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
