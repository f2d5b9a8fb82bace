"""Units of the Docker API door: versions, filters, timestamps, X-Registry-Auth, stdcopy
frames, JSON messages, event filters, listen addresses, cgroup features, config keys."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from servin.engine import hostinfo
from servin.engine.config import load_config
from servin.engine.events import Event
from servin.engine.server.docker.door import parse_tcp_address
from servin.engine.server.docker.params import (
    decode_registry_auth,
    parse_filters,
    parse_timestamp,
)
from servin.engine.server.docker.streams import (
    STDERR,
    STDOUT,
    FrameDecoder,
    FrameError,
    JSONMessages,
    MuxWriter,
    demultiplex,
    encode_frame,
    progress_text,
)
from servin.engine.server.docker.system import event_filter, event_message
from servin.engine.server.docker.versions import compare_versions, version_at_least
from servin.errors import InvalidArgument


def test_versions_compare_as_docker_compares_them() -> None:
    assert compare_versions("1.50", "1.50") == 0
    assert compare_versions("1.9", "1.10") == -1
    assert compare_versions("1.50", "1.5") == 1
    assert compare_versions("1.24", "1.24.0") == 0
    assert compare_versions("2", "1.50") == 1
    assert compare_versions("1.x", "1.0") == 0  # a non-number counts as 0
    assert version_at_least("1.42", "1.42") and not version_at_least("1.41", "1.42")
    assert version_at_least("", "1.42")


def test_filters_in_both_forms() -> None:
    assert parse_filters("") == {}
    assert parse_filters("null") == {}
    assert parse_filters('{"label":{"a=b":true,"c":true}}') == {"label": ["a=b", "c"]}
    assert parse_filters('{"label":["a=b","a=b","c"]}') == {"label": ["a=b", "c"]}
    assert parse_filters('{"dangling":{"true":true},"name":["x"]}') == {
        "dangling": ["true"], "name": ["x"]}
    for bad in ("nope", "[1]", '{"label":"a"}', '{"label":{"a":"b"}}', '{"label":[1]}'):
        with pytest.raises(InvalidArgument, match="invalid filter"):
            parse_filters(bad)


def test_timestamps_as_the_docker_client_sends_them() -> None:
    assert parse_timestamp("since", "") is None
    assert parse_timestamp("since", "1700000000") == 1_700_000_000_000_000_000
    assert parse_timestamp("since", "1700000000.5") == 1_700_000_000_500_000_000
    assert parse_timestamp("since", "1700000000.000000001") == 1_700_000_000_000_000_001
    for bad in ("yesterday", "1.2.3", "1700000000.", "1700000000.1234567890"):
        with pytest.raises(InvalidArgument, match="since"):
            parse_timestamp("since", bad)


def test_registry_auth_header() -> None:
    doc = {"username": "u", "password": "p/w+?", "serveraddress": "reg:5000"}
    raw = json.dumps(doc).encode()
    for encoded in (base64.urlsafe_b64encode(raw).decode(),               # docker CLI
                    base64.urlsafe_b64encode(raw).decode().rstrip("="),   # no padding
                    base64.b64encode(raw).decode()):                      # standard alphabet
        auth = decode_registry_auth(encoded)
        assert (auth.username, auth.password, auth.server_address) == ("u", "p/w+?", "reg:5000")
    # config.json's "auth" field, identity tokens, keys in any case.
    auth = decode_registry_auth(base64.urlsafe_b64encode(json.dumps(
        {"Auth": base64.b64encode(b"me:secret").decode(), "IdentityToken": "tok"}).encode()
    ).decode())
    assert (auth.username, auth.password, auth.identity_token) == ("me", "secret", "tok")
    assert decode_registry_auth("").empty
    assert decode_registry_auth(base64.b64encode(b"{}").decode()).empty
    for bad in ("%%%", base64.b64encode(b"not json").decode(),
                base64.b64encode(b'{"username": 5}').decode(), base64.b64encode(b"[]").decode()):
        with pytest.raises(InvalidArgument, match="X-Registry-Auth"):
            decode_registry_auth(bad)


def test_multiplexed_frames() -> None:
    frame = encode_frame(STDOUT, b"hello")
    assert frame == b"\x01\x00\x00\x00\x00\x00\x00\x05hello"
    stream = frame + encode_frame(STDERR, b"oops\n") + encode_frame(STDOUT, b"x" * 70000)
    assert demultiplex(stream) == [(1, b"hello"), (2, b"oops\n"), (1, b"x" * 70000)]
    decoder = FrameDecoder()
    got = []
    for i in range(0, len(stream), 3):  # byte by byte-ish: frames complete across feeds
        got += decoder.feed(stream[i:i + 3])
    assert got == demultiplex(stream) and decoder.pending == 0
    with pytest.raises(FrameError):
        demultiplex(frame[:-1])
    with pytest.raises(FrameError, match="unknown stream"):
        FrameDecoder().feed(b"\x07\x00\x00\x00\x00\x00\x00\x01x")


async def _collect_mux() -> list[bytes]:
    writes: list[bytes] = []

    async def write(data: bytes) -> None:
        writes.append(data)

    mux = MuxWriter(write, flush_at=20)
    mux.add(STDOUT, b"a")
    mux.add(STDERR, b"")  # an empty frame means nothing: skipped
    await mux.add_and_maybe_flush(STDERR, b"bb")
    assert writes == []
    await mux.add_and_maybe_flush(STDOUT, b"c" * 10)
    await mux.write(STDOUT, b"d")
    await mux.flush()
    return writes


def test_mux_writer_gathers_frames() -> None:
    import asyncio

    writes = asyncio.run(_collect_mux())
    assert len(writes) == 2
    assert demultiplex(writes[0]) == [(1, b"a"), (2, b"bb"), (1, b"c" * 10)]
    assert demultiplex(writes[1]) == [(1, b"d")]


def test_json_messages() -> None:
    import asyncio

    out: list[bytes] = []

    async def write(data: bytes) -> None:
        out.append(data)

    async def run() -> None:
        messages = JSONMessages(write)
        await messages.status("Pulling fs layer", "abc123")
        await messages.progress("Downloading", "abc123", 500_000, 2_000_000)
        await messages.aux({"ID": "sha256:x"})
        await messages.error("manifest unknown")

    asyncio.run(run())
    assert all(line.endswith(b"\r\n") and line.count(b"\n") == 1 for line in out)
    docs = [json.loads(line) for line in out]
    assert docs[0] == {"status": "Pulling fs layer", "id": "abc123"}
    assert docs[1]["progressDetail"] == {"current": 500_000, "total": 2_000_000}
    assert docs[1]["progress"] == "[============>" + " " * 38 + "]    500kB/2MB"
    assert docs[2] == {"aux": {"ID": "sha256:x"}}
    assert docs[3] == {"errorDetail": {"message": "manifest unknown"},
                       "error": "manifest unknown"}
    assert progress_text(0, 0) == ""
    assert progress_text(1234, 0) == " 1.234kB"


def test_event_messages_and_filters() -> None:
    ev = Event("container", "start", "c" * 64, {"name": "web", "image": "busybox:latest",
                                                 "com.example": "x"}, 1_700_000_000_123_456_789)
    msg = event_message(ev)
    assert msg["status"] == "start" and msg["id"] == ev.id and msg["from"] == "busybox:latest"
    assert msg["Actor"] == {"ID": ev.id, "Attributes": ev.attributes}
    assert (msg["time"], msg["timeNano"], msg["scope"]) == (1_700_000_000, ev.time_ns, "local")
    vol = Event("volume", "create", "data", {"driver": "local"}, 1)
    assert "status" not in event_message(vol)

    def match(filters: dict[str, list[str]], event: Event = ev) -> bool:
        return bool(event_filter(filters)(event))

    assert match({})
    assert match({"type": ["container"]}) and not match({"type": ["image"]})
    assert match({"event": ["start", "die"]}) and not match({"event": ["die"]})
    assert match({"container": ["web"]}) and match({"container": ["ccc"]})  # name or ID prefix
    assert not match({"container": ["db"]})
    assert not match({"volume": ["data"]})  # a volume filter leaves containers out
    assert match({"volume": ["da"]}, vol)
    assert match({"image": ["busybox"]}) and match({"image": ["busybox:latest"]})
    assert not match({"image": ["alpine"]})
    assert match({"label": ["com.example"]}) and match({"label": ["com.example=x"]})
    assert not match({"label": ["com.example=y"]})
    health = Event("container", "health_status: healthy", "c" * 64, {"name": "web"}, 1)
    assert match({"event": ["health_status"]}, health)
    assert not match({"event": ["health"]}, health)


def test_tcp_listen_addresses() -> None:
    assert parse_tcp_address("tcp://127.0.0.1:2375", False) == ("127.0.0.1", 2375)
    assert parse_tcp_address("tcp://127.0.0.1", False) == ("127.0.0.1", 2375)
    assert parse_tcp_address("tcp://127.0.0.1", True) == ("127.0.0.1", 2376)
    assert parse_tcp_address("tcp://:9000", False) == ("0.0.0.0", 9000)
    assert parse_tcp_address("tcp://[::1]:9000", False) == ("::1", 9000)
    for bad in ("tcp://h:0", "tcp://h:x", "tcp://h:70000"):
        with pytest.raises(InvalidArgument, match="bad port"):
            parse_tcp_address(bad, False)


def test_cgroup_features_on_fake_trees(tmp_path: Path) -> None:
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    f = hostinfo.cgroup_features(v2)
    assert f.memory_limit and f.cpu_cfs and f.cpuset and f.pids_limit
    assert not f.oom_kill_disable and not f.kernel_memory_tcp
    (v2 / "cgroup.controllers").write_text("io\n")
    assert hostinfo.cgroup_features(v2) == hostinfo.CgroupFeatures()
    v1 = tmp_path / "v1"
    for d, files in (("memory", ["memory.limit_in_bytes", "memory.oom_control"]),
                     ("cpu,cpuacct", ["cpu.cfs_quota_us", "cpu.shares"]), ("pids", [])):
        (v1 / d).mkdir(parents=True)
        for name in files:
            (v1 / d / name).write_text("0\n")
    (v1 / "cpu").symlink_to("cpu,cpuacct")
    f = hostinfo.cgroup_features(v1)
    assert f.memory_limit and f.oom_kill_disable and f.cpu_cfs and f.cpu_shares
    assert f.pids_limit and not f.swap_limit and not f.cpuset and not f.kernel_memory_tcp


def test_docker_hosts_config(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('exec_root = "/run/x"\n')
    assert load_config(config).effective_docker_hosts() == ("unix:///run/x/docker.sock",)
    config.write_text('docker_hosts = ["unix:///tmp/d.sock", "tcp://127.0.0.1:2375"]\n')
    assert load_config(config).effective_docker_hosts() == (
        "unix:///tmp/d.sock", "tcp://127.0.0.1:2375")
    config.write_text("docker_hosts = []\n")
    assert load_config(config).effective_docker_hosts() == ()
    # The --docker-host flag replaces the file's list.
    assert load_config(config, {"docker_hosts": ("unix:///tmp/e.sock",)}
                       ).effective_docker_hosts() == ("unix:///tmp/e.sock",)
    for text, message in (('docker_hosts = "unix:///x"\n', "must be a list"),
                          ('docker_hosts = ["http://x"]\n', "invalid listen address"),
                          ('hosts = ["unix:///a.sock"]\ndocker_hosts = ["unix:///a.sock"]\n',
                           "cannot serve both")):
        config.write_text(text)
        with pytest.raises(InvalidArgument, match=message):
            load_config(config)
