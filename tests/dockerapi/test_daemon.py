"""The Docker API door of a real daemon: the docker CLI v28 and docker-py against docker.sock
(version, info, system df, events, ping), raw HTTP at the socket, and a bounded fuzz run
after which the daemon still answers and holds no more file descriptors than before."""

from __future__ import annotations

import json
import os
import platform
import random
import socket
import stat
import subprocess
import time
from collections.abc import Callable
from typing import Any

import docker
import pytest

from tests.daemon import DaemonProcess
from tests.dockerapi.conftest import DOCKER, docker_sock
from tests.dockerapi.rawhttp import Reader, connect, encode_request, request

DockerCLI = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def containers(engine: DaemonProcess) -> dict[str, str]:
    """One running, one paused and one exited container (the daemon's only ones)."""
    engine.cli("run", "-d", "--name", "up", "busybox", "sleep", "300", check=True)
    engine.cli("run", "-d", "--name", "frozen", "busybox", "sleep", "300", check=True)
    engine.cli("pause", "frozen", check=True)
    engine.cli("run", "--name", "done", "busybox", "true", check=True)
    return {"running": "up", "paused": "frozen", "exited": "done"}


def test_socket_is_there_with_servin_sock_permissions(engine: DaemonProcess) -> None:
    sock = docker_sock(engine)
    st = sock.stat()
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o660
    assert st.st_gid == engine.socket.stat().st_gid


def test_docker_version(engine: DaemonProcess, docker_cli: DockerCLI) -> None:
    out = docker_cli(docker_sock(engine), "version")
    assert out.returncode == 0, out.stderr
    assert "Server: Servin" in out.stdout
    assert "API version:      1.50 (minimum version 1.24)" in out.stdout
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    assert f"OS/Arch:          linux/{arch}" in out.stdout
    fmt = "{{.Client.APIVersion}} {{.Server.APIVersion}} {{.Server.Os}}"
    out = docker_cli(docker_sock(engine), "version", "--format", fmt)
    assert out.stdout.split() == ["1.50", "1.50", "linux"], out.stderr
    # An older client pins its version: served as that version.
    out = docker_cli(docker_sock(engine), "version", "--format", fmt,
                     env={"DOCKER_API_VERSION": "1.41"})
    assert out.stdout.split() == ["1.41", "1.50", "linux"], out.stderr
    out = docker_cli(docker_sock(engine), "version", env={"DOCKER_API_VERSION": "1.99"})
    assert out.returncode == 1
    assert "client version 1.99 is too new. Maximum supported API version is 1.50" in out.stderr


def test_docker_info(engine: DaemonProcess, containers: dict[str, str],
                     docker_cli: DockerCLI) -> None:
    out = docker_cli(docker_sock(engine), "info", "--format", "{{json .}}")
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert (info["Containers"], info["ContainersRunning"], info["ContainersPaused"],
            info["ContainersStopped"]) == (3, 1, 1, 1)
    assert info["Images"] == 1
    assert info["Swarm"]["LocalNodeState"] == "inactive"
    assert info["DockerRootDir"] == str(engine.root)
    assert info["NCPU"] == os.cpu_count()
    assert info["MemTotal"] == os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert info["KernelVersion"] == platform.release()
    assert info["Architecture"] == platform.machine()
    assert info["OSType"] == "linux" and info["Name"] == socket.gethostname()
    assert info["Driver"] in ("overlay", "copy")
    assert info["CgroupVersion"] in ("1", "2") and info["CgroupDriver"] == "cgroupfs"
    assert info["DefaultRuntime"] == "native" and "native" in info["Runtimes"]
    assert "name=seccomp,profile=builtin" in info["SecurityOptions"]
    servin_info = json.loads(engine.cli("info", "--format", "json", check=True).stdout)
    assert info["ID"] == servin_info["ID"]
    human = docker_cli(docker_sock(engine), "info")
    assert human.returncode == 0, human.stderr
    for line in (" Containers: 3", "  Running: 1", "  Paused: 1", "  Stopped: 1",
                 " Images: 1", " Swarm: inactive", f" Docker Root Dir: {engine.root}"):
        assert line in human.stdout.splitlines(), line


def test_docker_system_df(engine: DaemonProcess, containers: dict[str, str],
                          docker_cli: DockerCLI) -> None:
    out = docker_cli(docker_sock(engine), "system", "df", "--format", "{{json .}}")
    assert out.returncode == 0, out.stderr
    rows = {r["Type"]: r for r in map(json.loads, out.stdout.splitlines())}
    assert rows["Images"]["TotalCount"] == "1" and rows["Images"]["Active"] == "1"
    assert rows["Containers"]["TotalCount"] == "3" and rows["Containers"]["Active"] == "2"
    assert rows["Local Volumes"]["TotalCount"] == "0"
    verbose = docker_cli(docker_sock(engine), "system", "df", "-v")
    assert verbose.returncode == 0, verbose.stderr
    for name in containers.values():
        assert name in verbose.stdout
    assert "busybox" in verbose.stdout


def test_docker_events_since_until(engine: DaemonProcess, docker_cli: DockerCLI) -> None:
    start = time.time()
    engine.cli("volume", "create", "evt-a", check=True)
    engine.cli("volume", "rm", "evt-a", check=True)
    engine.cli("run", "--rm", "--name", "evt-c", "busybox", "true", check=True)
    end = time.time() + 0.5
    time.sleep(0.6)
    since, until = f"{start:.3f}", f"{end:.3f}"
    out = docker_cli(docker_sock(engine), "events", "--since", since, "--until", until,
                     "--format", "{{json .}}")
    assert out.returncode == 0, out.stderr
    events = [json.loads(line) for line in out.stdout.splitlines()]
    seen = [(e["Type"], e["Action"], e["Actor"]["Attributes"].get("name", e["Actor"]["ID"]))
            for e in events]
    assert ("volume", "create", "evt-a") in seen and ("volume", "destroy", "evt-a") in seen
    for action in ("create", "start", "die", "destroy"):
        assert ("container", action, "evt-c") in seen, (action, seen)
    assert all(start * 1e9 <= e["timeNano"] <= end * 1e9 for e in events)
    out = docker_cli(docker_sock(engine), "events", "--since", since, "--until", until,
                     "--filter", "type=volume", "--filter", "event=create",
                     "--format", "{{.Type}} {{.Action}} {{.Actor.ID}}")
    assert out.stdout.splitlines() == ["volume create evt-a"], out.stderr
    out = docker_cli(docker_sock(engine), "events", "--since", since, "--until", until,
                     "--filter", "container=evt-c", "--format", "{{.Action}}")
    assert out.stdout.split() == ["create", "start", "die", "destroy"], out.stdout


def _listeners(engine: DaemonProcess) -> int:
    return int(request(docker_sock(engine), "GET", "/info").json()["NEventsListener"])


def test_docker_events_streams_live_and_ends_with_its_client(
        engine: DaemonProcess, docker_config: Any) -> None:
    assert DOCKER is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    env["DOCKER_CONFIG"] = str(docker_config)
    proc = subprocess.Popen(
        [DOCKER, "-H", f"unix://{docker_sock(engine)}", "events", "--filter", "type=volume",
         "--format", "{{.Action}} {{.Actor.ID}}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 20
        while _listeners(engine) != 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _listeners(engine) == 1
        engine.cli("volume", "create", "live-v", check=True)
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "create live-v"
    finally:
        proc.terminate()
        proc.wait(10)
        engine.cli("volume", "rm", "-f", "live-v")
    deadline = time.monotonic() + 20
    while _listeners(engine) != 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _listeners(engine) == 0, "the daemon kept the subscription of a client that left"


def test_docker_py(engine: DaemonProcess, containers: dict[str, str],
                   client: docker.DockerClient) -> None:
    assert client.ping() is True
    assert client.api.api_version == "1.50"
    version = client.version()
    assert version["ApiVersion"] == "1.50" and version["MinAPIVersion"] == "1.24"
    assert version["Components"][0]["Name"] == "Engine"
    info = client.info()
    assert info["ContainersRunning"] == 1 and info["Swarm"]["LocalNodeState"] == "inactive"
    df = client.df()
    assert {i["Id"] for i in df["Images"]} == {
        engine.cli("image", "inspect", "-f", "{{.Id}}", "busybox", check=True).stdout.strip()}
    assert sorted(c["Names"][0] for c in df["Containers"]) == ["/done", "/frozen", "/up"]
    assert all(c["SizeRw"] >= 0 for c in df["Containers"])
    start = time.time()
    engine.cli("volume", "create", "py-ev", check=True)
    engine.cli("volume", "rm", "py-ev", check=True)
    until = time.time() + 0.3
    time.sleep(0.4)
    events = list(client.events(since=start, until=until, decode=True,
                                filters={"type": "volume"}))
    assert [(e["Action"], e["Actor"]["ID"]) for e in events] == [
        ("create", "py-ev"), ("destroy", "py-ev")]
    # The low-level client against a pinned old version.
    old = docker.APIClient(base_url=f"unix://{docker_sock(engine)}", version="1.24")
    try:
        assert old.version()["ApiVersion"] == "1.50"
        assert "BridgeNfIptables" in old.info()
    finally:
        old.close()


def test_raw_http_on_the_daemon(engine: DaemonProcess) -> None:
    sock = docker_sock(engine)
    resp = request(sock, "HEAD", "/_ping")
    assert (resp.status, resp.body, resp.headers["api-version"]) == (200, b"", "1.50")
    resp = request(sock, "GET", "/v1.51/version")
    assert resp.status == 400
    assert resp.json()["message"] == ("client version 1.51 is too new. Maximum supported API "
                                      "version is 1.50")
    resp = request(sock, "GET", "/v1.50/containers/nothing/here")
    assert (resp.status, resp.json()) == (404, {"message": "page not found"})
    resp = request(sock, "GET", '/events?since=abc')
    assert resp.status == 400 and "since" in resp.json()["message"]
    resp = request(sock, "GET", "/events?since=20&until=10")
    assert resp.status == 400 and "cannot be after" in resp.json()["message"]
    resp = request(sock, "GET", "/system/df?type=image&type=volume")
    assert set(resp.json()) == {"LayersSize", "Images", "Volumes", "BuilderSize"}
    resp = request(sock, "GET", "/system/df?type=cats")
    assert (resp.status, resp.json()) == (400, {"message": "unknown object type: cats"})
    resp = request(sock, "POST", "/auth", b"[1]")
    assert resp.status == 400 and "auth config" in resp.json()["message"]
    # An older client's shape: 1.24 gets names-only security options, no FirewallBackend.
    info = request(sock, "GET", "/v1.24/info").json()
    assert "seccomp" in info["SecurityOptions"] and "FirewallBackend" not in info
    assert info["RuncCommit"]["Expected"] == info["RuncCommit"]["ID"]


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _settle(pid: int, target: int) -> int:
    deadline = time.monotonic() + 15
    count = _fds(pid)
    while count > target and time.monotonic() < deadline:
        time.sleep(0.1)
        count = _fds(pid)
    return count


def test_fuzz_garbage_truncation_half_close_and_slowloris(engine: DaemonProcess) -> None:
    sock = docker_sock(engine)
    assert engine.proc is not None
    pid = engine.proc.pid
    assert request(sock, "GET", "/info").status == 200  # warm: lazily opened files stay
    baseline = _settle(pid, 0)
    rng = random.Random(18)
    valid = [
        encode_request("GET", "/v1.50/version"),
        encode_request("POST", "/v1.50/auth", b'{"username": "x"}',
                       {"Content-Type": "application/json"}),
        encode_request("GET", "/events?since=1&until=2"),
        encode_request("POST", "/upload", headers={"Transfer-Encoding": "chunked"})
        + b"5\r\nhello\r\n",
        # the object endpoints: JSON bodies, streamed uploads and downloads, registry calls
        encode_request("POST", "/v1.50/volumes/create", b'{"Name": "fz-vol"}',
                       {"Content-Type": "application/json"}),
        encode_request("POST", "/v1.50/networks/create",
                       b'{"Name": "fz-net", "IPAM": {"Config": [{"Subnet": "x"}]}}',
                       {"Content-Type": "application/json"}),
        encode_request("POST", "/v1.50/images/load?quiet=1",
                       headers={"Transfer-Encoding": "chunked"}) + b"200\r\n" + b"\0" * 512,
        encode_request("POST", "/v1.50/images/create?fromSrc=-&repo=fz",
                       headers={"Transfer-Encoding": "chunked"}) + b"a\r\n0123456789\r\n",
        encode_request("GET", "/v1.50/images/busybox/get"),
        encode_request("POST", "/v1.50/images/create?fromImage=127.0.0.1:1/fz&tag=x"),
        encode_request("GET", "/v1.50/images/json?filters=%7B%22dangling%22%3A%5B%22x"),
    ]

    def fire(data: bytes, half_close: bool) -> None:
        with connect(sock, timeout=10) as s:
            try:
                s.sendall(data)
                if half_close:
                    s.shutdown(socket.SHUT_WR)
                    while s.recv(65536):  # the daemon answers or closes; it never hangs
                        pass
            except (ConnectionResetError, BrokenPipeError):
                pass

    for i in range(150):
        kind = i % 5
        if kind == 0:
            data = rng.randbytes(rng.randint(1, 4096))
        elif kind == 1:
            data = b"GET /" + rng.randbytes(rng.randint(1, 300))
        elif kind == 2:
            req = rng.choice(valid)
            data = req[:rng.randint(1, len(req) - 1)]
        elif kind == 3:
            data = rng.choice(valid)
        else:
            req = bytearray(rng.choice(valid))
            for _ in range(rng.randint(1, 8)):
                req[rng.randrange(len(req))] = rng.randrange(256)
            data = bytes(req)
        fire(data, half_close=rng.random() < 0.6)
    # A head larger than the limit, and a body shorter than it said.
    fire(b"GET /_ping HTTP/1.1\r\nX-Big: " + b"a" * (2 * 1024 * 1024) + b"\r\n\r\n", True)
    fire(encode_request("POST", "/auth", b"{}", {"Content-Length": "100"}), True)
    # Half-closed after a whole request: the whole answer still comes.
    with connect(sock) as s:
        s.sendall(encode_request("GET", "/_ping"))
        s.shutdown(socket.SHUT_WR)
        reader = Reader(s)
        assert reader.response().body == b"OK"
        assert reader.rest() == b""
    # Slowloris: heads trickling in on many connections do not stop others being served.
    slow = [connect(sock) for _ in range(20)]
    try:
        for step in range(3):
            for s in slow:
                s.sendall(b"GET /_ping HTTP/1.1\r\n"[step * 7:(step + 1) * 7])
            assert request(sock, "GET", "/_ping").body == b"OK"
    finally:
        for s in slow:
            s.close()
    # Alive, answering on both doors, and every connection's descriptor is gone.
    assert engine.proc.poll() is None
    assert request(sock, "GET", "/_ping").body == b"OK"
    assert engine.cli("ps", "-a", "-q").returncode == 0
    assert _settle(pid, baseline) <= baseline, "file descriptors leaked"
