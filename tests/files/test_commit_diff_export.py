"""``diff``, ``commit`` (then ``run`` the new image) and ``export``."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path

from tests.daemon import DaemonProcess


def test_diff_commit_and_run_the_new_image(engine: DaemonProcess) -> None:
    engine.cli("run", "--name", "changer", "-v", "commitvol:/data", "-e", "FROM_RUN=1",
               "busybox", "sh", "-c",
               "echo new > /added.txt && echo changed >> /etc/passwd && rm /etc/group "
               "&& mkdir -p /newdir/sub && echo deep > /newdir/sub/f && echo vol > /data/v",
               check=True)
    changes = engine.cli("diff", "changer", check=True).stdout.splitlines()
    for line in ("A /added.txt", "C /etc", "C /etc/passwd", "D /etc/group", "A /newdir",
                 "A /newdir/sub/f"):
        assert line in changes, changes
    assert not any(line.endswith(("/data", "/data/v", "/etc/hostname")) for line in changes)
    image_id = engine.cli("commit", "-m", "my change", "-a", "Tester <t@example.com>",
                          "-c", 'CMD ["cat", "/added.txt"]', "-c", "ENV COMMITTED=yes",
                          "changer", "committed:v1", check=True).stdout.strip()
    assert image_id.startswith("sha256:")
    assert engine.cli("run", "--rm", "committed:v1", check=True).stdout == "new\n"
    out = engine.cli("run", "--rm", "committed:v1", "sh", "-c",
                     "tail -1 /etc/passwd; ls /etc/group 2>&1; cat /newdir/sub/f; "
                     "ls -A /data; echo $COMMITTED $FROM_RUN", check=True).stdout
    assert out.splitlines() == ["changed", "ls: /etc/group: No such file or directory", "deep",
                                "yes 1"]
    detail = json.loads(engine.cli("image", "inspect", "committed:v1", check=True).stdout)[0]
    assert detail["Id"] == image_id
    assert detail["Config"]["Cmd"] == ["cat", "/added.txt"]
    assert "COMMITTED=yes" in detail["Config"]["Env"]
    assert (detail["Comment"], detail["Author"]) == ("my change", "Tester <t@example.com>")
    # a commit of a commit stacks another layer
    engine.cli("run", "--name", "changer2", "committed:v1", "sh", "-c", "rm /added.txt",
               check=True)
    engine.cli("commit", "changer2", "committed:v2", check=True)
    assert engine.cli("run", "--rm", "committed:v2", "ls", "/added.txt").returncode != 0
    bad = engine.cli("commit", "-c", "FROBNICATE now", "changer", "committed:bad")
    assert bad.returncode != 0 and "not a valid change command" in bad.stderr
    for name in ("changer", "changer2"):
        engine.cli("rm", name, check=True)
    engine.cli("rmi", "committed:v2", "committed:v1", check=True)
    engine.cli("volume", "rm", "commitvol", check=True)


def test_commit_of_a_running_container(engine: DaemonProcess) -> None:
    engine.cli("run", "-d", "--name", "livecommit", "busybox", "sh", "-c",
               "echo live > /live.txt; sleep 600", check=True)
    try:
        for _ in range(100):
            if engine.cli("exec", "livecommit", "cat", "/live.txt").stdout == "live\n":
                break
        engine.cli("commit", "livecommit", "live:snap", check=True)
        state = engine.cli("inspect", "-f", "{{.State.Status}}", "livecommit", check=True)
        assert state.stdout.strip() == "running"  # paused during the commit, then resumed
        out = engine.cli("run", "--rm", "live:snap", "cat", "/live.txt", check=True)
        assert out.stdout == "live\n"
    finally:
        engine.cli("rm", "-f", "livecommit", check=True)
        engine.cli("rmi", "live:snap")


def test_export_is_the_flattened_filesystem_without_volumes(engine: DaemonProcess,
                                                            tmp_path: Path) -> None:
    engine.cli("run", "--name", "exporter", "-v", "exportvol:/data", "busybox", "sh", "-c",
               "echo mine > /mine.txt; rm /etc/group; echo vol > /data/in-volume", check=True)
    try:
        target = tmp_path / "fs.tar"
        engine.cli("export", "-o", str(target), "exporter", check=True)
        with tarfile.open(target) as tar:
            names = set(tar.getnames())
            assert tar.extractfile("mine.txt").read() == b"mine\n"  # type: ignore[union-attr]
        assert {"bin/busybox", "etc/passwd", "mine.txt"} <= names
        assert "etc/group" not in names and "data/in-volume" not in names
        # to stdout as well, and of a running container
        engine.cli("start", "exporter", check=True)
        raw = subprocess.run([sys.executable, "-m", "servin", "-H", engine.host, "export",
                              "exporter"], capture_output=True, check=True).stdout
        assert len(raw) > 10240 and raw[257:262] == b"ustar"
    finally:
        engine.cli("rm", "-f", "exporter", check=True)
        engine.cli("volume", "rm", "exportvol", check=True)
