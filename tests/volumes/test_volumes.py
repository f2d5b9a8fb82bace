"""Volumes, bind mounts and tmpfs against a real daemon and real containers."""

from __future__ import annotations

import io
import json
import os
import shutil
import stat
import subprocess
import sys
import tarfile
from pathlib import Path

from tests.containers.helpers import mounts_mentioning
from tests.daemon import DaemonProcess, short_tmpdir


def volume_names(engine: DaemonProcess, *filters: str) -> set[str]:
    """Volume names through the API (quicker than a CLI process per look)."""
    from servin.api.servin.v1 import common_pb2, volumes_pb2
    from servin.client.sync import Client

    wanted = [common_pb2.Filter(key=f.partition("=")[0], values=[f.partition("=")[2]])
              for f in filters]
    with Client(engine.host) as client:
        reply = client.volumes.List(volumes_pb2.ListVolumesRequest(filters=wanted))
    return {v.name for v in reply.volumes}


def mountpoint(engine: DaemonProcess, name: str) -> Path:
    from servin.api.servin.v1 import volumes_pb2
    from servin.client.sync import Client

    with Client(engine.host) as client:
        return Path(client.volumes.Inspect(volumes_pb2.InspectVolumeRequest(name=name)).mountpoint)


def container_names(engine: DaemonProcess) -> set[str]:
    from servin.api.servin.v1 import containers_pb2
    from servin.client.sync import Client

    with Client(engine.host) as client:
        reply = client.containers.List(containers_pb2.ListContainersRequest(all=True))
    return {c.name for c in reply.containers}


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode in (1, 125), result  # 1: refused by the CLI, 125: the daemon
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0]


def test_named_volume_outlives_its_container(engine: DaemonProcess) -> None:
    engine.cli("volume", "create", "--label", "team=db", "keep", check=True)
    engine.cli("run", "--name", "writer", "-v", "keep:/data", "busybox",
               "sh", "-c", "echo persisted > /data/file", check=True)
    engine.cli("rm", "-v", "writer", check=True)  # -v removes anonymous volumes only
    assert "keep" in volume_names(engine)
    out = engine.cli("run", "--rm", "--mount", "type=volume,src=keep,dst=/again", "busybox",
                     "cat", "/again/file", check=True)
    assert out.stdout == "persisted\n"
    assert (mountpoint(engine, "keep") / "file").read_text() == "persisted\n"
    inspect = json.loads(engine.cli("volume", "inspect", "keep", check=True).stdout)[0]
    assert inspect["Labels"] == {"team": "db"} and inspect["Driver"] == "local"
    engine.cli("volume", "rm", "keep", check=True)


def test_a_volume_used_by_name_is_created_on_demand(engine: DaemonProcess) -> None:
    engine.cli("run", "--rm", "-v", "ondemand:/d", "busybox", "touch", "/d/x", check=True)
    assert "ondemand" in volume_names(engine)
    assert (mountpoint(engine, "ondemand") / "x").exists()
    engine.cli("volume", "rm", "ondemand", check=True)


def test_read_only_mounts_refuse_writes(engine: DaemonProcess, tmp_path: Path) -> None:
    for flags in (["-v", "rov:/data:ro"], ["--mount", "type=volume,source=rov,target=/data,ro"],
                  ["-v", f"{tmp_path}:/data:ro"]):
        out = engine.cli("run", "--rm", *flags, "busybox", "sh", "-c",
                         "touch /data/nope && echo wrote")
        assert out.returncode != 0 and "Read-only file system" in out.stderr, (flags, out)
    assert list(tmp_path.iterdir()) == []
    assert not any(mountpoint(engine, "rov").iterdir())
    engine.cli("volume", "rm", "rov", check=True)


def test_tmpfs_volume_and_tmpfs_mount_are_empty_in_each_container(
        engine: DaemonProcess) -> None:
    engine.cli("volume", "create", "--opt", "type=tmpfs", "--opt", "device=tmpfs",
               "--opt", "o=size=4m", "scratchvol", check=True)
    data = mountpoint(engine, "scratchvol")
    for _ in range(2):
        out = engine.cli("run", "--rm", "-v", "scratchvol:/s", "--tmpfs", "/t:size=1m",
                         "busybox", "sh", "-c",
                         "ls -A /s /t; echo x > /s/x; echo y > /t/y; grep -c ' /s tmpfs ' "
                         "/proc/mounts", check=True)
        assert out.stdout.split() == ["/s:", "/t:", "1"]
        # unmounted again once its last container stopped
        assert mounts_mentioning(str(data)) == []
    engine.cli("volume", "rm", "scratchvol", check=True)


def test_bind_mount_sees_changes_both_ways(engine: DaemonProcess, tmp_path: Path) -> None:
    host = tmp_path / "shared"
    host.mkdir()
    engine.cli("run", "-d", "--name", "binder", "-v", f"{host}:/shared",
               "--mount", f"type=bind,source={host},target=/also,bind-propagation=rslave",
               "busybox", "sleep", "300", check=True)
    try:
        (host / "from-host").write_text("host says hi\n")
        out = engine.cli("exec", "binder", "cat", "/shared/from-host", "/also/from-host",
                         check=True)
        assert out.stdout == "host says hi\n" * 2
        engine.cli("exec", "binder", "sh", "-c", "echo container says hi > /shared/from-ct",
                   check=True)
        assert (host / "from-ct").read_text() == "container says hi\n"
    finally:
        engine.cli("rm", "-f", "binder", check=True)


def test_v_creates_a_missing_host_path_but_mount_refuses(engine: DaemonProcess,
                                                         tmp_path: Path) -> None:
    made = tmp_path / "made" / "by" / "v"
    engine.cli("run", "--rm", "-v", f"{made}:/m", "busybox", "touch", "/m/f", check=True)
    assert (made / "f").exists()
    missing = tmp_path / "missing"
    before = container_names(engine)
    err = one_error_line(engine.cli("run", "--rm", "--mount",
                                    f"type=bind,source={missing},target=/m", "busybox", "true"))
    assert "does not exist" in err and str(missing) in err
    assert not missing.exists() and container_names(engine) == before


BAD_SPECS = [
    (["-v", "a:b:c:d"], "invalid volume specification"),
    (["-v", "vol:relative/path"], "must be absolute"),
    (["-v", "vol:/x:bogus"], "unknown option 'bogus'"),
    (["-v", "bad name!:/x"], "neither an absolute host path nor a volume name"),
    (["-v", "/:/"], "cannot mount over the root"),
    (["-v", "vol:/x:rshared"], "propagation applies to bind mounts only"),
    (["--mount", "type=bind,target=/x"], "needs a source"),
    (["--mount", "type=volume,source=v"], "target is required"),
    (["--mount", "type=nfs,target=/x"], "type must be bind, volume or tmpfs"),
    (["--mount", "type=volume,target=/x,colour=blue"], "unexpected key 'colour'"),
    (["--mount", "type=tmpfs,target=/x,source=foo"], "a tmpfs takes no source"),
    (["--tmpfs", "/x:size=lots"], "invalid tmpfs size"),
    (["--tmpfs", "/x:mode=999"], "invalid tmpfs mode"),
    (["-v", "dupvol:/x", "-v", "dupvol2:/x"], "duplicate mount point: /x"),
    (["--volumes-from", "no-such-container"], "No such container"),
    (["-v", "okvol:/x", "--mount", "type=bind,source=/no/such/dir,target=/y"],
     "does not exist"),
]


def test_bad_mount_specs_give_one_error_and_create_nothing(engine: DaemonProcess) -> None:
    volumes_before = volume_names(engine)
    containers_before = container_names(engine)
    for flags, needle in BAD_SPECS:
        err = one_error_line(engine.cli("run", "--rm", *flags, "busybox", "true"))
        assert needle in err, (flags, err)
    assert volume_names(engine) == volumes_before
    assert container_names(engine) == containers_before


def test_volume_rm_while_in_use_is_refused(engine: DaemonProcess) -> None:
    engine.cli("create", "--name", "holder", "-v", "busy:/b", "busybox", "true", check=True)
    err = one_error_line(engine.cli("volume", "rm", "busy"))
    assert "volume is in use" in err
    assert "busy" in volume_names(engine)
    assert "busy" not in volume_names(engine, "dangling=true")
    engine.cli("rm", "holder", check=True)
    assert "busy" in volume_names(engine, "dangling=true")
    engine.cli("volume", "rm", "busy", check=True)
    assert "Error: get busy: no such volume" in engine.cli("volume", "rm", "busy").stderr
    assert engine.cli("volume", "rm", "-f", "busy").returncode == 0


def test_copy_up_fills_an_empty_volume_from_the_image(engine: DaemonProcess) -> None:
    engine.cli("run", "--rm", "-v", "appdata:/app", "appimg",
               "sh", "-c", "echo changed > /app/config.txt", check=True)
    data = mountpoint(engine, "appdata")
    st = data.stat()
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o750, 1000, 2000)
    cfg = (data / "config.txt").stat()
    assert (stat.S_IMODE(cfg.st_mode), cfg.st_uid, cfg.st_gid) == (0o640, 1000, 2000)
    assert os.readlink(data / "link") == "config.txt"
    assert (data / "hard").stat().st_ino == cfg.st_ino
    # Not empty any more: the next mount keeps the data instead of copying again.
    out = engine.cli("run", "--rm", "-v", "appdata:/app", "appimg", "cat", "/app/config.txt",
                     check=True)
    assert out.stdout == "changed\n"
    # nocopy leaves a new volume empty
    out = engine.cli("run", "--rm", "-v", "fresh:/app:nocopy", "appimg", "ls", "-A", "/app",
                     check=True)
    assert out.stdout == ""
    engine.cli("volume", "rm", "appdata", "fresh", check=True)


def test_anonymous_volumes_from_the_image_and_their_removal(engine: DaemonProcess) -> None:
    before = volume_names(engine)
    engine.cli("run", "--name", "anon", "appimg", "cat", "/app/config.txt", check=True)
    created = volume_names(engine) - before
    assert len(created) == 1
    (anon,) = created
    assert (mountpoint(engine, anon) / "config.txt").read_text() == "from the image\n"
    mounts = json.loads(engine.cli("inspect", "--format", "{{json .Mounts}}", "anon",
                                   check=True).stdout)
    assert mounts == [{"Type": "volume", "Name": anon, "Source": str(mountpoint(engine, anon)),
                       "Destination": "/app", "Mode": "", "RW": True, "Propagation": "",
                       "Driver": "local"}]
    engine.cli("rm", "-v", "anon", check=True)
    assert volume_names(engine) == before
    # run --rm removes them too; a user's -v on the same path replaces the anonymous one
    engine.cli("run", "--rm", "appimg", "true", check=True)
    engine.cli("run", "--rm", "-v", "named-app:/app", "appimg", "true", check=True)
    assert volume_names(engine) == before | {"named-app"}
    engine.cli("volume", "rm", "named-app", check=True)


def test_volumes_from_shares_mounts_with_a_mode(engine: DaemonProcess, tmp_path: Path) -> None:
    engine.cli("create", "--name", "source-ct", "-v", "shared-vol:/data", "-v",
               f"{tmp_path}:/hostdir", "busybox", "true", check=True)
    try:
        engine.cli("run", "--rm", "--volumes-from", "source-ct", "busybox", "sh", "-c",
                   "echo one > /data/a && echo two > /hostdir/b", check=True)
        out = engine.cli("run", "--rm", "--volumes-from", "source-ct:ro", "busybox", "sh", "-c",
                         "cat /data/a /hostdir/b; touch /data/c")
        assert out.stdout == "one\ntwo\n" and "Read-only file system" in out.stderr
    finally:
        engine.cli("rm", "source-ct", check=True)
        engine.cli("volume", "rm", "shared-vol", check=True)


def test_ls_filters_and_prune(engine: DaemonProcess) -> None:
    base = volume_names(engine)
    engine.cli("volume", "create", "--label", "env=test", "pruneme", check=True)
    engine.cli("volume", "create", "keepme", check=True)
    engine.cli("create", "--name", "anonholder", "appimg", "true", check=True)
    anon = (volume_names(engine) - base - {"pruneme", "keepme"}).pop()
    assert volume_names(engine, "label=env=test") == {"pruneme"}
    assert volume_names(engine, "name=keep") == {"keepme"}
    assert anon not in volume_names(engine, "dangling=true")
    table = engine.cli("volume", "ls", "--format", "{{.Name}}:{{.Driver}}", check=True).stdout
    assert "keepme:local" in table.split()
    # default prune: unused anonymous volumes only (none: the anonymous one is in use)
    out = engine.cli("volume", "prune", "-f", check=True).stdout
    assert "pruneme" not in out and volume_names(engine) >= {"pruneme", "keepme", anon}
    engine.cli("rm", "anonholder", check=True)
    out = engine.cli("volume", "prune", "-f", check=True).stdout
    assert anon in out and anon not in volume_names(engine)
    out = engine.cli("volume", "prune", "-a", "-f", "--filter", "label=env=test",
                     check=True).stdout
    assert "pruneme" in out and "keepme" in volume_names(engine)
    engine.cli("volume", "prune", "-a", "-f", check=True)
    assert "keepme" not in volume_names(engine)


def _tree(root: Path) -> dict[str, tuple]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            rel = str(p.relative_to(root))
            link = os.readlink(p) if p.is_symlink() else ""
            content = p.read_bytes() if stat.S_ISREG(st.st_mode) else b""
            out[rel] = (st.st_mode, st.st_uid, st.st_gid, link, content, st.st_nlink)
    return out


def test_volume_export_import_round_trip(engine: DaemonProcess) -> None:
    engine.cli("run", "--rm", "-v", "backup-src:/v", "busybox", "sh", "-c",
               "mkdir -p /v/dir/sub && echo data > /v/dir/file && chown 1234:5678 /v/dir/file "
               "&& chmod 4751 /v/dir/file && chown 42:43 /v/dir/sub && chmod 700 "
               "/v/dir/sub && ln -s ../dir/file /v/dir/sub/link && ln /v/dir/file /v/hard "
               "&& mkfifo /v/fifo", check=True)
    backup = short_tmpdir() / "backup.tar"
    try:
        engine.cli("volume", "export", "-o", str(backup), "backup-src", check=True)
        with open(backup, "rb") as f:
            engine.cli("volume", "import", "backup-dst", input=f.read(), check=True)
        src, dst = _tree(mountpoint(engine, "backup-src")), _tree(mountpoint(engine, "backup-dst"))
        assert src == dst and "dir/sub/link" in dst and dst["hard"][5] == 2
        data = mountpoint(engine, "backup-dst")
        assert (data / "hard").stat().st_ino == (data / "dir" / "file").stat().st_ino
        assert dst["dir/file"][1:3] == (1234, 5678) and stat.S_IMODE(dst["dir/file"][0]) == 0o4751
        # the same through stdout/stdin
        raw = subprocess.run([sys.executable, "-m", "servin", "-H", engine.host, "volume",
                              "export", "backup-src"], capture_output=True, check=True).stdout
        engine.cli("volume", "import", "backup-dst2", "-", input=raw, check=True)
        assert _tree(mountpoint(engine, "backup-dst2")) == src
    finally:
        shutil.rmtree(backup.parent, ignore_errors=True)
        engine.cli("volume", "rm", "backup-src", "backup-dst", "backup-dst2")


def test_volume_import_refuses_entries_escaping_the_volume(engine: DaemonProcess) -> None:
    for name in ("../escape", "/abs", "ok/../../escape"):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            good = tarfile.TarInfo("fine")
            tar.addfile(good, io.BytesIO(b""))
            evil = tarfile.TarInfo(name)
            evil.size = 4
            tar.addfile(evil, io.BytesIO(b"evil"))
        err = one_error_line(engine.cli("volume", "import", "restore-target", input=buf.getvalue()))
        assert "outside" in err
        assert "restore-target" not in volume_names(engine)
    assert not (engine.root / "volumes" / "escape").exists()


def test_container_start_failure_does_not_leave_a_type_mount(engine: DaemonProcess) -> None:
    engine.cli("volume", "create", "--opt", "type=tmpfs", "--opt", "device=tmpfs",
               "tmpv", check=True)
    out = engine.cli("run", "--rm", "-v", "tmpv:/t", "busybox", "/no/such/binary")
    assert out.returncode != 0
    assert mounts_mentioning(str(mountpoint(engine, "tmpv"))) == []
    engine.cli("volume", "rm", "tmpv", check=True)
