"""Unbounded inputs get one clear InvalidArgument; hostile archives are bounded.

Names follow docker's rule with a length limit, labels/env/other metadata have size limits
(docs/security.md), sparse files stay sparse, a layer that unpacks past the daemon's
``max_layer_size`` is refused, and ``load`` refuses a config not named by its digest.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from servin.engine import limits
from tests.daemon import DaemonProcess

LONG = "a" * 10_000


def refused(result: object, *words: str) -> None:
    assert result.returncode != 0, result.stdout  # type: ignore[attr-defined]
    err = result.stderr  # type: ignore[attr-defined]
    assert "Traceback" not in err and "internal error" not in err, err
    assert len(err.strip().splitlines()) == 1, err
    for word in words:
        assert word in err, err


@pytest.mark.parametrize("command", [
    ["create", "--name", LONG, "busybox"],
    ["volume", "create", LONG],
    ["network", "create", LONG],
])
def test_long_names_are_refused(engine: DaemonProcess, command: list[str]) -> None:
    refused(engine.cli(*command), "at most 255")
    listed = engine.cli("ps", "-a", "--format", "{{.Names}}").stdout
    listed += engine.cli("volume", "ls", "-q").stdout + engine.cli("network", "ls").stdout
    assert LONG not in listed


def test_names_follow_dockers_characters(engine: DaemonProcess) -> None:
    refused(engine.cli("network", "create", "_under"), "invalid network name")
    refused(engine.cli("network", "create", "sp ace"), "invalid network name")
    refused(engine.cli("volume", "create", "--", "-dash"), "invalid volume name")
    refused(engine.cli("create", "--name", "a/b", "busybox"), "Invalid container name")
    longest = "n" * limits.NAME_MAX
    engine.cli("volume", "create", longest, check=True)
    engine.cli("volume", "rm", longest, check=True)


def api_refused(call: object, *words: str) -> None:
    from servin.errors import InvalidArgument

    with pytest.raises(InvalidArgument) as info:
        call()  # type: ignore[operator]
    for word in words:
        assert word in str(info.value), info.value


def test_oversized_metadata_is_refused(engine: DaemonProcess, tmp_path: Path) -> None:
    from servin.api.servin.v1 import containers_pb2, networks_pb2, volumes_pb2
    from servin.client.sync import Client

    # Bigger than one command-line argument may be: through the API.
    big = {f"k{i}": "x" * 100_000 for i in range(3)}
    with Client(engine.host) as client:
        api_refused(lambda: client.containers.Create(containers_pb2.CreateContainerRequest(
            spec=containers_pb2.ContainerSpec(image="busybox", labels=big))), "labels take")
        api_refused(lambda: client.volumes.Create(volumes_pb2.CreateVolumeRequest(
            name="vol-big", labels=big)), "labels take")
        api_refused(lambda: client.networks.Create(networks_pb2.CreateNetworkRequest(
            name="net-big", labels=big)), "labels take")
        api_refused(lambda: client.containers.Create(containers_pb2.CreateContainerRequest(
            spec=containers_pb2.ContainerSpec(image="busybox",
                                              env=["K=" + "z" * (limits.ARG_MAX + 1)]))),
            "environment entry")
        api_refused(lambda: client.containers.Create(containers_pb2.CreateContainerRequest(
            spec=containers_pb2.ContainerSpec(image="busybox",
                                              dns=["1.1.1.1"] * (limits.LIST_MAX + 1)))),
            "too many dns")
    env_file = tmp_path / "env"
    env_file.write_text("".join(f"V{i}={'y' * 1000}\n" for i in range(1100)))
    refused(engine.cli("create", "--env-file", str(env_file), "busybox"), "take")
    refused(engine.cli("create", "-w", "/" + "w" * limits.TEXT_MAX, "busybox"), "working dir")
    refused(engine.cli("commit", "-m", "m" * (limits.TEXT_MAX + 1), "nosuch", "x"))
    assert engine.cli("ps", "-aq").stdout.strip() == ""
    names = engine.cli("volume", "ls", "-q").stdout.split()
    assert "vol-big" not in names


def sparse_layer(path: Path, apparent: int) -> Path:
    """A tar holding one GNU-sparse file of ``apparent`` bytes with 4 KiB of data at its
    start and end (as ``tar --sparse`` writes it)."""
    data = b"S" * 4096
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as tar:
        info = tarfile.TarInfo("big.img")
        info.size = len(data) * 2
        tar.addfile(info, io.BytesIO(data + data))
    # tarfile cannot write sparse members: turn the regular member into an old-GNU sparse one
    # ('S' type, a map of two segments, the real size) by editing its header.
    raw = bytearray(path.read_bytes())
    header = raw[:512]
    header[156:157] = b"S"
    def octal(n: int, width: int) -> bytes:
        digits = f"{n:o}"  # NUL-terminated when it fits, else all ``width`` digits (as GNU)
        return (digits.zfill(width - 1).encode() + b"\0" if len(digits) < width
                else digits.zfill(width).encode())
    segments = [(0, 4096), (apparent - 4096, 4096)]
    for i, (offset, size) in enumerate(segments):
        base = 386 + i * 24
        header[base:base + 12] = octal(offset, 12)
        header[base + 12:base + 24] = octal(size, 12)
    header[482] = 0  # no extension headers
    header[483:495] = octal(apparent, 12)
    header[148:156] = b" " * 8
    header[148:156] = f"{sum(header):06o}".encode() + b"\0 "
    raw[:512] = header
    path.write_bytes(bytes(raw))
    return path


def test_sparse_files_stay_sparse(engine: DaemonProcess, tmp_path: Path) -> None:
    apparent = 10 * 1024**3
    layer = sparse_layer(tmp_path / "sparse.tar", apparent)
    assert layer.stat().st_size < 64 * 1024
    engine.cli("import", str(layer), "sparse:1", check=True)
    out = engine.cli("run", "--rm", "sparse:1", "/big.img").returncode  # not executable
    assert out != 0
    found = [p for p in (engine.root / "snapshots" / "layers").glob("*/fs/big.img")]
    assert found, "the layer was not unpacked"
    st = found[0].stat()
    assert st.st_size == apparent
    assert st.st_blocks * 512 < 1024 * 1024, f"{st.st_blocks * 512} bytes allocated"
    with open(found[0], "rb") as f:
        assert f.read(4096) == b"S" * 4096
        f.seek(apparent - 4096)
        assert f.read() == b"S" * 4096
        f.seek(apparent // 2)
        assert f.read(4096) == bytes(4096)
    engine.cli("rmi", "sparse:1", check=True)


def test_a_layer_past_the_cap_is_refused(daemon_factory: type[DaemonProcess],
                                         tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f"max_layer_size = {100 * 1024**2}\n")
    d = daemon_factory(extra_args=["--config", str(config)]).start()
    layer = sparse_layer(tmp_path / "bomb.tar", 10 * 1024**3)
    refused(d.cli("import", str(layer), "bomb:1"), "max_layer_size")
    assert "bomb" not in d.cli("images").stdout
    assert not list((d.root / "snapshots" / "layers").glob("*/fs/big.img"))
    # Within the cap an ordinary layer is fine.
    small = tmp_path / "small.tar"
    with tarfile.open(small, "w") as tar:
        info = tarfile.TarInfo("f")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"hello"))
    d.cli("import", str(small), "small:1", check=True)


def test_load_refuses_a_config_not_named_by_its_digest(engine: DaemonProcess,
                                                       tmp_path: Path) -> None:
    engine.cli("tag", "busybox", "renamed:1", check=True)
    archive = tmp_path / "saved.tar"
    engine.cli("save", "-o", str(archive), "renamed:1", check=True)
    engine.cli("rmi", "renamed:1", check=True)
    with tarfile.open(archive) as tar:
        members = {m.name: (m, tar.extractfile(m).read() if m.isfile() else None)
                   for m in tar.getmembers()}
    manifest = json.loads(members["manifest.json"][1])
    config_name = manifest[0]["Config"]
    config = json.loads(members[config_name][1])
    config["config"]["Labels"] = {"tampered": "yes"}
    tampered = json.dumps(config).encode()
    bad = tmp_path / "bad.tar"
    with tarfile.open(bad, "w") as out:
        for name, (member, data) in members.items():
            if name == config_name:
                member.size = len(tampered)
                data = tampered
            out.addfile(member, io.BytesIO(data) if data is not None else None)
    assert hashlib.sha256(tampered).hexdigest() not in config_name
    refused(engine.cli("load", "-i", str(bad)), "not to its name")
    assert "renamed" not in engine.cli("images").stdout
    # The untouched archive still loads.
    engine.cli("load", "-i", str(archive), check=True)
    engine.cli("rmi", "renamed:1", check=True)
    os.unlink(archive)
