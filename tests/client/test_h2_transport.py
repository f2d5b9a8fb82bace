"""The lean HTTP/2 client transport against a real daemon: every call shape, errors, threads."""

from __future__ import annotations

import hashlib
import io
import os
import socket
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import h2.connection
import pytest

from servin.api.servin.v1 import containers_pb2, images_pb2, system_pb2
from servin.client.channel import Endpoint
from servin.client.errors import DaemonUnreachable, StatusError
from servin.client.grpcwire import decode_status, encode_timeout
from servin.client.h2channel import H2Channel
from servin.client.services import method_table
from servin.client.sync import TRANSPORT_ENV, Client
from servin.errors import InvalidArgument, NotFound, Unavailable
from tests.daemon import REPO, DaemonProcess, short_tmpdir


@pytest.fixture
def client(engine: DaemonProcess, monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    """A Client on the default (lean) transport."""
    monkeypatch.delenv(TRANSPORT_ENV, raising=False)
    with Client(engine.host) as c:
        assert isinstance(c._channel, H2Channel)
        yield c


def _grpc_client(host: str, monkeypatch: pytest.MonkeyPatch) -> Client:
    monkeypatch.setenv(TRANSPORT_ENV, "grpc")
    c = Client(host)
    monkeypatch.delenv(TRANSPORT_ENV)
    assert not isinstance(c._channel, H2Channel)
    return c


def _rm(engine: DaemonProcess, *ids: str) -> None:
    engine.cli("rm", "-f", *ids)


# --- unary ---------------------------------------------------------------------------------


def test_unary_calls_match_grpcio(
    engine: DaemonProcess, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    version = client.system.Version(system_pb2.VersionRequest(), timeout=10)
    info = client.system.Info(system_pb2.InfoRequest())
    images = client.images.List(images_pb2.ListImagesRequest())
    containers = client.containers.List(containers_pb2.ListContainersRequest(all=True))
    assert version.version and version.api_version
    assert info.images >= 1 and info.kernel_version == os.uname().release
    assert any("busybox" in tag for image in images.images for tag in image.repo_tags)
    assert isinstance(containers, containers_pb2.ListContainersResponse)

    with _grpc_client(engine.host, monkeypatch) as reference:
        assert reference.system.Version(system_pb2.VersionRequest()) == version
        assert reference.images.List(images_pb2.ListImagesRequest()) == images


# --- server streaming ----------------------------------------------------------------------


def test_logs_follow_then_cancel_sends_rst_stream(engine: DaemonProcess) -> None:
    script = "i=0; while true; do echo line$i; i=$((i+1)); sleep 0.05; done"
    cid = engine.cli("run", "-d", "busybox", "sh", "-c", script, check=True).stdout.strip()
    spec = method_table("containers")["Logs"]
    channel = H2Channel(Endpoint(unix=str(engine.socket)))
    try:
        call = channel.unary_stream(
            spec.path, spec.request.SerializeToString, spec.response.FromString
        )
        request = containers_pb2.ContainerLogsRequest(id=cid, follow=True, stdout=True, tail=-1)
        responses = call(request, timeout=60)
        got = b""
        while got.count(b"\n") < 8:  # chunks: each holds one or more entries
            got += next(responses).data
        assert got.startswith(b"line0\nline1\nline2\n")
        conn, stream = responses._conn, responses._stream
        responses.close()
        # The daemon was told: the stream was closed by our RST_STREAM (CANCEL).
        closed_by = conn.h2._stream_closed_by(stream.id)
        assert closed_by == h2.connection.StreamClosedBy.SEND_RST_STREAM
        with pytest.raises(StatusError) as err:
            next(responses)
        assert err.value.code == "CANCELLED"
        # The connection carries on (and frames still in flight for the call are absorbed).
        time.sleep(0.3)
        ping = method_table("system")["Ping"]
        ping_call = channel.unary_unary(
            ping.path, ping.request.SerializeToString, ping.response.FromString
        )
        ping_call(system_pb2.PingRequest(), timeout=10)
        assert conn is channel._conn and conn.usable
    finally:
        channel.close()
        _rm(engine, cid)


def test_logs_follow_through_client_closes_cleanly(engine: DaemonProcess, client: Client) -> None:
    cid = engine.cli(
        "run", "-d", "busybox", "sh", "-c", "while true; do echo tick; sleep 0.05; done"
    ).stdout.strip()
    try:
        entries = client.containers.Logs(
            containers_pb2.ContainerLogsRequest(id=cid, follow=True, stdout=True, tail=-1)
        )
        got = b""
        while got.count(b"tick\n") < 3:  # chunks: each holds one or more entries
            got += next(entries).data
        assert set(got.split(b"\n")[:-1]) == {b"tick"}
        entries.close()
        with pytest.raises(StopIteration):
            next(entries)
        assert client.system.Ping(system_pb2.PingRequest(), timeout=10) is not None
    finally:
        _rm(engine, cid)


def test_events_stream_sees_a_create(engine: DaemonProcess, client: Client) -> None:
    events = client.system.Events(system_pb2.EventsRequest(), timeout=60)
    name = "h2-events-probe"
    cid = engine.cli("create", "--name", name, "busybox", "true", check=True).stdout.strip()
    try:
        for event in events:
            if event.type == "container" and event.action == "create" and event.id == cid:
                assert event.attributes["name"] == name
                break
        else:
            pytest.fail("the events stream ended without the create event")
        events.close()
    finally:
        _rm(engine, cid)


def test_big_output_through_attach(engine: DaemonProcess) -> None:
    # ~5 MB through the response side of a bidi stream: receive windows must be reopened.
    out = engine.cli(
        "run", "--rm", "busybox", "sh", "-c", "yes abcdefghijklmnopqrstuvwxy | head -c 5000000"
    )
    assert out.returncode == 0, out.stderr
    assert len(out.stdout) == 5_000_000
    assert out.stdout == ("abcdefghijklmnopqrstuvwxy\n" * 200_000)[:5_000_000]


# --- client streaming ----------------------------------------------------------------------


def test_import_busybox_tarball(engine: DaemonProcess, client: Client, busybox_tar: Path) -> None:
    reply = client.import_image(busybox_tar, "h2/busybox:1", changes=['CMD ["sh"]'])
    assert reply.image_id.startswith("sha256:")
    inspected = client.images.Inspect(images_pb2.InspectImageRequest(reference="h2/busybox:1"))
    assert inspected.id == reply.image_id
    out = engine.cli("run", "--rm", "h2/busybox:1", "echo", "imported", check=True)
    assert out.stdout == "imported\n"
    engine.cli("rmi", "h2/busybox:1")


def _big_tarball(busybox_tar: Path, target: Path, size: int) -> str:
    """busybox plus a random /big.bin of ``size`` bytes; returns the file's sha256."""
    payload = os.urandom(size)
    with tarfile.open(busybox_tar) as src, tarfile.open(target, "w") as dst:
        for member in src.getmembers():
            dst.addfile(member, src.extractfile(member) if member.isfile() else None)
        info = tarfile.TarInfo("big.bin")
        info.size = size
        info.mode = 0o644
        dst.addfile(info, io.BytesIO(payload))
    return hashlib.sha256(payload).hexdigest()


def test_import_large_random_tarball(
    engine: DaemonProcess, client: Client, busybox_tar: Path, tmp_path: Path
) -> None:
    tar = tmp_path / "big.tar"
    digest = _big_tarball(busybox_tar, tar, 11 * 1024 * 1024 + 12345)
    assert tar.stat().st_size > 10 * 1024 * 1024

    # 1 MiB chunks (Client.import_image), then the whole tarball as one 12 MiB message (over
    # grpc's default 4 MiB limit; the daemon allows 64 MiB).
    chunked = client.import_image(tar, "h2/big:chunked")
    whole = client.images.Import(
        iter(
            [
                images_pb2.ImportImageInput(reference="h2/big:whole"),
                images_pb2.ImportImageInput(data=tar.read_bytes()),
            ]
        ),
        timeout=120,
    )
    layers = [
        client.images.Inspect(images_pb2.InspectImageRequest(reference=reply.image_id)).layers
        for reply in (chunked, whole)
    ]
    # The same bytes arrived both ways: the stored layer is the tarball itself.
    assert [layer.diff_id for layer in layers[0]] == [layer.diff_id for layer in layers[1]]
    assert layers[0][0].diff_id == "sha256:" + hashlib.sha256(tar.read_bytes()).hexdigest()
    for ref in ("h2/big:chunked", "h2/big:whole"):
        out = engine.cli("run", "--rm", ref, "sha256sum", "/big.bin", check=True)
        assert out.stdout.split()[0] == digest
    engine.cli("rmi", "h2/big:chunked", "h2/big:whole")


# --- bidirectional -------------------------------------------------------------------------


def test_run_interactive_cat_round_trips_stdin(engine: DaemonProcess) -> None:
    data = os.urandom(2 * 1024 * 1024 + 7)
    proc = subprocess.run(
        [sys.executable, "-m", "servin", "-H", engine.host, "run", "-i", "--rm", "busybox", "cat"],
        input=data,
        capture_output=True,
        cwd=REPO,
        timeout=120,
        env={k: v for k, v in os.environ.items() if k != TRANSPORT_ENV},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == data


def test_attach_start_wait_share_one_connection(engine: DaemonProcess, client: Client) -> None:
    cid = client.containers.Create(
        containers_pb2.CreateContainerRequest(
            spec=containers_pb2.ContainerSpec(
                image="busybox",
                cmd=["sh", "-c", "read line; echo got:$line; exit 3"],
                open_stdin=True,
            )
        )
    ).id
    stop = threading.Event()

    def requests() -> Iterator[containers_pb2.AttachInput]:
        yield containers_pb2.AttachInput(id=cid, stdin=True, stdout=True, stderr=True)
        started.wait(30)  # blocks the writer thread, as stdin would
        yield containers_pb2.AttachInput(data="héllo\n".encode())
        stop.wait(30)

    started = threading.Event()
    try:
        responses = client.containers.Attach(requests())
        next(responses)  # registered
        client.containers.Start(containers_pb2.StartContainerRequest(id=cid))
        started.set()
        output = b""
        for message in responses:
            output += message.data
            if message.exited:
                break
        stop.set()
        responses.close()
        assert output == "got:héllo\n".encode()
        reply = client.containers.Wait(containers_pb2.WaitContainerRequest(id=cid), timeout=30)
        assert reply.exit_code == 3
    finally:
        stop.set()
        started.set()
        _rm(engine, cid)


# --- errors --------------------------------------------------------------------------------


def test_errors_keep_class_and_text(
    engine: DaemonProcess, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    reference = _grpc_client(engine.host, monkeypatch)
    try:
        for c in (client, reference):
            with pytest.raises(NotFound) as missing:
                c.containers.Inspect(containers_pb2.InspectContainerRequest(id="h2-missing"))
            assert missing.value.message == "No such container: h2-missing"
            with pytest.raises(InvalidArgument) as bad:
                c.images.Inspect(images_pb2.InspectImageRequest(reference="Ünïcödé/ÿ:!!"))
            assert bad.value.message == "invalid reference format: bad tag in 'Ünïcödé/ÿ:!!'"
            # an error ending a client stream early (trailers-only reply)
            with pytest.raises(InvalidArgument) as bad_import:
                c.images.Import(
                    iter(
                        [
                            images_pb2.ImportImageInput(reference="BAD ü ✓"),
                            images_pb2.ImportImageInput(data=b"x" * 100),
                        ]
                    )
                )
            assert bad_import.value.message == "invalid reference format: 'BAD ü ✓'"
    finally:
        reference.close()


def test_deadline_exceeded_leaves_the_client_usable(engine: DaemonProcess, client: Client) -> None:
    cid = engine.cli("run", "-d", "busybox", "sleep", "60", check=True).stdout.strip()
    try:
        started = time.monotonic()
        with pytest.raises(Unavailable):
            client.containers.Wait(containers_pb2.WaitContainerRequest(id=cid), timeout=0.5)
        assert time.monotonic() - started < 5
        assert client.containers.Inspect(containers_pb2.InspectContainerRequest(id=cid)).id == cid
    finally:
        _rm(engine, cid)


def test_unreachable_socket_is_one_line(scratch: Path) -> None:
    missing = f"unix://{scratch}/nothing.sock"
    with Client(missing) as c, pytest.raises(DaemonUnreachable):
        c.system.Ping(system_pb2.PingRequest(), timeout=5)

    with socket.socket() as s:  # a tcp port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with Client(f"tcp://127.0.0.1:{port}") as c, pytest.raises(DaemonUnreachable):
        c.system.Ping(system_pb2.PingRequest(), timeout=5)

    from tests.daemon import run_cli

    out = run_cli("-H", missing, "ps")
    assert out.returncode != 0
    assert out.stderr.splitlines() == [
        f"Error: Cannot connect to the Servin daemon at {missing}. Is the daemon running? "
        "Start it with 'sudo servin daemon' (or 'sudo servind')."
    ]


def test_daemon_stopping_mid_stream_is_unavailable(
    daemon_factory: type[DaemonProcess], busybox_tar: Path
) -> None:
    d = daemon_factory().start()
    with Client(d.host) as c:
        events = c.system.Events(system_pb2.EventsRequest(), timeout=60)
        c.system.Ping(system_pb2.PingRequest())
        d.stop()
        with pytest.raises(Unavailable):
            next(events)
        with pytest.raises(DaemonUnreachable):
            c.system.Ping(system_pb2.PingRequest(), timeout=5)


# --- transport details ---------------------------------------------------------------------


def test_tcp_host(daemon_factory: type[DaemonProcess]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = short_tmpdir()
    d = daemon_factory(
        base, ["--host", f"unix://{base}/run/servin.sock", "--host", f"tcp://127.0.0.1:{port}"]
    ).start()
    with Client(f"tcp://127.0.0.1:{port}") as c:
        assert c.system.Version(system_pb2.VersionRequest()).version
    out = d.cli("-H", f"tcp://127.0.0.1:{port}", "ps", check=True)
    assert out.stdout.startswith("CONTAINER ID")


def test_concurrent_calls_from_threads_share_one_connection(
    engine: DaemonProcess, client: Client
) -> None:
    cid = engine.cli(
        "run", "-d", "busybox", "sh", "-c", "while true; do echo x; sleep 0.02; done"
    ).stdout.strip()
    expected_version = client.system.Version(system_pb2.VersionRequest())
    conn = client._channel._conn
    seen: list[bytes] = []

    def follow() -> None:
        entries = client.containers.Logs(
            containers_pb2.ContainerLogsRequest(id=cid, follow=True, stdout=True, tail=-1)
        )
        for entry in entries:
            seen.append(entry.data)
            if len(seen) >= 40:
                entries.close()
                return

    def work(i: int) -> str:
        for _ in range(15):
            assert client.system.Version(system_pb2.VersionRequest()) == expected_version
            listed = client.containers.List(containers_pb2.ListContainersRequest())
            assert cid in [c.id for c in listed.containers]
            client.images.List(images_pb2.ListImagesRequest())
        return "ok"

    try:
        follower = threading.Thread(target=follow)
        follower.start()
        with ThreadPoolExecutor(8) as pool:
            assert list(pool.map(work, range(8))) == ["ok"] * 8
        follower.join(60)
        assert not follower.is_alive()
        assert set(b"".join(seen).split(b"\n")[:-1]) == {b"x"}  # chunks of entries
        assert client._channel._conn is conn  # everything ran on the one connection
    finally:
        _rm(engine, cid)


def _imported_modules(*args: str, env: dict[str, str] | None = None) -> set[str]:
    full = {k: v for k, v in os.environ.items() if k not in (TRANSPORT_ENV, "SERVIN_HOST")}
    full.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "servin", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=full,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    modules = set()
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            modules.add(line.rsplit("|", 1)[1].strip())
    return modules


def _heavy(modules: set[str]) -> set[str]:
    return {m for m in modules if m.split(".")[0] in ("grpc", "asyncio")}


def test_ps_imports_neither_grpc_nor_asyncio(engine: DaemonProcess) -> None:
    # the full CLI's ps (the quick front's is checked in tests/cli/quick)
    modules = _imported_modules("-H", engine.host, "ps", env={"SERVIN_QUICK": "0"})
    assert "h2.connection" in modules and "servin.client.h2channel" in modules
    assert _heavy(modules) == set()


def test_grpc_transport_still_works_from_the_cli(engine: DaemonProcess) -> None:
    env = {TRANSPORT_ENV: "grpc"}
    assert "grpc" in _imported_modules("-H", engine.host, "ps", env=env)  # the switch took
    assert engine.cli("version", env=env, check=True).stdout
    assert "busybox" in engine.cli("images", env=env, check=True).stdout
    out = engine.cli("run", "--rm", "busybox", "echo", "via grpcio", env=env, check=True)
    assert out.stdout == "via grpcio\n"
    ran = engine.cli("run", "-i", "--rm", "busybox", "cat", input=b"piped\n", env=env, check=True)
    assert ran.stdout == "piped\n"
    missing = engine.cli("inspect", "h2-nothing-here", env=env)
    assert missing.returncode != 0 and "h2-nothing-here" in missing.stderr


def test_wire_helpers() -> None:
    assert encode_timeout(0.5) == b"500m"
    assert encode_timeout(2) == b"2000m"
    assert encode_timeout(0.0001) == b"1m"
    assert encode_timeout(500_000) == b"500000S"
    assert decode_status({b"grpc-status": b"5", b"grpc-message": b"no %C3%BC%0Ahere"}) == (
        "NOT_FOUND",
        "no ü\nhere",
    )
    assert decode_status({b"grpc-status": b"99"}) == ("UNKNOWN", "")
    assert decode_status({}) is None
