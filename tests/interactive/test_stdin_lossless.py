"""stdin through ``exec -i`` and ``run -i`` arrives whole and ends with EOF, whatever the size,
however slowly the program reads, and whether or not it still has an output open.

Two monitor bugs made ``exec -i C dd of=FILE bs=512 < 1.5MB`` hang or cut the data: reading
from the client resumed only if the stdin buffer emptied in the very write that found it full
(so a slow reader left the client unread for ever), and the attach stream (and so the
process's stdin) was ended as soon as the process's outputs were closed, which busybox
``dd of=FILE`` does at once (it moves FILE onto fd 1). Several cases run at once: the load.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.daemon import DaemonProcess

MB = 1024 * 1024

# (name, command line after the container or image, stdin size, runs). ``{out}`` is the file
# the program writes in the container.
CASES = [
    # The command line: dd reads 512 bytes at a time and closes its stdout at once.
    ("exec-dd", ["dd", "of={out}", "bs=512"], 3 * MB // 2, 3),
    # Reads only after a second (the buffer fills and reading pauses), no output at all.
    ("exec-late-dd", ["sh", "-c", "sleep 1; exec dd of={out} bs=512 2>/dev/null"], 2 * MB, 2),
    ("exec-cat", ["sh", "-c", "cat > {out}"], 3 * MB // 2, 2),
    ("exec-big", ["sh", "-c", "sleep 0.5; cat > {out}"], 12 * MB, 1),
]


@pytest.fixture(scope="module")
def box(engine: DaemonProcess) -> str:
    cid = engine.cli("run", "-d", "busybox", "sleep", "600", check=True).stdout.strip()
    yield cid
    engine.cli("rm", "-f", cid)


def _md5_in(engine: DaemonProcess, cid: str, path: str) -> str:
    out = engine.cli("exec", cid, "md5sum", path, check=True).stdout
    return out.split()[0]


def test_exec_stdin_is_lossless_and_ends(engine: DaemonProcess, box: str) -> None:
    jobs = []
    for name, argv, size, runs in CASES:
        for run in range(runs):
            data = os.urandom(size)
            out = f"/tmp/{name}-{run}"
            jobs.append((name, [a.replace("{out}", out) for a in argv], data, out))

    def one(job: tuple[str, list[str], bytes, str]) -> tuple[str, int, str, str]:
        name, argv, data, out = job
        r = engine.cli("exec", "-i", box, *argv, input=data, timeout=90)
        return name, r.returncode, r.stderr, out

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(one, jobs))
    for (name, _, data, _), (_, code, stderr, out) in zip(jobs, results, strict=True):
        assert code == 0, (name, stderr)
        assert _md5_in(engine, box, out) == hashlib.md5(data).hexdigest(), name


def test_run_stdin_is_lossless_when_the_output_closes_first(
    engine: DaemonProcess, tmp_path: Path
) -> None:
    data = os.urandom(2 * MB)
    name = "stdin-run"
    r = engine.cli("run", "-i", "--name", name, "busybox", "sh", "-c",
                   "sleep 1; exec dd of=/tmp/got bs=512 2>/dev/null", input=data, timeout=90)
    try:
        assert r.returncode == 0, r.stderr
        engine.cli("cp", f"{name}:/tmp/got", str(tmp_path / "got"), check=True)
        assert hashlib.md5((tmp_path / "got").read_bytes()).digest() == hashlib.md5(data).digest()
    finally:
        engine.cli("rm", "-f", name)

