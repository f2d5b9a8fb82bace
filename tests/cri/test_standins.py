"""The stand-ins for the images CRI tests pull (servin.devtools.critest_images): pushed to a
local registry, pulled by a daemon through registry mirrors, and doing what the tests need."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from servin.devtools import critest_images as ci
from tests.cri.conftest import BUSYBOX, NGINX
from tests.daemon import DaemonProcess, short_tmpdir
from tests.networking.helpers import fetch, free_port
from tests.registry.registryd import Registry

HTTPD = f"{ci.E2E}/httpd:2.4.39-4"
NONEWPRIVS = f"{ci.E2E}/nonewprivs:1.3"
PREDEFINED = f"{ci.STAGING}/test-image-predefined-group:latest"


@pytest.fixture(scope="module")
def mirrored(registry: Registry, pushed: dict[str, str]) -> Iterator[DaemonProcess]:
    """A daemon whose pulls of registry.k8s.io, gcr.io and k8s.gcr.io go to the registry."""
    base = short_tmpdir()
    config = base / "config.toml"
    base.mkdir(parents=True, exist_ok=True)
    config.write_text(ci.servin_mirrors(registry.host))
    d = DaemonProcess(base, ["--config", str(config)]).start()
    try:
        yield d
    finally:
        d.cleanup()


def test_every_reference_is_pushed_reproducibly(pushed: dict[str, str]) -> None:
    wanted = {ref for s in ci.stand_ins() for ref in s.references}
    assert set(pushed) == wanted
    # Same tags, same image; distinct images, distinct digests.
    tags = {pushed[f"{ci.STAGING}/test-image-tags:{t}"] for t in "123"}
    assert len(tags) == 1
    distinct = {pushed[f"{ci.STAGING}/test-image-{n}:latest"] for n in "123"}
    assert len(distinct) == 3
    assert pushed["registry.k8s.io/pause:3.9"] == pushed["k8s.gcr.io/pause:3.9"]
    base = ci.base_layer()
    again = ci.build(ci.stand_ins()[0], base)
    assert again.manifest.digest == pushed[BUSYBOX]


def test_mirror_snippets_name_every_registry() -> None:
    servin = ci.servin_mirrors("127.0.0.1:5999")
    containerd = ci.containerd_mirrors("127.0.0.1:5999")
    for domain in ci.MIRRORED:
        assert f'"{domain}" = ["http://127.0.0.1:5999"]' in servin
        assert f'registry.mirrors."{domain}"]' in containerd
    assert 'insecure = ["127.0.0.1:5999"]' in servin


def pull(d: DaemonProcess, ref: str) -> str:
    d.cli("pull", "-q", ref, check=True)
    return json.loads(d.cli("image", "inspect", ref, check=True).stdout)[0]["Id"]


def test_busybox_has_pgrep_ipcs_and_hard_linked_applets(mirrored: DaemonProcess) -> None:
    pull(mirrored, BUSYBOX)
    out = mirrored.cli("run", "--rm", BUSYBOX, "sh", "-c",
                       "sleep 30 & pgrep sleep; pgrep -x slee; echo none=$?", check=True)
    lines = out.stdout.split()
    assert lines[0].isdigit() and lines[-1] == "none=1", out.stdout
    # Applets are hard links (masking /bin/ls must not mask busybox itself).
    inodes = mirrored.cli("run", "--rm", BUSYBOX, "stat", "-c", "%i %h", "/bin/ls",
                          "/bin/busybox", check=True).stdout.split("\n")
    assert inodes[0] == inodes[1] and int(inodes[0].split()[1]) > 100
    # ipcs -m lists the segments of the IPC namespace (here the host's).
    made = subprocess.run(["ipcmk", "-M", "4096"], capture_output=True, text=True, check=True)
    shmid = made.stdout.strip().rsplit(" ", 1)[-1]
    try:
        listed = mirrored.cli("run", "--rm", "--ipc", "host", BUSYBOX, "ipcs", "-m",
                              check=True).stdout
        assert any(line.split()[1:2] == [shmid] for line in listed.splitlines()), listed
        private = mirrored.cli("run", "--rm", BUSYBOX, "ipcs", "-m", check=True).stdout
        assert "Shared Memory Segments" in private
        assert not any(line.split()[1:2] == [shmid] for line in private.splitlines())
    finally:
        subprocess.run(["ipcrm", "-m", shmid], check=True)


def test_web_servers(mirrored: DaemonProcess) -> None:
    pull(mirrored, NGINX)
    pull(mirrored, HTTPD)
    port = free_port()
    mirrored.cli("run", "-d", "--name", "nginx", "-p", f"{port}:80", NGINX, check=True)
    mirrored.cli("run", "-d", "--name", "httpd", HTTPD, check=True)
    try:
        assert "Welcome" in fetch(f"http://127.0.0.1:{port}/")
        assert mirrored.cli("exec", "nginx", "cat", "/var/run/nginx.pid",
                            check=True).stdout.strip() == "1"
        cmdline = mirrored.cli("exec", "nginx", "cat", "/proc/1/cmdline", check=True).stdout
        assert "master process" in cmdline
        assert mirrored.cli("exec", "nginx", "pidof", "nginx", check=True).stdout.split() == ["1"]
        assert "httpd" in mirrored.cli("logs", "httpd", check=True).stderr
    finally:
        mirrored.cli("rm", "-f", "nginx", "httpd")


def test_nonewprivs_reports_the_effective_uid(mirrored: DaemonProcess) -> None:
    pull(mirrored, NONEWPRIVS)
    escalates = mirrored.cli("run", "--rm", "--user", "1000", "--security-opt",
                             "no-new-privileges=false", NONEWPRIVS, check=True)
    assert escalates.stdout == "Effective uid: 0\n"
    kept = mirrored.cli("run", "--rm", "--user", "1000", "--security-opt", "no-new-privileges",
                        NONEWPRIVS, check=True)
    assert kept.stdout == "Effective uid: 1000\n"


def test_users_and_groups(mirrored: DaemonProcess) -> None:
    pull(mirrored, PREDEFINED)
    out = mirrored.cli("run", "--rm", PREDEFINED, "sh", "-c", "id -u; id -G", check=True)
    assert out.stdout.split("\n")[:2] == ["1000", "1000 50000"]
    for name, user in (("uid", "1002"), ("username", "www-data"), ("uid-group", "1003:1004"),
                       ("username-group", "www-data:1004")):
        ref = f"{ci.STAGING}/test-image-user-{name}:latest"
        pull(mirrored, ref)
        doc = json.loads(mirrored.cli("image", "inspect", ref, check=True).stdout)[0]
        assert doc["Config"]["User"] == user


def test_pause_is_one_image_under_two_names_and_stops_at_once(mirrored: DaemonProcess) -> None:
    assert pull(mirrored, "registry.k8s.io/pause:3.9") == pull(mirrored, "k8s.gcr.io/pause:3.9")
    mirrored.cli("run", "-d", "--name", "pause", "registry.k8s.io/pause:3.9", check=True)
    try:
        # Stops on SIGTERM (well within the 10 s before a SIGKILL): exit code 0, not 137.
        mirrored.cli("stop", "pause", check=True)
        state = json.loads(mirrored.cli("inspect", "pause", check=True).stdout)[0]["State"]
        assert state["ExitCode"] == 0
    finally:
        mirrored.cli("rm", "-f", "pause")


def test_a_file_layer_per_image(tmp_path: Path) -> None:
    base = ci.base_layer()
    by_ref = {ref: s for s in ci.stand_ins() for ref in s.references}
    image = ci.build(by_ref[f"{ci.STAGING}/test-image-tag:all"], base)
    import gzip
    import io
    import tarfile

    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(image.layers[1].data))) as tar:
        assert tar.getnames() == ["all"]
    nnp = ci.build(by_ref[NONEWPRIVS], base)
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(nnp.layers[1].data))) as tar:
        helper = tar.getmember("usr/local/bin/id")
        conf = tar.getmember("etc/busybox.conf")
    assert helper.mode == 0o4755 and helper.uid == 0
    assert conf.mode == 0o600 and conf.uid == 0
