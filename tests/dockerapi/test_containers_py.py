"""docker-py's container API against a real daemon's docker.sock, docker's stats document,
and bad input (404 unknown containers, 400 bad JSON and parameters, 409 conflicts) leaving
nothing half-created."""

from __future__ import annotations

import io
import json
import os
import socket
import tarfile
import time
from collections.abc import Iterator
from typing import Any

import docker
import docker.errors
import pytest

from servin.engine.server.docker.streams import demultiplex
from tests.daemon import DaemonProcess
from tests.dockerapi.conftest import docker_sock
from tests.dockerapi.rawhttp import Reader, connect, encode_request, request


@pytest.fixture
def client(client: docker.DockerClient) -> Iterator[docker.DockerClient]:
    """The package's docker-py client; the test's containers removed after it."""
    yield client
    for container in client.containers.list(all=True):
        container.remove(force=True)


def test_run_create_list_get_wait_remove(client: docker.DockerClient) -> None:
    assert client.containers.run("busybox", ["echo", "hi"], remove=True) == b"hi\n"
    with pytest.raises(docker.errors.ContainerError) as failed:
        client.containers.run("busybox", ["sh", "-c", "echo oops >&2; exit 3"])
    assert failed.value.exit_status == 3 and b"oops" in failed.value.stderr

    created = client.containers.create("busybox", ["sleep", "60"], name="made",
                                       labels={"role": "test"}, environment={"A": "1"})
    assert created.status == "created"
    assert client.containers.get("made").id == created.id
    created.start()
    created.reload()
    assert created.status == "running"
    assert created.attrs["Config"]["Env"][0] == "A=1"
    listed = client.containers.list(filters={"label": "role=test"})
    assert [c.name for c in listed] == ["made"]
    assert client.containers.list(filters={"status": "exited"}) == [
        c for c in client.containers.list(all=True) if c.status == "exited"]
    created.kill(signal="SIGKILL")
    assert created.wait(timeout=20) == {"Error": None, "StatusCode": 137}
    created.remove()
    with pytest.raises(docker.errors.NotFound):
        client.containers.get("made")


def test_logs_stream_and_demux_exec(client: docker.DockerClient) -> None:
    c = client.containers.run("busybox", ["sh", "-c", "for i in 1 2 3; do echo line$i; "
                                          "sleep 0.2; done; echo bad >&2; sleep 30"],
                              detach=True)
    lines = []
    for line in c.logs(stream=True, follow=True):
        lines.append(line)
        if b"bad" in line:
            break
    assert b"".join(lines) == b"line1\nline2\nline3\nbad\n"
    assert c.logs(stdout=False) == b"bad\n"
    # The tail counts the log's lines, then the stream is chosen (as dockerd's json-file).
    assert c.logs(tail=2, stderr=False) == b"line3\n"

    code, (out, err) = c.exec_run(["sh", "-c", "echo o; echo e >&2; exit 2"], demux=True)
    assert (code, out, err) == (2, b"o\n", b"e\n")
    result = c.exec_run(["sh", "-c", "for i in 1 2 3; do echo s$i; done"], stream=True)
    assert b"".join(result.output) == b"s1\ns2\ns3\n"
    result = c.exec_run(["sh", "-c", "echo a; echo b >&2"], stream=True, demux=True)
    got: dict[str, bytes] = {"out": b"", "err": b""}
    for out, err in result.output:
        got["out"] += out or b""
        got["err"] += err or b""
    assert got == {"out": b"a\n", "err": b"b\n"}
    inspect = client.api.exec_inspect(client.api.exec_create(c.id, ["true"])["Id"])
    assert inspect["Running"] is False and inspect["ExitCode"] is None


def test_archives(client: docker.DockerClient) -> None:
    c = client.containers.run("busybox", ["sleep", "60"], detach=True)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        payload = b"x" * 100_000
        info = tarfile.TarInfo("dir/data.bin")
        info.size = len(payload)
        info.mode = 0o640
        tar.addfile(info, io.BytesIO(payload))
    assert c.put_archive("/tmp", buf.getvalue()) is True
    chunks, stat = c.get_archive("/tmp/dir/data.bin")
    assert stat["name"] == "data.bin" and stat["size"] == 100_000
    assert stat["mode"] == 0o640
    with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
        member = tar.getmember("data.bin")
        assert tar.extractfile(member).read() == payload  # type: ignore[union-attr]
    _, stat = c.get_archive("/tmp/dir")
    assert stat["mode"] & (1 << 31)  # Go's os.ModeDir
    with pytest.raises(docker.errors.NotFound):
        c.get_archive("/no/such/path")
    with pytest.raises(docker.errors.NotFound):
        c.put_archive("/no/such/dir", buf.getvalue())
    assert {"Kind": 1, "Path": "/tmp/dir"} in c.diff()


def test_stats_documents(client: docker.DockerClient) -> None:
    c = client.containers.run("busybox", ["sh", "-c", "while true; do :; done"], detach=True,
                              mem_limit="64m", pids_limit=50, nano_cpus=500_000_000)
    stream = c.stats(stream=True, decode=True)
    first, second = next(stream), next(stream)
    stream.close()
    for doc in (first, second):
        assert doc["id"] == c.id and doc["name"] == f"/{c.name}"
        assert doc["memory_stats"]["limit"] == 64 * 1024 * 1024
        assert doc["memory_stats"]["usage"] > 0 and doc["memory_stats"]["stats"]
        assert doc["pids_stats"] == {"current": 1, "limit": 50}
        assert doc["cpu_stats"]["online_cpus"] == os.cpu_count()
        assert set(doc["networks"]) == {"eth0"}
        assert doc["blkio_stats"]["io_service_bytes_recursive"] is None or all(
            set(e) == {"major", "minor", "op", "value"}
            for e in doc["blkio_stats"]["io_service_bytes_recursive"])
    # The second's precpu is the first's cpu: a client computes a CPU % from them.
    assert second["precpu_stats"] == first["cpu_stats"]
    assert second["preread"] == first["read"]
    cpu = second["cpu_stats"]["cpu_usage"]["total_usage"] - \
        second["precpu_stats"]["cpu_usage"]["total_usage"]
    system = second["cpu_stats"]["system_cpu_usage"] - \
        second["precpu_stats"]["system_cpu_usage"]
    assert cpu > 0 and system > 0  # a busy loop
    # A CPU quota: the CFS bandwidth periods count (how many are throttled depends on how
    # much CPU the busy loop gets on a busy machine).
    throttling = second["cpu_stats"]["throttling_data"]
    assert throttling["periods"] > 0
    assert 0 <= throttling["throttled_periods"] <= throttling["periods"]
    # stream=false waits for a second pass, as dockerd does; one-shot answers at once.
    doc = c.stats(stream=False)
    assert doc["precpu_stats"]["cpu_usage"]["total_usage"] > 0
    one = client.api.stats(c.id, stream=False, one_shot=True)
    assert one["precpu_stats"]["cpu_usage"]["total_usage"] == 0
    assert one["cpu_stats"]["cpu_usage"]["total_usage"] > 0
    c.kill()
    c.wait()
    stopped = c.stats(stream=False)
    assert stopped["read"] == "0001-01-01T00:00:00Z" and stopped["memory_stats"] == {}


def test_attach_socket(engine: DaemonProcess, client: docker.DockerClient) -> None:
    c = client.containers.create("busybox", ["sh", "-c", "read line; echo got:$line; "
                                             "echo err >&2"], stdin_open=True)
    sock = client.api.attach_socket(c.id, params={"stdin": 1, "stdout": 1, "stderr": 1,
                                                  "stream": 1})
    raw: socket.socket = sock._sock
    c.start()
    raw.sendall(b"hello\n")
    data = b""
    raw.settimeout(20)
    while True:
        piece = raw.recv(65536)
        if not piece:
            break
        data += piece
    frames = []
    while data:
        stream, size = data[0], int.from_bytes(data[4:8], "big")
        frames.append((stream, data[8:8 + size]))
        data = data[8 + size:]
    assert (1, b"got:hello\n") in frames and (2, b"err\n") in frames
    sock.close()
    assert c.wait(timeout=20)["StatusCode"] == 0
    # logs=1 replays the output before the live stream (here: the whole output, it ended).
    # On a raw socket: docker-py reads the 101's head through a buffered reader and then
    # reads the bare socket, losing what came in the same segment as the head.
    for query, frames in (("stdout=1&stderr=1", [(1, b"got:hello\n"), (2, b"err\n")]),
                          ("stderr=1", [(2, b"err\n")])):
        with connect(docker_sock(engine)) as s:
            s.sendall(encode_request("POST", f"/v1.50/containers/{c.id}/attach?logs=1&{query}",
                                     headers={"Connection": "Upgrade", "Upgrade": "tcp"}))
            reader = Reader(s)
            assert reader.until(b"\r\n\r\n").startswith(b"HTTP/1.1 101 UPGRADED")
            assert demultiplex(reader.rest()) == frames


# -- bad input -------------------------------------------------------------------------------


def _count(engine: DaemonProcess) -> int:
    return len(request(docker_sock(engine), "GET", "/containers/json?all=1").json())


def test_errors_are_docker_statuses_and_change_nothing(engine: DaemonProcess) -> None:
    sock = docker_sock(engine)
    json_headers = {"Content-Type": "application/json"}
    before = _count(engine)
    for method, target in (("GET", "/containers/nosuch/json"), ("POST", "/containers/nosuch/start"),
                           ("POST", "/containers/nosuch/stop"), ("DELETE", "/containers/nosuch"),
                           ("GET", "/containers/nosuch/logs?stdout=1"),
                           ("POST", "/containers/nosuch/wait"),
                           ("GET", "/containers/nosuch/archive?path=/"),
                           ("GET", "/containers/nosuch/stats?stream=0"),
                           ("POST", "/containers/nosuch/exec"), ("GET", "/exec/nosuch/json")):
        resp = request(sock, method, f"/v1.50{target}",
                       b'{"Cmd": ["true"]}' if method == "POST" else b"",
                       json_headers if method == "POST" else None)
        assert resp.status == 404, (target, resp.status, resp.body)
        assert resp.json()["message"].startswith(("No such container: nosuch",
                                                  "No such exec instance"))
    bad = [
        (b'{"Image": "busybox", ', json_headers, "invalid JSON"),
        (b'{"Image": "busybox"}', {"Content-Type": "text/plain"}, "Content-Type"),
        (b'{"Image": "busybox", "Cmd": 5}', json_headers, "Cmd"),
        (b'{"Image": "busybox", "HostConfig": {"Memory": "lots"}}', json_headers, "Memory"),
        (b'{"Image": "busybox", "HostConfig": {"RestartPolicy": {"Name": "sometimes"}}}',
         json_headers, "restart"),
        (b'{"Image": "busybox", "Volumes": {"relative": {}}}', json_headers, "relative"),
        (b'[1]', json_headers, "object"),
    ]
    for body, headers, word in bad:
        resp = request(sock, "POST", "/v1.50/containers/create?name=half", body, headers)
        assert resp.status == 400, (body, resp.status, resp.body)
        assert word.lower() in resp.json()["message"].lower(), resp.body
    resp = request(sock, "POST", "/v1.50/containers/create?name=half",
                   b'{"Image": "nosuchimage"}', json_headers)
    assert resp.status == 404 and "No such image" in resp.json()["message"]
    assert _count(engine) == before
    assert engine.cli("ps", "-a", "-q").stdout == "" or before > 0

    resp = request(sock, "POST", "/v1.50/containers/create?name=taken",
                   b'{"Image": "busybox", "Cmd": ["sleep", "60"]}', json_headers)
    assert resp.status == 201, resp.body
    taken = resp.json()["Id"]
    resp = request(sock, "POST", "/v1.50/containers/create?name=taken",
                   b'{"Image": "busybox"}', json_headers)
    assert resp.status == 409 and 'The container name "/taken" is already in use' in \
        resp.json()["message"]
    assert _count(engine) == before + 1
    for method, target, status in (
        ("GET", "/containers/taken/logs", 400),  # no stream chosen
        ("POST", "/containers/taken/wait?condition=sometime", 400),
        ("POST", "/containers/taken/kill?signal=NOPE", 400),
        ("POST", "/containers/taken/kill", 409),  # not running
        ("POST", "/containers/taken/pause", 409),
        ("POST", "/containers/taken/resize?h=10&w=40", 409),
        ("POST", "/containers/taken/resize?h=x&w=40", 400),
        ("POST", "/containers/taken/stop", 304),
        ("POST", "/containers/taken/rename?name=taken", 409),
        ("POST", "/containers/taken/rename?name=bad/name", 400),
        ("GET", "/containers/taken/stats?stream=1&one-shot=1", 400),
        ("GET", "/containers/json?filters=%7B%22nope%22%3A%5B%22x%22%5D%7D", 400),
        ("GET", "/containers/json?limit=many", 400),
        ("GET", "/containers/taken/archive", 400),  # no path
    ):
        resp = request(sock, method, f"/v1.50{target}")
        assert resp.status == status, (target, resp.status, resp.body)
    resp = request(sock, "POST", f"/v1.50/containers/{taken}/start")
    assert resp.status == 204
    resp = request(sock, "POST", f"/v1.50/containers/{taken}/start")
    assert resp.status == 304
    resp = request(sock, "DELETE", "/v1.50/containers/taken")
    assert resp.status == 409 and "cannot remove a running container" in resp.json()["message"]
    resp = request(sock, "POST", "/v1.50/containers/taken/exec", b'{"Cmd": []}', json_headers)
    assert resp.status == 400
    resp = request(sock, "DELETE", "/v1.50/containers/taken?force=1")
    assert resp.status == 204
    assert _count(engine) == before


def test_wait_headers_before_start_and_exit_code(engine: DaemonProcess) -> None:
    """docker run's order: wait(next-exit) answers its headers at once, then the start."""
    sock = docker_sock(engine)
    resp = request(sock, "POST", "/v1.50/containers/create",
                   b'{"Image": "busybox", "Cmd": ["sh", "-c", "exit 4"]}',
                   {"Content-Type": "application/json"})
    cid = resp.json()["Id"]
    with connect(sock) as s:
        s.sendall(encode_request("POST", f"/v1.50/containers/{cid}/wait?condition=next-exit"))
        reader = Reader(s)
        head = reader.head()
        assert head.status == 200
        assert request(sock, "POST", f"/v1.50/containers/{cid}/start").status == 204
        body: Any = json.loads(b"".join(reader.chunks()))
    assert body == {"Error": None, "StatusCode": 4}
    assert request(sock, "DELETE", f"/v1.50/containers/{cid}").status == 204


def test_prune_and_update(engine: DaemonProcess, client: docker.DockerClient) -> None:
    keep = client.containers.run("busybox", ["true"], detach=True, labels={"keep": "1"})
    gone = client.containers.run("busybox", ["true"], detach=True)
    running = client.containers.run("busybox", ["sleep", "60"], detach=True)
    keep.wait()
    gone.wait()
    result = client.containers.prune(filters={"label!": "keep"})
    assert result["ContainersDeleted"] == [gone.id]
    assert {c.id for c in client.containers.list(all=True)} == {keep.id, running.id}
    running.update(mem_limit="32m", restart_policy={"Name": "unless-stopped"})
    running.reload()
    assert running.attrs["HostConfig"]["Memory"] == 32 * 1024 * 1024
    assert running.attrs["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    running.rename("renamed")
    assert client.containers.get("renamed").id == running.id
    top = running.top()
    assert "PID" in top["Titles"] and any("sleep" in " ".join(p) for p in top["Processes"])
    running.pause()
    running.reload()
    assert running.status == "paused"
    running.unpause()
    running.restart(timeout=1)
    running.reload()
    assert running.status == "running"
    assert time.time() > 0


def test_attach_websocket(engine: DaemonProcess, client: docker.DockerClient) -> None:
    from wsproto import ConnectionType, WSConnection
    from wsproto.events import (
        AcceptConnection,
        BytesMessage,
        CloseConnection,
        TextMessage,
    )
    from wsproto.events import Request as WSRequest

    c = client.containers.create("busybox", ["sh", "-c", "echo before; read l; echo got:$l"],
                                 stdin_open=True)
    ws = WSConnection(ConnectionType.CLIENT)
    with connect(docker_sock(engine), timeout=20) as s:
        s.sendall(ws.send(WSRequest(
            host="docker", target=f"/v1.50/containers/{c.id}/attach/ws?stream=1&stdin=1"
                                  "&stdout=1&stderr=1")))
        events: list[Any] = []
        while not any(isinstance(e, AcceptConnection) for e in events):
            ws.receive_data(s.recv(65536))
            events += list(ws.events())
        c.start()
        received = b""
        while b"before" not in received:
            ws.receive_data(s.recv(65536))
            received += b"".join(bytes(e.data) for e in ws.events()
                                 if isinstance(e, BytesMessage))
        s.sendall(ws.send(TextMessage(data="over ws\n")))
        closed = False
        while not closed:
            data = s.recv(65536)
            if not data:
                break
            ws.receive_data(data)
            for e in ws.events():
                if isinstance(e, BytesMessage):
                    received += bytes(e.data)
                closed = closed or isinstance(e, CloseConnection)
    assert received == b"before\ngot:over ws\n"
    assert c.wait(timeout=20)["StatusCode"] == 0
    # Not an upgrade: 400, nothing attached.
    resp = request(docker_sock(engine), "GET", f"/v1.50/containers/{c.id}/attach/ws?stream=1")
    assert resp.status == 400


def test_clients_leaving_end_their_streams(engine: DaemonProcess,
                                           client: docker.DockerClient) -> None:
    """Attach, exec, logs -f, stats and wait clients that vanish mid-stream leave no task
    behind in the daemon (its asyncio tasks are /info's NGoroutines)."""
    sock = docker_sock(engine)
    c = client.containers.run("busybox", ["sh", "-c", "while true; do echo x; sleep 0.1; done"],
                              detach=True, stdin_open=True)
    upgrade = {"Connection": "Upgrade", "Upgrade": "tcp"}

    def tasks() -> int:
        return int(request(sock, "GET", "/info").json()["NGoroutines"])

    def round_of_clients() -> list[str]:
        opened = []
        exec_id = client.api.exec_create(c.id, ["cat"], stdin=True)["Id"]
        for method, target, body, headers in (
            ("POST", f"/containers/{c.id}/attach?stream=1&stdin=1&stdout=1", b"", upgrade),
            ("GET", f"/containers/{c.id}/logs?stdout=1&follow=1", b"", {}),
            ("GET", f"/containers/{c.id}/stats", b"", {}),
            ("POST", f"/containers/{c.id}/wait", b"", {}),
            ("POST", f"/exec/{exec_id}/start", b'{"Detach": false}',
             {**upgrade, "Content-Type": "application/json"}),
        ):
            s = connect(sock)
            s.sendall(encode_request(method, target, body, headers))
            assert s.recv(100)  # the response (or the upgrade) has begun
            opened.append(s)
        for s in opened:
            s.close()
        return [exec_id]

    def settled(expected: int) -> bool:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if tasks() == expected:
                return True
            time.sleep(0.2)
        return False

    execs = round_of_clients()  # a warm-up: whatever the daemon starts once
    time.sleep(1)
    baseline = tasks()
    for _ in range(3):
        execs += round_of_clients()
    assert settled(baseline), (tasks(), baseline)
    # Each exec's stdin was closed with its client: cat ended.
    for exec_id in execs:
        assert client.api.exec_inspect(exec_id)["Running"] is False


def test_logs_follow_of_a_silent_container_answers_at_once(engine: DaemonProcess,
                                                          client: docker.DockerClient) -> None:
    sock = docker_sock(engine)
    quiet = client.containers.run("busybox", ["sh", "-c", "sleep 2; echo late"], detach=True)
    with connect(sock, timeout=30) as s:
        s.sendall(encode_request("GET", f"/v1.50/containers/{quiet.id}/logs?stdout=1&follow=1"))
        reader = Reader(s)
        head = reader.head()  # before any output: the client knows the stream is there
        assert head.status == 200
        assert head.headers["content-type"] == "application/vnd.docker.multiplexed-stream"
        assert demultiplex(b"".join(reader.chunks())) == [(1, b"late\n")]
