"""The daemon runs the CRI streaming server: on a port of its configuration, refusing unknown
URLs; a taken port leaves the daemon serving without it; stopping the daemon closes it; bad
settings are refused at start."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from pathlib import Path

import pytest

from servin.engine.config import load_config
from servin.errors import InvalidArgument
from tests.daemon import DaemonProcess
from tests.streaming.clients import HttpRefused, SpdyClient, WsClient


def ready_record(d: DaemonProcess) -> dict:
    """The daemon's "ready" log record (it follows the first answered ping closely)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for line in d.log().splitlines():
            if '"servin daemon ready"' in line:
                return json.loads(line)
        time.sleep(0.05)
    raise AssertionError(f"no ready record:\n{d.log()}")


def test_the_daemon_serves_streaming_and_stops_it(daemon_factory: type[DaemonProcess]) -> None:
    d = daemon_factory().start()
    base = ready_record(d)["streaming"]
    assert base.startswith("http://127.0.0.1:") and not base.endswith(":10010")

    async def refused() -> None:
        for token in ("exec/unknown-token", "attach/x", "portforward/y"):
            with pytest.raises(HttpRefused) as info:
                await SpdyClient.connect(f"{base}/{token}", ["v4.channel.k8s.io"])
            assert info.value.status == 404
        with pytest.raises(HttpRefused) as info:
            await WsClient.connect(f"{base}/exec/z", ["v5.channel.k8s.io"])
        assert info.value.status == 404
    asyncio.run(asyncio.wait_for(refused(), 30))
    assert d.stop() == 0
    port = int(base.rsplit(":", 1)[1])
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


def test_a_taken_port_leaves_the_daemon_serving(daemon_factory: type[DaemonProcess]) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        d = daemon_factory(extra_args=["--streaming-port", str(port)]).start()
        record = ready_record(d)
        assert record["streaming"] == ""
        assert "the CRI streaming server is not running: cannot listen on 127.0.0.1:" \
               f"{port}" in d.log()
        assert d.cli("ps", check=True).returncode == 0


@pytest.mark.parametrize(("text", "message"), [
    ("streaming_port = 70000", "invalid streaming_port 70000"),
    ('streaming_port = "x"', "invalid streaming_port 'x'"),
    ('streaming_address = "localhost"', "invalid streaming_address 'localhost'"),
    ('streaming_tls_cert = "/nonexistent"', "streaming_tls_cert and streaming_tls_key"),
    ('streaming_tls_cert = "/nonexistent"\nstreaming_tls_key = "/nonexistent"',
     "streaming_tls_cert /nonexistent: no such file"),
    ('streaming_base_url = "127.0.0.1:1"', "invalid streaming_base_url"),
])
def test_bad_streaming_settings_are_refused(tmp_path: Path, text: str, message: str) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text(text + "\n")
    with pytest.raises(InvalidArgument, match=message):
        load_config(cfg)


def test_streaming_settings_and_defaults(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text('streaming_address = "::1"\nstreaming_port = 0\n')
    config = load_config(cfg)
    assert (config.streaming_address, config.streaming_port) == ("::1", 0)
    cfg.write_text("")
    config = load_config(cfg)
    assert (config.streaming_address, config.streaming_port) == ("127.0.0.1", 10010)
    assert not config.streaming_tls_cert and not config.streaming_tls_key
