"""Sockets opened inside another network namespace (servin.engine.linux.netns_socket)."""

from __future__ import annotations

import asyncio
import errno
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from servin.engine.linux.netns_socket import connect_in_netns, open_connection_in_netns
from tests.streaming.netns import NetnsPod


@pytest.fixture(scope="module")
def pod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NetnsPod]:
    blob = tmp_path_factory.mktemp("pod") / "blob"
    blob.write_bytes(os.urandom(100_000))
    p = NetnsPod(blob).start()
    try:
        yield p
    finally:
        p.stop()


def test_connects_to_a_server_only_the_namespace_has(pod: NetnsPod) -> None:
    before = os.stat("/proc/thread-self/ns/net").st_ino
    threads = threading.active_count()
    sock = connect_in_netns(pod.netns_path, 9000)
    sock.setblocking(True)
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    sock.close()
    assert data == pod.blob.read_bytes()
    # The socket lives in the pod's namespace, not the host's.
    assert os.stat("/proc/thread-self/ns/net").st_ino == before
    assert threading.active_count() == threads


def test_socket_belongs_to_the_pod_namespace(pod: NetnsPod) -> None:
    sock = connect_in_netns(pod.netns_path, 8080)
    try:
        # /proc/self/fd/N of a socket names socket:[inode]; the namespace shows in
        # the pod's /proc/net/tcp listing that inode, not in the host's.
        inode = os.readlink(f"/proc/self/fd/{sock.fileno()}")[len("socket:["):-1]
        assert pod.proc is not None
        pod_tcp = Path(f"/proc/{pod.proc.pid}/net/tcp").read_text()
        host_tcp = Path("/proc/self/net/tcp").read_text()
        assert f" {inode} " in pod_tcp
        assert f" {inode} " not in host_tcp
    finally:
        sock.close()


def test_asyncio_pair_talks_http(pod: NetnsPod) -> None:
    async def go() -> bytes:
        reader, writer = await open_connection_in_netns(pod.netns_path, 8080)
        writer.write(b"GET / HTTP/1.0\r\n\r\n")
        await writer.drain()
        body = await reader.read()
        writer.close()
        await writer.wait_closed()
        return body

    assert asyncio.run(go()).endswith(b"hello from the pod\n")


def test_refused_port_and_missing_namespace(pod: NetnsPod) -> None:
    with pytest.raises(OSError) as info:
        connect_in_netns(pod.netns_path, 1)
    assert info.value.errno == errno.ECONNREFUSED
    with pytest.raises(OSError) as info:
        connect_in_netns("/proc/999999999/ns/net", 80)
    assert info.value.errno == errno.ENOENT
    assert "network namespace" in str(info.value)
