"""Registry pieces without a registry: challenges, manifests, platforms, credentials, TLS."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from servin.client import credentials
from servin.engine.images.platforms import Platform
from servin.engine.images.registry import manifests
from servin.engine.images.registry.auth import parse_challenges
from servin.engine.images.registry.client import is_local
from servin.engine.images.registry.login import registry_host
from servin.engine.images.registry.tls import ssl_context
from servin.errors import InvalidArgument, NotFound

DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64
DIGEST_C = "sha256:" + "c" * 64


def test_bearer_and_basic_challenges_are_parsed() -> None:
    [bearer] = parse_challenges(
        'Bearer realm="https://auth.example.com/token",service="registry.example.com",'
        'scope="repository:library/busybox:pull,push"')
    assert bearer.scheme == "bearer"
    assert bearer.params == {"realm": "https://auth.example.com/token",
                             "service": "registry.example.com",
                             "scope": "repository:library/busybox:pull,push"}
    both = parse_challenges('Basic realm="r1", Bearer realm="https://t/x",service=s')
    assert [c.scheme for c in both] == ["basic", "bearer"]
    assert both[1].params == {"realm": "https://t/x", "service": "s"}
    assert parse_challenges("") == []


def _index(*platforms: tuple[str, str, str]) -> manifests.Index:
    doc = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
           "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                          "digest": d, "size": 1,
                          "platform": {"os": o, "architecture": a, "variant": v}}
                         for d, (o, a, v) in zip((DIGEST_A, DIGEST_B, DIGEST_C), platforms,
                                                 strict=False)]}
    parsed = manifests.parse(json.dumps(doc).encode(), "", "test")
    assert isinstance(parsed, manifests.Index)
    return parsed


def test_platform_selection_prefers_the_exact_variant_and_accepts_none() -> None:
    index = _index(("linux", "amd64", ""), ("linux", "arm64", ""), ("linux", "arm", "v7"))
    assert manifests.select(index, Platform("linux", "amd64"), "x").digest == DIGEST_A
    # The host's implied arm64 variant v8 matches an entry without variant.
    assert manifests.select(index, Platform("linux", "arm64", "v8"), "x").digest == DIGEST_B
    assert manifests.select(index, Platform("linux", "arm", "v7"), "x").digest == DIGEST_C
    with pytest.raises(NotFound, match="no matching manifest for linux/s390x"):
        manifests.select(index, Platform("linux", "s390x"), "x")


def test_schema1_and_unknown_manifests_are_refused() -> None:
    schema1 = json.dumps({"schemaVersion": 1, "name": "a", "fsLayers": []}).encode()
    with pytest.raises(InvalidArgument, match="schema 1"):
        manifests.parse(schema1, "application/vnd.docker.distribution.manifest.v1+prettyjws",
                        "a")
    with pytest.raises(InvalidArgument, match="unsupported manifest media type"):
        manifests.parse(b'{"schemaVersion": 2, "mediaType": "text/plain"}', "", "a")
    with pytest.raises(InvalidArgument, match="not valid JSON"):
        manifests.parse(b"<html>", "text/html", "a")
    bad_layer = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                 "config": {"mediaType": "x", "digest": DIGEST_A, "size": 2},
                 "layers": [{"mediaType": "application/x-evil", "digest": DIGEST_B, "size": 1}]}
    with pytest.raises(InvalidArgument, match="unsupported layer media type"):
        manifests.parse(json.dumps(bad_layer).encode(), "", "a")


def test_only_loopback_hosts_count_as_local() -> None:
    assert is_local("localhost:5000") and is_local("127.0.0.1:5000") and is_local("[::1]:5000")
    assert is_local("127.9.9.9")
    assert not is_local("registry.example.com:5000") and not is_local("10.0.0.1:5000")


def test_login_server_names_are_normalised() -> None:
    assert registry_host("https://index.docker.io/v1/") == "docker.io"
    assert registry_host("") == "docker.io"
    assert registry_host("https://127.0.0.1:5000/v2/") == "127.0.0.1:5000"
    with pytest.raises(InvalidArgument):
        registry_host("user@host")


def test_credentials_file_is_private_and_round_trips(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(credentials.CONFIG_ENV, str(tmp_path / "cfg"))
    assert credentials.get("127.0.0.1:5000") == credentials.StoredAuth()
    path = credentials.store("https://127.0.0.1:5000", "me", "pa:ss")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert credentials.get("127.0.0.1:5000") == credentials.StoredAuth("me", "pa:ss")
    credentials.store("index.docker.io", "hub", "pw")
    assert credentials.get("docker.io").username == "hub"
    assert credentials.remove("127.0.0.1:5000")
    assert not credentials.remove("127.0.0.1:5000")
    assert set(json.loads(path.read_text())["auths"]) == {"docker.io"}


def test_a_client_certificate_without_its_key_is_an_error(tmp_path: Path) -> None:
    host = tmp_path / "registry.example.com:5000"
    host.mkdir()
    (host / "client.cert").write_text("not really")
    with pytest.raises(InvalidArgument, match=r"has no key client\.key"):
        ssl_context(tmp_path, "registry.example.com:5000")
    assert ssl_context(tmp_path, "other:5000") is not None  # no directory: system CAs only


def _progress_stream() -> list[object]:
    from servin.api.servin.v1 import common_pb2, images_pb2

    p = images_pb2.ImageProgress
    return [
        p(status="1: Pulling from servin/x"),
        p(progress=common_pb2.Progress(id="abc", action="Waiting", total=100)),
        p(progress=common_pb2.Progress(id="abc", action="Downloading", current=50, total=100)),
        p(progress=common_pb2.Progress(id="abc", action="Downloading", current=100, total=100)),
        p(progress=common_pb2.Progress(id="abc", action="Pull complete", current=100,
                                       total=100, done=True)),
        p(status="Digest: sha256:" + "a" * 64),
        p(image_id="sha256:" + "b" * 64, digest="sha256:" + "a" * 64),
    ]


def test_progress_plain_lines_bars_and_quiet() -> None:
    import io

    from servin.cli import progress

    out = io.StringIO()
    last = progress.show(_progress_stream(), "plain", out)
    assert out.getvalue().splitlines() == [
        "1: Pulling from servin/x", "abc: Waiting", "abc: Downloading", "abc: Pull complete",
        "Digest: sha256:" + "a" * 64]
    assert last.image_id == "sha256:" + "b" * 64  # type: ignore[attr-defined]
    bars = io.StringIO()
    progress.show(_progress_stream(), "tty", bars)
    assert "abc" in bars.getvalue() and "Pull complete" in bars.getvalue()
    quiet = io.StringIO()
    progress.show(_progress_stream(), "quiet", quiet)
    assert quiet.getvalue() == ""
