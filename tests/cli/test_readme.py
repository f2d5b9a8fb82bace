"""The README's Usage block runs as written, top to bottom, against a fresh daemon.

Only what a shared test machine forces is changed: the two interactive lines (a shell, the
console) are left out, the host ports 8080 and 5000 become free ones, the registry's storage
goes to the test's directory, and ``$PWD/.venv`` is this checkout's (the block runs in a temp
dir so the files it makes land there).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess

from tests.daemon import REPO, DaemonProcess

INTERACTIVE = ("servin exec -it", "servin tui")


def usage_block() -> list[str]:
    text = (REPO / "README.md").read_text()
    section = text.split("## Usage", 1)[1]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    return block.splitlines()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_readme_usage_runs_top_to_bottom(daemon: DaemonProcess, tmp_path) -> None:
    lines = usage_block()
    assert any(line.startswith("servin run") for line in lines)
    web, registry = _free_port(), _free_port()
    script = []
    for line in lines:
        if line.startswith(INTERACTIVE):
            continue
        line = line.replace("$PWD/.venv", str(REPO / ".venv"))
        line = line.replace("127.0.0.1:8080:", f"127.0.0.1:{web}:")
        line = line.replace("127.0.0.1:5000", f"127.0.0.1:{registry}")
        line = line.replace("/tmp/registry", str(tmp_path / "registry"))
        script.append(line)
    (tmp_path / "usage.sh").write_text("set -euo pipefail\n" + "\n".join(script) + "\n")
    env = {**os.environ, "SERVIN_HOST": daemon.host}
    proc = subprocess.Popen(["bash", "-x", "usage.sh"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True, stdin=subprocess.DEVNULL)
    try:
        out, _ = proc.communicate(timeout=600)
    finally:
        # The block's background registry is in the script's process group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    text = out.decode(errors="replace")
    assert proc.returncode == 0, text[-4000:]
    assert "hello\n" in text  # run --rm busybox echo hello
    assert "prod\n" in text  # the imported image's CMD with its ENV
    assert re.search(r"^A /tmp/site\.html$", text, re.M), text[-4000:]  # cp then diff
    assert "hi from /root" in text  # --init, -e, HOME
    assert f"127.0.0.1:{registry}/team/busybox" in text  # push then search
