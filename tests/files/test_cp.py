"""``cp`` both ways on running and stopped containers, resolved inside the container root."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.daemon import DaemonProcess


def cli_bytes(engine: DaemonProcess, *args: str, input: bytes | None = None) -> bytes:
    """The CLI's raw stdout (tar streams)."""
    return subprocess.run([sys.executable, "-m", "servin", "-H", engine.host, *args],
                          input=input, capture_output=True, check=True).stdout


@pytest.fixture
def box(engine: DaemonProcess) -> str:
    """A running container with a volume at /data, removed (with the volume) afterwards."""
    engine.cli("run", "-d", "--name", "box", "-v", "cpvol:/data", "busybox", "sleep", "600",
               check=True)
    try:
        yield "box"
    finally:
        engine.cli("rm", "-f", "box", check=True)
        engine.cli("volume", "rm", "cpvol", check=True)


def host_tree(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "file.txt").write_text("file\n")
    (src / "sub" / "deep.txt").write_text("deep\n")
    os.chmod(src / "file.txt", 0o640)
    os.symlink("file.txt", src / "link")
    return src


@pytest.mark.parametrize("state", ["running", "stopped"])
def test_cp_both_ways(engine: DaemonProcess, box: str, tmp_path: Path, state: str) -> None:
    if state == "stopped":
        engine.cli("stop", "-t", "0", box, check=True)
    src = host_tree(tmp_path)
    engine.cli("cp", str(src / "file.txt"), f"{box}:/tmp/", check=True)       # into a dir
    engine.cli("cp", str(src / "file.txt"), f"{box}:/renamed.txt", check=True)  # as a name
    engine.cli("cp", str(src), f"{box}:/copied", check=True)                  # a whole dir
    engine.cli("cp", f"{src}/.", f"{box}:/tmp", check=True)                   # dir contents
    engine.cli("cp", str(src / "file.txt"), f"{box}:/data/", check=True)      # into the volume
    out = tmp_path / "out"
    out.mkdir()
    engine.cli("cp", f"{box}:/copied", str(out), check=True)
    engine.cli("cp", f"{box}:/renamed.txt", str(out / "back.txt"), check=True)
    engine.cli("cp", f"{box}:/tmp/sub/deep.txt", str(out), check=True)
    engine.cli("cp", f"{box}:/data/file.txt", str(out / "from-volume"), check=True)
    assert (out / "copied" / "sub" / "deep.txt").read_text() == "deep\n"
    assert os.readlink(out / "copied" / "link") == "file.txt"
    assert (out / "back.txt").read_text() == "file\n"
    assert (out / "deep.txt").read_text() == "deep\n"
    assert (out / "from-volume").read_text() == "file\n"
    assert oct((out / "copied" / "file.txt").stat().st_mode & 0o777) == oct(0o640)
    volume = Path(engine.cli("volume", "inspect", "-f", "{{.Mountpoint}}", "cpvol",
                             check=True).stdout.strip())
    assert (volume / "file.txt").read_text() == "file\n"
    # tar streams: - as the destination writes one, - as the source reads one
    raw = cli_bytes(engine, "cp", f"{box}:/copied", "-")
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        assert {"copied", "copied/file.txt", "copied/sub/deep.txt", "copied/link"} <= set(
            tar.getnames())
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("streamed/hello")
        info.size, info.uid, info.gid = 3, 4321, 8765
        tar.addfile(info, io.BytesIO(b"hi\n"))
    cli_bytes(engine, "cp", "-a", "-", f"{box}:/tmp", input=buf.getvalue())
    engine.cli("start", box, check=True)
    listing = engine.cli("exec", box, "sh", "-c",
                         "cat /tmp/streamed/hello /copied/sub/deep.txt /tmp/file.txt "
                         "/renamed.txt; stat -c '%u:%g' /tmp/streamed/hello /renamed.txt",
                         check=True).stdout
    assert listing == "hi\ndeep\nfile\nfile\n4321:8765\n0:0\n"


def test_cp_errors(engine: DaemonProcess, box: str, tmp_path: Path) -> None:
    missing = engine.cli("cp", f"{box}:/no/such/file", str(tmp_path))
    assert missing.returncode != 0 and "Could not find the file /no/such/file" in missing.stderr
    both = engine.cli("cp", f"{box}:/etc/passwd", f"{box}:/tmp/x")
    assert "copying between containers is not supported" in both.stderr
    neither = engine.cli("cp", str(tmp_path), str(tmp_path / "x"))
    assert "must specify at least one container source" in neither.stderr
    d = tmp_path / "d"
    d.mkdir()
    to_file = engine.cli("cp", str(d), f"{box}:/etc/passwd")
    assert "cannot copy a directory to a file" in to_file.stderr


@pytest.mark.parametrize("state", ["running", "stopped"])
def test_cp_through_symlinks_stays_inside_the_container(
        engine: DaemonProcess, box: str, tmp_path: Path, state: str) -> None:
    # Links to /, /etc and a host path that exists (tmp_path): all resolve in the container.
    engine.cli("exec", box, "sh", "-c",
               f"ln -s / /rootlink; ln -s /etc /etclink; ln -s {tmp_path} /hostpath; "
               f"mkdir -p {tmp_path}", check=True)
    secret = tmp_path / "secret"
    secret.write_text("host secret\n")
    if state == "stopped":
        engine.cli("stop", "-t", "0", box, check=True)
    payload = tmp_path / "payload"
    payload.write_text("payload\n")
    marker = f"servin-cp-escape-{os.getpid()}-{state}"
    engine.cli("cp", str(payload), f"{box}:/rootlink/{marker}", check=True)
    engine.cli("cp", str(payload), f"{box}:/etclink/{marker}", check=True)
    engine.cli("cp", str(payload), f"{box}:/hostpath/{marker}", check=True)
    engine.cli("cp", str(payload), f"{box}:/hostpath/secret", check=True)
    assert not Path("/", marker).exists() and not Path("/etc", marker).exists()
    assert not (tmp_path / marker).exists()
    assert secret.read_text() == "host secret\n"
    # Reading through the link gets the container's file (the payload), not the host's.
    out = tmp_path / "read-back"
    engine.cli("cp", f"{box}:/hostpath/secret", str(out), check=True)
    assert out.read_text() == "payload\n"
    engine.cli("start", box, check=True)
    check = engine.cli("exec", box, "cat", f"/{marker}", f"/etc/{marker}",
                       f"{tmp_path}/{marker}", check=True).stdout
    assert check == "payload\n" * 3


def test_cp_races_a_container_swapping_a_path_component(
        engine: DaemonProcess, box: str, tmp_path: Path) -> None:
    """Container loops swap path components while cp writes and reads through them: /x is
    renamed (atomically) between links to a real directory, to / and to a host path; /y
    flips between a directory and a link to / (the classic swap). The host never changes."""
    sentinel_dir = tmp_path / "sentinel"
    sentinel_dir.mkdir()
    sentinel = sentinel_dir / "target"
    sentinel.write_text("untouched\n")
    before = sorted(os.listdir(sentinel_dir)), sorted(os.listdir("/"))
    engine.cli("exec", box, "sh", "-c",
               f"mkdir -p /real {sentinel_dir} && echo inside > /real/target && "
               "ln -s /real /x", check=True)
    engine.cli("exec", "-d", box, "sh", "-c",
               "while true; do ln -sfn / /n1; mv -fT /n1 /x; "
               f"ln -sfn {sentinel_dir} /n2; mv -fT /n2 /x; ln -sfn /real /n3; mv -fT /n3 /x; "
               "done", check=True)
    engine.cli("exec", "-d", box, "sh", "-c",
               "while true; do ln -sfn / /y; rm -f /y; mkdir -p /y; rm -rf /y; done",
               check=True)
    # Through the API in-process (a CLI process per copy would make the race rarer).
    from servin.api.servin.v1 import containers_pb2
    from servin.client.sync import Client
    from servin.errors import ServinError

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("target")
        info.size = len(b"overwritten\n")
        tar.addfile(info, io.BytesIO(b"overwritten\n"))
    landed = 0
    with Client(engine.host) as client:
        for _ in range(40):
            for path in ("/x", "/y"):
                try:
                    client.containers.CopyTo(iter([containers_pb2.CopyToInput(
                        id=box, path=path, data=buf.getvalue())]))
                    landed += 1
                except ServinError:
                    pass  # the component was missing or not a directory at that instant
                try:
                    reply = client.containers.CopyFrom(
                        containers_pb2.CopyFromRequest(id=box, path=f"{path}/target"))
                    data = b"".join(m.data for m in reply)
                except ServinError:
                    continue
                with tarfile.open(fileobj=io.BytesIO(data)) as tar:
                    member = tar.extractfile("target")
                    assert member is not None
                    assert member.read() in (b"inside\n", b"overwritten\n")
    engine.cli("exec", box, "pkill", "-f", "while true")
    assert sentinel.read_text() == "untouched\n"
    assert (sorted(os.listdir(sentinel_dir)), sorted(os.listdir("/"))) == before
    assert landed > 0  # the race ran against real copies, not only failures
