"""The container endpoints' translations, without a daemon: create bodies as the docker CLI
sends them, Go's file modes, log timestamps, ps commands, stats documents."""

from __future__ import annotations

import base64
import json
import stat

import pytest

from servin.engine.containers.files import PathStat
from servin.engine.containers.model import Container, ContainerConfig, HostConfig, Resources
from servin.engine.containers.stats import ContainerSample, InterfaceCounters
from servin.engine.semantics.create import from_docker, resources
from servin.engine.semantics.status import command_text
from servin.engine.server.docker.archive import go_file_mode, stat_header
from servin.engine.server.docker.attach import log_time
from servin.engine.server.docker.exec import console_size
from servin.engine.server.docker.stats import stats_document
from servin.errors import InvalidArgument


def test_the_cli_default_network_is_the_bridge() -> None:
    body = {"Image": "busybox", "HostConfig": {"NetworkMode": "default"},
            "NetworkingConfig": {"EndpointsConfig": {"default": {"Aliases": ["a"]}}}}
    request = from_docker("x", body)
    assert list(request.networking.endpoints) == ["bridge"]
    assert request.networking.endpoints["bridge"].aliases == ["a"]
    # A user network named in NetworkMode keeps its endpoint.
    body = {"Image": "busybox", "HostConfig": {"NetworkMode": "mynet"},
            "NetworkingConfig": {"EndpointsConfig": {"mynet": {}}}}
    assert list(from_docker("x", body).networking.endpoints) == ["mynet"]


def test_update_resources() -> None:
    assert resources({"Memory": 1 << 20, "NanoCpus": 5 * 10**8}) == Resources(
        memory=1 << 20, nano_cpus=5 * 10**8)
    with pytest.raises(InvalidArgument):
        resources({"Memory": "lots"})


def test_go_file_modes() -> None:
    assert go_file_mode(stat.S_IFREG | 0o644) == 0o644
    assert go_file_mode(stat.S_IFDIR | 0o755) == (1 << 31) | 0o755
    assert go_file_mode(stat.S_IFLNK | 0o777) == (1 << 27) | 0o777
    assert go_file_mode(stat.S_IFCHR | 0o666) == (1 << 26) | (1 << 21) | 0o666
    assert go_file_mode(stat.S_IFREG | stat.S_ISUID | 0o755) == (1 << 23) | 0o755
    assert go_file_mode(stat.S_IFDIR | stat.S_ISVTX | 0o777) == (1 << 31) | (1 << 20) | 0o777
    name, value = stat_header(PathStat("f", 3, stat.S_IFREG | 0o600, 1_500_000_000, ""))
    assert name == "X-Docker-Container-Path-Stat"
    assert json.loads(base64.b64decode(value)) == {
        "name": "f", "size": 3, "mode": 0o600, "mtime": "1970-01-01T00:00:01.5Z",
        "linkTarget": ""}


def test_log_timestamps_have_nine_decimals() -> None:
    assert log_time(1_700_000_000_000_000_000) == b"2023-11-14T22:13:20.000000000Z"
    assert log_time(1_700_000_000_123_450_000) == b"2023-11-14T22:13:20.123450000Z"


def test_ps_command_quotes_arguments_with_spaces_as_dockerd() -> None:
    assert command_text(["sh", "-c", "echo a b"]) == "sh -c 'echo a b'"
    assert command_text(["sleep", "1"]) == "sleep 1"
    assert command_text([]) == ""


def test_console_size() -> None:
    assert console_size({}) == (0, 0)
    assert console_size({"ConsoleSize": [24, 80]}) == (24, 80)
    for bad in ([24], ["a", 1], [-1, 2], "24x80", [True, 1]):
        with pytest.raises(InvalidArgument):
            console_size({"ConsoleSize": bad})


def _container() -> Container:
    return Container(id="c" * 64, name="web", image_ref="busybox", image_id="i",
                     created_ns=1, config=ContainerConfig(image="busybox"),
                     host_config=HostConfig(resources=Resources(pids_limit=20)))


def _sample(read_ns: int, cpu: int) -> ContainerSample:
    return ContainerSample(
        id="c" * 64, name="web", read_ns=read_ns, cpu_percent=0.0, cpu_total_ns=cpu,
        memory_usage=900, memory_limit=4096, memory_percent=0.0, net_rx=10, net_tx=20,
        block_read=7, block_write=0, pids=2, online_cpus=2, has_baseline=True,
        cpu_user_ns=cpu // 2, cpu_system_ns=cpu // 2, cpu_throttling=(5, 1, 300),
        memory_raw=1000, memory_stat={"inactive_file": 100}, blkio=((8, 0, "Read", 7),),
        interfaces={"eth0": InterfaceCounters(rx_bytes=10, rx_packets=1, tx_bytes=20)})


def test_stats_document_shape() -> None:
    first, second = _sample(10**18, 1000), _sample(10**18 + 10**9, 3000)
    doc = stats_document(_container(), second, 50_000, (first, 40_000))
    assert doc["cpu_stats"] == {
        "cpu_usage": {"total_usage": 3000, "usage_in_kernelmode": 1500,
                      "usage_in_usermode": 1500},
        "system_cpu_usage": 50_000, "online_cpus": 2,
        "throttling_data": {"periods": 5, "throttled_periods": 1, "throttled_time": 300}}
    assert doc["precpu_stats"]["cpu_usage"]["total_usage"] == 1000
    assert doc["precpu_stats"]["system_cpu_usage"] == 40_000
    assert doc["read"] == "2001-09-09T01:46:41Z" and doc["preread"] == "2001-09-09T01:46:40Z"
    assert doc["memory_stats"] == {"usage": 1000, "stats": {"inactive_file": 100},
                                   "limit": 4096}
    assert doc["pids_stats"] == {"current": 2, "limit": 20}
    assert doc["blkio_stats"]["io_service_bytes_recursive"] == [
        {"major": 8, "minor": 0, "op": "Read", "value": 7}]
    assert doc["networks"]["eth0"]["rx_bytes"] == 10 and doc["networks"]["eth0"]["tx_bytes"] == 20
    assert doc["name"] == "/web" and doc["id"] == "c" * 64
    first_doc = stats_document(_container(), first, 40_000, None)
    assert first_doc["preread"] == "0001-01-01T00:00:00Z"
    assert first_doc["precpu_stats"]["cpu_usage"]["total_usage"] == 0
    stopped = stats_document(_container(), None, 0, None)
    assert stopped["read"] == "0001-01-01T00:00:00Z" and stopped["memory_stats"] == {}
