"""``save`` / ``load`` round trips, archives from podman, and bad archives leaving nothing."""

from __future__ import annotations

import hashlib
import json
import os
import pty
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon import REPO, DaemonProcess, short_tmpdir
from tests.images.helpers import (
    EMPTY_STORE,
    docker_archive,
    image_config,
    oci_archive,
    sha256,
    store_state,
    tar_of,
)
from tests.snapshots.helpers import directory, file, make_tar


def _inspect(d: DaemonProcess, ref: str) -> dict:
    return json.loads(d.cli("image", "inspect", ref, check=True).stdout)[0]


def _save_to_stdout(d: DaemonProcess, *args: str) -> bytes:
    env = {k: v for k, v in os.environ.items() if k != "SERVIN_HOST"}
    return subprocess.run(
        [sys.executable, "-m", "servin", "-H", d.host, "save", *args],
        capture_output=True, check=True, cwd=REPO, env=env, timeout=120,
    ).stdout


def test_docker_archive_round_trip(
    daemon: DaemonProcess, busybox_image: str, tmp_path: Path
) -> None:
    daemon.cli("tag", "busybox", "example.com/team/bb:v1", check=True)
    before = _inspect(daemon, "busybox")
    archive = tmp_path / "bb.tar"
    daemon.cli("save", "-o", str(archive), "busybox", "example.com/team/bb:v1", check=True)
    assert not [p for p in tmp_path.iterdir() if p.name != "bb.tar"]  # no temp file left

    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
        [entry] = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        layer = tar.extractfile(entry["Layers"][0]).read()  # type: ignore[union-attr]
    assert entry["Config"] == busybox_image[7:] + ".json"
    assert sorted(entry["RepoTags"]) == ["busybox:latest", "example.com/team/bb:v1"]
    assert {"manifest.json", "repositories", entry["Config"]} <= names
    # Layers are uncompressed tars whose digest is the diff ID.
    assert sha256(layer) == before["RootFS"]["Layers"][0]

    daemon.cli("rmi", "busybox", "example.com/team/bb:v1", check=True)
    assert store_state(daemon) == EMPTY_STORE
    out = daemon.cli("load", "-i", str(archive), check=True).stdout
    assert "Loaded image: busybox:latest" in out and "Loaded image: example.com/team/bb:v1" in out
    after = _inspect(daemon, "example.com/team/bb:v1")
    assert after["Id"] == busybox_image
    assert after["RootFS"] == before["RootFS"]
    assert after["Config"] == before["Config"]
    run = daemon.cli("run", "--rm", "busybox", "cat", "/etc/passwd", check=True)
    assert run.stdout.startswith("root:")


def test_oci_archive_round_trip_keeps_manifest_digest(
    daemon: DaemonProcess, busybox_image: str
) -> None:
    before = _inspect(daemon, "busybox")
    data = _save_to_stdout(daemon, "--format", "oci-archive", "busybox")
    daemon.cli("rmi", "busybox", check=True)
    out = daemon.cli("load", "-q", input=data, check=True).stdout  # from stdin
    assert out.strip() == "Loaded image: busybox:latest"
    after = _inspect(daemon, "busybox")
    assert after["Id"] == busybox_image
    assert after["Descriptor"] == before["Descriptor"]
    # Loading again is idempotent.
    daemon.cli("load", "-q", input=data, check=True)
    assert daemon.cli("images", "-q", "--no-trunc", check=True).stdout.split() == [busybox_image]


def test_save_refuses_a_terminal_and_unknown_images(
    daemon: DaemonProcess, busybox_image: str, tmp_path: Path
) -> None:
    leader, follower = pty.openpty()
    try:
        env = {k: v for k, v in os.environ.items() if k != "SERVIN_HOST"}
        proc = subprocess.run(
            [sys.executable, "-m", "servin", "-H", daemon.host, "save", "busybox"],
            stdout=follower, stderr=subprocess.PIPE, cwd=REPO, env=env, timeout=60,
        )
    finally:
        os.close(follower)
        os.close(leader)
    assert proc.returncode != 0
    assert b"cowardly refusing to save to a terminal" in proc.stderr

    out = tmp_path / "x.tar"
    result = daemon.cli("save", "-o", str(out), "busybox", "nosuchimage")
    assert result.returncode != 0 and "nosuchimage" in result.stderr
    assert list(tmp_path.iterdir()) == []  # no partial file


PODMAN_FLAGS = ["--storage-driver", "vfs", "--events-backend", "none",
                "--cgroup-manager", "cgroupfs"]


@pytest.fixture
def podman() -> Iterator[list[str]]:
    """podman on its own root and runroot in temp dirs (nothing global is touched)."""
    exe = shutil.which("podman")
    assert exe, "podman is missing: run scripts/bootstrap"
    base = short_tmpdir("sv-pm-")  # podman refuses a runroot path over 50 characters
    cmd = [exe, "--root", str(base / "root"), "--runroot", str(base / "run"),
           "--tmpdir", str(base / "tmp"), *PODMAN_FLAGS]
    (base / "tmp").mkdir(parents=True)
    yield cmd
    subprocess.run([*cmd, "system", "reset", "--force"], capture_output=True, timeout=60)
    shutil.rmtree(base, ignore_errors=True)


@pytest.mark.parametrize("fmt", ["docker-archive", "oci-archive"])
def test_podman_archive_loads_and_runs(
    daemon: DaemonProcess, busybox_tar: Path, podman: list[str], tmp_path: Path, fmt: str
) -> None:
    def pm(*args: str) -> str:
        proc = subprocess.run([*podman, *args], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, f"podman {args[0]}: {proc.stderr}"
        return proc.stdout.strip()

    pm("import", "--change", 'CMD ["sh"]', str(busybox_tar), "localhost/pmbox:1")
    podman_id = pm("image", "inspect", "--format", "{{.Id}}", "localhost/pmbox:1")
    archive = tmp_path / "pm.tar"
    pm("save", "--format", fmt, "-o", str(archive), "localhost/pmbox:1")

    out = daemon.cli("load", "-i", str(archive), check=True).stdout
    assert "Loaded image: localhost/pmbox:1" in out
    # The image ID is the config digest, the same in podman and Servin.
    assert _inspect(daemon, "localhost/pmbox:1")["Id"] == "sha256:" + podman_id
    run = daemon.cli("run", "--rm", "localhost/pmbox:1", "sh", "-c", "echo from podman", check=True)
    assert run.stdout.strip() == "from podman"


@pytest.mark.parametrize("fmt", ["docker-archive", "oci-archive"])
def test_podman_loads_what_servin_saves(
    daemon: DaemonProcess, busybox_image: str, podman: list[str], tmp_path: Path, fmt: str
) -> None:
    archive = tmp_path / "servin.tar"
    daemon.cli("save", "--format", fmt, "-o", str(archive), "busybox", check=True)
    proc = subprocess.run([*podman, "load", "-i", str(archive)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "busybox:latest" in proc.stdout
    ids = subprocess.run([*podman, "images", "-q", "--no-trunc"], capture_output=True,
                         text=True, check=True, timeout=60).stdout.split()
    assert ids == [busybox_image]


def test_multi_layer_archive_with_whiteouts(daemon: DaemonProcess, tmp_path: Path) -> None:
    """Layers stack in order; a compressed layer in a docker-archive loads too."""
    import gzip

    from tests.snapshots.helpers import whiteout

    base = make_tar([directory("bin"), file("bin/sh", b"", 0o755), directory("data"),
                     file("data/a", "a"), file("data/b", "b")])
    top = make_tar([whiteout("data/a"), file("data/c", "c")])
    config = image_config([base, top])
    config_name = hashlib.sha256(config).hexdigest() + ".json"  # as docker names it
    files = {"l1.tar": base, "l2.tar.gz": gzip.compress(top, mtime=0),
             config_name: config,
             "manifest.json": json.dumps([{"Config": config_name, "RepoTags": ["two:layers"],
                                           "Layers": ["l1.tar", "l2.tar.gz"]}]).encode()}
    archive = tmp_path / "two.tar"
    archive.write_bytes(tar_of(files))
    daemon.cli("load", "-q", "-i", str(archive), check=True)
    detail = _inspect(daemon, "two:layers")
    assert detail["Id"] == sha256(config)
    assert detail["RootFS"]["Layers"] == [sha256(base), sha256(top)]
    # Saving it again gives uncompressed layers that load to the same image.
    out = tmp_path / "again.tar"
    daemon.cli("save", "-o", str(out), "two:layers", check=True)
    daemon.cli("rmi", "two:layers", check=True)
    daemon.cli("load", "-q", "-i", str(out), check=True)
    assert _inspect(daemon, "two:layers")["Id"] == sha256(config)


def test_docker_25_archive_is_both_layouts(daemon: DaemonProcess, tmp_path: Path) -> None:
    """docker 25+ writes an OCI layout plus a manifest.json naming blobs/sha256 paths; an
    unnamed index descriptor gets its name from manifest.json."""
    layer = make_tar([directory("bin"), file("bin/true", b"", 0o755)])
    members = _members(oci_archive([layer], "ignored"))
    index = json.loads(members["index.json"])
    del index["manifests"][0]["annotations"]
    members["index.json"] = json.dumps(index).encode()
    config = image_config([layer])
    members["manifest.json"] = json.dumps([{
        "Config": f"blobs/sha256/{sha256(config)[7:]}", "RepoTags": ["docker25:latest"],
        "Layers": [f"blobs/sha256/{sha256(layer)[7:]}"]}]).encode()
    archive = tmp_path / "d25.tar"
    archive.write_bytes(tar_of(members))
    out = daemon.cli("load", "-q", "-i", str(archive), check=True).stdout
    assert out.strip() == "Loaded image: docker25:latest"
    detail = _inspect(daemon, "docker25")
    assert detail["Id"] == sha256(config)
    assert detail["Descriptor"]["digest"] == index["manifests"][0]["digest"]


def _multi_platform_archive(platforms: list[str]) -> tuple[bytes, dict[str, str]]:
    """An OCI layout whose index.json names an image index with one image per platform;
    returns the archive and each platform's config digest."""
    files: dict[str, bytes] = {}
    manifests, configs = [], {}
    for arch in platforms:
        layer = make_tar([file(f"arch-{arch}", arch)])
        config = image_config([layer])
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": sha256(config), "size": len(config)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                        "digest": sha256(layer), "size": len(layer)}]}).encode()
        for blob in (layer, config, manifest):
            files[f"blobs/sha256/{sha256(blob)[7:]}"] = blob
        manifests.append({"mediaType": "application/vnd.oci.image.manifest.v1+json",
                          "digest": sha256(manifest), "size": len(manifest),
                          "platform": {"os": "linux", "architecture": arch}})
        configs[arch] = sha256(config)
    index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                        "manifests": manifests}).encode()
    files[f"blobs/sha256/{sha256(index)[7:]}"] = index
    files["index.json"] = json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.index.v1+json", "digest": sha256(index),
        "size": len(index),
        "annotations": {"io.containerd.image.name": "example.com/multi:1"}}]}).encode()
    files["oci-layout"] = b'{"imageLayoutVersion": "1.0.0"}'
    return tar_of(files), configs


def test_oci_index_picks_this_hosts_platform(daemon: DaemonProcess) -> None:
    from servin.engine.images.platforms import host_platform

    host = host_platform().architecture
    other = "s390x" if host != "s390x" else "arm64"
    data, configs = _multi_platform_archive([other, host])
    daemon.cli("load", "-q", input=data, check=True)
    assert _inspect(daemon, "example.com/multi:1")["Id"] == configs[host]
    daemon.cli("rmi", "example.com/multi:1", check=True)
    data, _ = _multi_platform_archive([other])
    refused = daemon.cli("load", input=data)
    assert refused.returncode != 0 and f"no manifest for linux/{host}" in refused.stderr
    assert store_state(daemon) == EMPTY_STORE


def _bad_archives() -> dict[str, tuple[bytes, str]]:
    layer = make_tar([file("etc/motd", "hi")])
    good = docker_archive([layer], ["bad:1"])
    wrong_diff = docker_archive([layer], ["bad:1"],
                                config=image_config([make_tar([file("other", "x")])]))
    oci = oci_archive([layer], "bad:1")
    oci_missing = tar_of({n: d for n, d in _members(oci).items() if sha256(layer)[7:] not in n})
    oci_tampered = tar_of({n: (d + b"x" if sha256(layer)[7:] in n else d)
                           for n, d in _members(oci).items()})
    return {
        "not-a-tar": (b"this is not a tar archive" * 100, "not a valid tar archive"),
        "empty-tar": (tar_of({}), "empty"),
        "no-index": (tar_of({"hello.txt": b"hi"}), "neither manifest.json"),
        "truncated": (good[: len(good) // 2], "archive"),
        "manifest-names-missing-file": (
            tar_of({**_members(good), "manifest.json": json.dumps(
                [{"Config": "nope.json", "RepoTags": [], "Layers": []}]).encode()}),
            "nope.json"),
        "diff-id-mismatch": (wrong_diff, "diff ID"),
        "bad-manifest-json": (tar_of({"manifest.json": b"{not json"}), "not valid JSON"),
        "oci-missing-layer": (oci_missing, "missing"),
        "oci-tampered-blob": (oci_tampered, "does not match its digest"),
    }


def _members(data: bytes) -> dict[str, bytes]:
    import io

    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}  # type: ignore[union-attr]


@pytest.fixture(scope="module")
def shared_daemon() -> Iterator[DaemonProcess]:
    """One daemon for the bad-archive cases (each leaves the store empty, or fails)."""
    d = DaemonProcess(short_tmpdir()).start()
    try:
        yield d
    finally:
        d.cleanup()


@pytest.mark.parametrize("case", list(_bad_archives()))
def test_bad_archive_leaves_nothing(shared_daemon: DaemonProcess, case: str) -> None:
    data, message = _bad_archives()[case]
    result = shared_daemon.cli("load", input=data)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert store_state(shared_daemon) == EMPTY_STORE


def _half_loaded(d: DaemonProcess) -> subprocess.Popen[bytes]:
    """A ``load`` whose client sent half an archive (two layers: one is complete) and waits."""
    first = make_tar([file("first", os.urandom(1 << 20))])
    second = make_tar([file("second", os.urandom(8 << 20))])
    data = docker_archive([first, second], ["half:1"])
    env = {k: v for k, v in os.environ.items() if k != "SERVIN_HOST"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "servin", "-H", d.host, "load"], stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO, env=env,
    )
    assert proc.stdin is not None
    proc.stdin.write(data[: len(data) // 2])
    proc.stdin.flush()
    # Wait until the first layer is stored and the second one is being written.
    ingest, blobs = d.root / "content/ingest", d.root / "content/blobs/sha256"

    def midway() -> bool:
        return bool(list(ingest.iterdir()) and list(blobs.iterdir()))

    deadline = time.monotonic() + 60
    while not midway() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert midway(), "the daemon never got halfway through the archive"
    return proc


def _wait_empty(d: DaemonProcess) -> dict[str, list[str]]:
    deadline = time.monotonic() + 60
    while (state := store_state(d)) != EMPTY_STORE and time.monotonic() < deadline:
        time.sleep(0.1)
    return state


def test_load_cut_off_by_the_client_leaves_nothing(daemon: DaemonProcess) -> None:
    proc = _half_loaded(daemon)
    proc.kill()
    proc.communicate()
    assert _wait_empty(daemon) == EMPTY_STORE


def test_load_interrupted_by_a_daemon_crash_is_collected_at_start(
    daemon_factory: type[DaemonProcess],
) -> None:
    d = daemon_factory().start()
    proc = _half_loaded(d)
    d.stop(signal.SIGKILL)
    proc.kill()
    proc.communicate()
    d.start()
    assert store_state(d) == EMPTY_STORE
