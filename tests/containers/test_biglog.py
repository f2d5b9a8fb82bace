"""`logs` of a 1 GiB json-file log through the real CLI: every line, in order, while the
daemon's memory stays flat (the reader streams the file in chunks, it never holds it).

The log is written straight into the container's log file in the json-file format (a
container printing 1 GiB would take far longer than reading it back)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

from tests.daemon import REPO, DaemonProcess

LOG_BYTES = 1 << 30
LINES_PER_BLOCK = 4096
SLOT = b"@@@@@@@@"  # the block number goes here, so every line of the log is unique
RSS_LIMIT_MB = 20


def templates() -> tuple[bytes, bytes]:
    """(one block of log file, the output that block prints), with SLOT placeholders."""
    file_lines, out_lines = [], []
    for i in range(LINES_PER_BLOCK):
        text = b"%s-%04d the quick brown fox jumps over the lazy dog %s\n" % (SLOT, i, b"x" * 30)
        out_lines.append(text)
        stream = b"stdout"
        file_lines.append(b'{"log":"%s\\n","stream":"%s","time":"2026-01-02T03:04:%02d.%09dZ"}\n'
                          % (text[:-1], stream, i % 60, i))  # fmt: skip
    return b"".join(file_lines), b"".join(out_lines)


def vm_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_one_gib_log_read_through_complete_in_order_in_bounded_memory(
    engine: DaemonProcess,
) -> None:
    engine.cli("create", "--name", "biglog", "busybox", "true", check=True)
    inspect = engine.cli("inspect", "-f", "{{.LogPath}}", "biglog", check=True)
    log_path = Path(inspect.stdout.strip())
    file_block, out_block = templates()
    blocks = LOG_BYTES // len(file_block) + 1
    with open(log_path, "wb") as f:
        for n in range(blocks):
            f.write(file_block.replace(SLOT, b"%08d" % n))
    assert log_path.stat().st_size >= LOG_BYTES
    try:
        last = out_block.splitlines(keepends=True)[-1].replace(SLOT, b"%08d" % (blocks - 1))
        assert engine.cli("logs", "--tail", "1", "biglog", check=True).stdout.encode() == last
        daemon_pid = engine.proc.pid  # type: ignore[union-attr]
        base = vm_rss_mb(daemon_pid)
        peak = [base]
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.02):
                peak[0] = max(peak[0], vm_rss_mb(daemon_pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        env = {k: v for k, v in os.environ.items() if k != "SERVIN_HOST"}
        argv = [sys.executable, "-m", "servin", "-H", engine.host, "logs", "biglog"]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO,
                                env=env)  # fmt: skip
        assert proc.stdout is not None
        try:
            for n in range(blocks):
                want = out_block.replace(SLOT, b"%08d" % n)
                got = proc.stdout.read(len(want))
                assert got == want, f"block {n} differs"
            assert proc.stdout.read() == b""
            assert proc.wait(120) == 0, proc.stderr.read() if proc.stderr else ""
        finally:
            done.set()
            sampler.join()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert peak[0] - base < RSS_LIMIT_MB, f"daemon RSS grew {peak[0] - base:.1f} MB"
    finally:
        engine.cli("rm", "-f", "biglog")
