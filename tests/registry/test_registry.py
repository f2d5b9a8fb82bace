"""Pull, push, login against real registries (Debian's docker-registry on 127.0.0.1)."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import io
import json
import os
import platform
import re
import shutil
import signal
import stat
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.daemon import REPO, DaemonProcess
from tests.registry.conftest import PASSWORD, USER, start_daemon
from tests.registry.proxy import ThrottlingProxy
from tests.registry.registryd import (
    Registry,
    free_port,
    get_blob,
    get_manifest,
    put_manifest,
    upload_blob,
)
from tests.registry.tokenfront import TokenFront

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
HOST_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())


def inspect(d: DaemonProcess, ref: str) -> dict[str, Any]:
    return json.loads(d.cli("image", "inspect", ref, check=True).stdout)[0]


def pushed_digest(output: str) -> str:
    m = re.search(r"digest: (sha256:[0-9a-f]{64}) size: \d+", output)
    assert m, output
    return m.group(1)


def skopeo_inspect(ref: str, *args: str) -> dict[str, Any]:
    out = subprocess.run(["skopeo", "inspect", *args, f"docker://{ref}"], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_push_then_pull_by_tag_and_by_digest_and_run(
    servin: DaemonProcess, plain_registry: Registry, daemon: DaemonProcess
) -> None:
    ref = f"{plain_registry.host}/servin/busybox:1"
    servin.cli("tag", "busybox", ref, check=True)
    pushed = servin.cli("push", ref, check=True).stdout
    digest = pushed_digest(pushed)
    assert "Pushed" in pushed
    local = inspect(servin, ref)
    assert f"{plain_registry.host}/servin/busybox@{digest}" in local["RepoDigests"]

    # skopeo and the registry itself agree with what Servin pushed.
    info = skopeo_inspect(ref, "--tls-verify=false")
    assert info["Digest"] == digest
    manifest, served = get_manifest(plain_registry, "servin/busybox", "1")
    assert served == digest
    assert manifest["config"]["digest"] == local["Id"]
    assert info["Layers"] == [layer["digest"] for layer in manifest["layers"]]

    # A second push finds every blob there already.
    again = servin.cli("push", "--progress", "plain", ref, check=True).stdout
    assert "Layer already exists" in again and pushed_digest(again) == digest
    # Another repository of the same registry gets the layer by a cross-repository mount.
    copy = f"{plain_registry.host}/servin/copy:1"
    servin.cli("tag", "busybox", copy, check=True)
    mounted = servin.cli("push", copy, check=True).stdout
    assert "Mounted from servin/busybox" in mounted and pushed_digest(mounted) == digest

    # A daemon that never had it pulls it by tag, runs it, drops it, pulls it by digest.
    out = daemon.cli("pull", ref, check=True).stdout
    assert "Pull complete" in out and f"Digest: {digest}" in out
    assert out.splitlines()[-1] == ref
    assert inspect(daemon, ref)["Id"] == local["Id"]
    run = daemon.cli("run", "--rm", ref, "echo", "pulled-by-tag", check=True)
    assert run.stdout.strip() == "pulled-by-tag"
    removed = daemon.cli("rmi", ref, check=True).stdout
    assert "Deleted: " + local["Id"] in removed
    assert daemon.cli("images", "-q", check=True).stdout.strip() == ""

    by_digest = f"{plain_registry.host}/servin/busybox@{digest}"
    quiet = daemon.cli("pull", "-q", by_digest, check=True).stdout
    assert quiet.strip() == by_digest
    details = inspect(daemon, by_digest)
    assert details["Id"] == local["Id"]
    assert details["RepoDigests"] == [by_digest]
    run = daemon.cli("run", "--rm", by_digest, "echo", "pulled-by-digest", check=True)
    assert run.stdout.strip() == "pulled-by-digest"


def test_tls_registry_with_basic_auth_login_push_pull_logout(
    servin: DaemonProcess, tls_registry: Registry, auth_dir: Path
) -> None:
    env = {"SERVIN_CONFIG": str(auth_dir)}
    host = tls_registry.host
    ref = f"{host}/secure/busybox:v1"
    servin.cli("tag", "busybox", ref, check=True)

    denied = servin.cli("push", ref, env=env)
    assert denied.returncode != 0
    assert "unauthorized" in denied.stderr and f"servin login {host}" in denied.stderr

    bad = servin.cli("login", "-u", USER, "--password-stdin", host, input=b"wrong\n", env=env)
    assert bad.returncode != 0
    assert bad.stderr.strip().splitlines() == [
        f"Error: login to {host} failed: unauthorized: incorrect username or password"]
    assert not (auth_dir / "auth.json").exists()

    good = servin.cli("login", "-u", USER, "--password-stdin", host,
                      input=f"{PASSWORD}\n".encode(), env=env, check=True)
    assert good.stdout.strip() == "Login Succeeded"
    auth_file = auth_dir / "auth.json"
    assert stat.S_IMODE(auth_file.stat().st_mode) == 0o600
    assert host in json.loads(auth_file.read_text())["auths"]

    digest = pushed_digest(servin.cli("push", ref, env=env, check=True).stdout)
    ca_dir = auth_dir / "skopeo-certs"
    ca_dir.mkdir()
    assert tls_registry.ca is not None
    shutil.copy(tls_registry.ca, ca_dir / "ca.crt")
    info = skopeo_inspect(ref, "--cert-dir", str(ca_dir), "--creds", f"{USER}:{PASSWORD}")
    assert info["Digest"] == digest

    fresh = start_daemon(tls_registry)
    try:
        fresh.cli("pull", ref, env=env, check=True)
        assert inspect(fresh, ref)["Id"] == inspect(servin, ref)["Id"]
        assert fresh.cli("run", "--rm", ref, "true", env=env).returncode == 0

        out = servin.cli("logout", host, env=env, check=True).stdout
        assert f"Removing login credentials for {host}" in out
        assert host not in json.loads(auth_file.read_text())["auths"]
        fresh.cli("rmi", ref, check=True)
        refused = fresh.cli("pull", ref, env=env)
        assert refused.returncode != 0 and "unauthorized" in refused.stderr
    finally:
        fresh.cleanup()


def test_multi_platform_index_picks_the_host_and_platform_picks_the_other(
    servin: DaemonProcess, plain_registry: Registry, daemon: DaemonProcess
) -> None:
    repo = "servin/multi"
    servin.cli("tag", "busybox", f"{plain_registry.host}/{repo}:native", check=True)
    servin.cli("push", f"{plain_registry.host}/{repo}:native", check=True)
    native, native_digest = get_manifest(plain_registry, repo, "native")
    config = json.loads(get_blob(plain_registry, repo, native["config"]["digest"]))
    other_arch = "arm64" if HOST_ARCH != "arm64" else "amd64"
    config["architecture"] = other_arch
    other_config = json.dumps(config).encode()
    other_config_digest = upload_blob(plain_registry, repo, other_config)
    other = {**native, "config": {**native["config"], "digest": other_config_digest,
                                  "size": len(other_config)}}
    other_digest = put_manifest(plain_registry, repo, other_arch, other)
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": native["mediaType"], "digest": other_digest,
             "size": len(json.dumps(other).encode()),
             "platform": {"os": "linux", "architecture": other_arch}},
            {"mediaType": native["mediaType"], "digest": native_digest,
             "size": len(json.dumps(native).encode()),
             "platform": {"os": "linux", "architecture": HOST_ARCH}},
        ],
    }
    index_digest = put_manifest(plain_registry, repo, "multi", index)
    ref = f"{plain_registry.host}/{repo}:multi"

    daemon.cli("pull", ref, check=True)
    picked = inspect(daemon, ref)
    assert picked["Id"] == native["config"]["digest"]
    assert picked["Architecture"] == HOST_ARCH
    assert f"{plain_registry.host}/{repo}@{index_digest}" in picked["RepoDigests"]

    daemon.cli("pull", "--platform", f"linux/{other_arch}", ref, check=True)
    chosen = inspect(daemon, ref)
    assert chosen["Id"] == other_config_digest
    assert chosen["Architecture"] == other_arch

    missing = daemon.cli("pull", "--platform", "linux/s390x", ref)
    assert missing.returncode != 0 and "no matching manifest for linux/s390x" in missing.stderr


class _Schema1Handler(http.server.BaseHTTPRequestHandler):
    """A registry that only has a schema 1 manifest."""

    def do_GET(self) -> None:
        if self.path == "/v2/":
            body, ctype = b"{}", "application/json"
        elif "/manifests/" in self.path:
            body = json.dumps({"schemaVersion": 1, "name": "old/image", "tag": "1",
                               "architecture": "amd64", "fsLayers": [], "history": []}).encode()
            ctype = "application/vnd.docker.distribution.manifest.v1+prettyjws"
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def schema1_registry() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Schema1Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_schema1_manifest_is_refused(daemon: DaemonProcess, schema1_registry: str) -> None:
    out = daemon.cli("pull", f"{schema1_registry}/old/image:1")
    assert out.returncode != 0
    assert "schema 1" in out.stderr and "not support" in out.stderr
    assert daemon.cli("images", "-q", check=True).stdout.strip() == ""


def _big_image(busybox_tar: Path, directory: Path) -> tuple[Path, str]:
    """busybox plus ~48 MB of random bytes in /big.bin, gzip-compressed (fast level)."""
    payload = os.urandom(48 * 1024 * 1024)
    plain = directory / "big.tar"
    shutil.copy(busybox_tar, plain)
    with tarfile.open(plain, "a") as tar:
        info = tarfile.TarInfo("big.bin")
        info.size = len(payload)
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(payload))
    packed = directory / "big.tar.gz"
    with open(plain, "rb") as src, gzip.open(packed, "wb", compresslevel=1) as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    plain.unlink()
    return packed, hashlib.sha256(payload).hexdigest()


def _ingest_bytes(d: DaemonProcess) -> int:
    ingest = d.root / "content" / "ingest"
    return sum(p.stat().st_size for p in ingest.iterdir()) if ingest.exists() else 0


def test_pull_killed_halfway_leaves_nothing_complete_and_a_retry_succeeds(
    plain_registry: Registry, busybox_tar: Path, daemon_factory: type[DaemonProcess],
    tmp_path: Path,
) -> None:
    archive, payload_sha = _big_image(busybox_tar, tmp_path)
    pusher = daemon_factory().start()
    ref = f"{plain_registry.host}/servin/big:1"
    pusher.cli("import", "-c", 'CMD ["sh"]', str(archive), ref, check=True)
    pusher.cli("push", ref, check=True)  # 8 MiB chunks: the chunked upload path
    archive.unlink()

    proxy = ThrottlingProxy(plain_registry.port, rate=6 * 1024 * 1024)
    slow_ref = f"{proxy.host}/servin/big:1"
    puller = daemon_factory().start()
    cli = subprocess.Popen(
        [sys.executable, "-m", "servin", "-H", puller.host, "pull", slow_ref],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO)
    try:
        deadline = time.monotonic() + 60
        while _ingest_bytes(puller) < 12 * 1024 * 1024:
            assert cli.poll() is None, cli.communicate()
            assert time.monotonic() < deadline, "the pull never got going"
            time.sleep(0.05)
        puller.stop(signal.SIGKILL)
        assert cli.wait(30) != 0
        # Partial data only: no blob, no layer, no image.
        assert not list((puller.root / "content" / "blobs" / "sha256").iterdir())
        assert not list((puller.root / "snapshots" / "chains").iterdir())

        puller.start()
        assert _ingest_bytes(puller) == 0, "the restart sweeps the partial blob"
        assert not list((puller.root / "snapshots" / "tmp").iterdir())
        assert puller.cli("images", "-q", check=True).stdout.strip() == ""

        proxy.rate = 0
        out = puller.cli("pull", "--progress", "plain", slow_ref, check=True).stdout
        assert "Pull complete" in out
        check = puller.cli("run", "--rm", slow_ref, "sha256sum", "/big.bin", check=True)
        assert check.stdout.split()[0] == payload_sha
    finally:
        if cli.poll() is None:
            cli.kill()
        cli.communicate()
        proxy.close()


def test_a_download_cut_short_resumes_with_a_range_request(
    plain_registry: Registry, busybox_tar: Path, daemon_factory: type[DaemonProcess],
) -> None:
    ref = f"{plain_registry.host}/servin/resume:1"
    source = daemon_factory().start()
    source.cli("import", "-c", 'CMD ["sh"]', str(busybox_tar), ref, check=True)
    source.cli("push", ref, check=True)
    proxy = ThrottlingProxy(plain_registry.port, cut_after=1024 * 1024)
    try:
        target = daemon_factory().start()
        via = f"{proxy.host}/servin/resume:1"
        target.cli("pull", via, check=True)
        assert b"range: bytes=" in bytes(proxy.requests).lower()
        assert target.cli("run", "--rm", via, "true").returncode == 0
    finally:
        proxy.close()


def test_bearer_token_registry_login_and_pull(
    servin: DaemonProcess, plain_registry: Registry, daemon: DaemonProcess, auth_dir: Path,
) -> None:
    ref = f"{plain_registry.host}/servin/token:1"
    servin.cli("tag", "busybox", ref, check=True)
    servin.cli("push", ref, check=True)
    front = TokenFront(plain_registry.port, USER, PASSWORD)
    env = {"SERVIN_CONFIG": str(auth_dir)}
    try:
        via = f"{front.host}/servin/token:1"
        anonymous = daemon.cli("pull", via, env=env)
        assert anonymous.returncode != 0
        assert "incorrect username or password" in anonymous.stderr or \
            "unauthorized" in anonymous.stderr
        bad = daemon.cli("login", "-u", USER, "--password-stdin", front.host, input=b"nope",
                         env=env)
        assert bad.returncode != 0 and "incorrect username or password" in bad.stderr
        daemon.cli("login", "-u", USER, "--password-stdin", front.host,
                   input=PASSWORD.encode(), env=env, check=True)
        daemon.cli("pull", via, env=env, check=True)
        asked = [r for r in front.token_requests if r["user"] == USER and r["scope"]]
        assert asked and asked[-1]["scope"] == ["repository:servin/token:pull"]
        assert asked[-1]["service"] == "servin-test-registry"
        assert daemon.cli("run", "--rm", via, "true").returncode == 0
    finally:
        front.close()


def test_mirrors_are_tried_first_and_the_origin_last(
    servin: DaemonProcess, plain_registry: Registry, tls_registry: Registry
) -> None:
    for tag in ("1", "2"):
        ref = f"{plain_registry.host}/servin/mirrored:{tag}"
        servin.cli("tag", "busybox", ref, check=True)
        servin.cli("push", ref, check=True)
    proxy = ThrottlingProxy(plain_registry.port)
    dead = free_port()
    mirrors = f'"http://127.0.0.1:{dead}", "http://{proxy.host}"'
    d = start_daemon(tls_registry, f'mirrors = {{ "{plain_registry.host}" = [{mirrors}] }}\n')
    try:
        d.cli("pull", f"{plain_registry.host}/servin/mirrored:1", check=True)
        assert proxy.connections > 0, "the working mirror served the pull"
        proxy.close()
        d.cli("pull", f"{plain_registry.host}/servin/mirrored:2", check=True)
        assert d.cli("run", "--rm", f"{plain_registry.host}/servin/mirrored:2", "true",
                     ).returncode == 0
    finally:
        proxy.close()
        d.cleanup()


def test_zstd_layers_push_and_pull(
    plain_registry: Registry, busybox_tar: Path, daemon_factory: type[DaemonProcess],
    tmp_path: Path,
) -> None:
    import zstandard

    packed = tmp_path / "busybox.tar.zst"
    packed.write_bytes(zstandard.ZstdCompressor().compress(busybox_tar.read_bytes()))
    ref = f"{plain_registry.host}/servin/zstd:1"
    source = daemon_factory().start()
    source.cli("import", "-c", 'CMD ["sh"]', str(packed), ref, check=True)
    source.cli("push", ref, check=True)
    manifest, _ = get_manifest(plain_registry, "servin/zstd", "1")
    assert manifest["layers"][0]["mediaType"] == "application/vnd.oci.image.layer.v1.tar+zstd"
    target = daemon_factory().start()
    target.cli("pull", ref, check=True)
    out = target.cli("run", "--rm", ref, "echo", "zstd", check=True)
    assert out.stdout.strip() == "zstd"


def test_run_pulls_a_missing_image_unless_told_not_to(
    servin: DaemonProcess, plain_registry: Registry, daemon: DaemonProcess
) -> None:
    ref = f"{plain_registry.host}/servin/runme:1"
    servin.cli("tag", "busybox", ref, check=True)
    servin.cli("push", ref, check=True)
    never = daemon.cli("run", "--rm", "--pull", "never", ref, "true")
    assert never.returncode == 125 and "Unable to find image" in never.stderr
    out = daemon.cli("run", "--rm", ref, "echo", "auto-pulled")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "auto-pulled"
    assert f"Unable to find image '{ref}' locally" in out.stderr
    assert "Pull complete" in out.stderr
    again = daemon.cli("run", "--rm", "--pull", "always", ref, "echo", "again", check=True)
    assert "Image is up to date" in again.stderr
