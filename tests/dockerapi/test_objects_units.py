"""The object endpoints' translations, without a daemon: pull references, commit configs,
network IPAM requests, links, pull progress messages."""

from __future__ import annotations

import pytest

from servin.engine.images.progress import ProgressEvent
from servin.engine.networks.service import parse_link
from servin.engine.server.docker.images import _pull_message, config_changes, image_reference
from servin.engine.server.docker.networks import _ipam
from servin.errors import InvalidArgument


def test_pull_references_as_docker_joins_them() -> None:
    assert image_reference("busybox", "latest") == "busybox:latest"
    assert image_reference("busybox", "") == "busybox"
    assert image_reference("localhost:5000/app", "1") == "localhost:5000/app:1"
    digest = "sha256:" + "a" * 64
    assert image_reference("busybox", digest) == f"busybox@{digest}"
    assert image_reference("busybox:1", "1") == "busybox:1"  # the CLI may repeat it
    with pytest.raises(InvalidArgument, match="already has a tag"):
        image_reference("busybox:1", "2")
    with pytest.raises(InvalidArgument):
        image_reference("", "x")


def test_commit_config_becomes_changes() -> None:
    assert config_changes(None) == []
    changes = config_changes({"Cmd": ["sh", "-c", "echo hi"], "Env": ["A=1 2", "BAD"],
                              "Labels": {"k": "v"}, "ExposedPorts": {"80/tcp": {}},
                              "Volumes": {"/data": {}}, "User": "nobody",
                              "WorkingDir": "/w", "Entrypoint": None})
    assert changes == ['CMD ["sh", "-c", "echo hi"]', 'ENV A="1 2"', 'LABEL "k"="v"',
                       "EXPOSE 80/tcp", 'VOLUME ["/data"]', "USER nobody", "WORKDIR /w"]
    with pytest.raises(InvalidArgument, match="Cmd"):
        config_changes({"Cmd": [1]})
    with pytest.raises(InvalidArgument, match="object"):
        config_changes(["x"])


def test_network_ipam_requests() -> None:
    assert _ipam({}) == ("", "", "")
    assert _ipam({"IPAM": {"Driver": "default", "Config": [
        {"Subnet": "10.9.0.0/24", "Gateway": "10.9.0.1", "IPRange": "10.9.0.128/25"}]}}) == (
        "10.9.0.0/24", "10.9.0.1", "10.9.0.128/25")
    for bad, message in (({"IPAM": {"Driver": "dhcp"}}, "not supported"),
                         ({"IPAM": {"Config": [{"Subnet": "fd00::/64"}]}}, "IPv6"),
                         ({"IPAM": {"Config": [{"Subnet": "10.1.0.0/24"},
                                               {"Subnet": "10.2.0.0/24"}]}}, "one IPv4"),
                         ({"IPAM": {"Config": [{"Subnet": "10.1.0.0/24",
                                                "AuxiliaryAddresses": {"a": "10.1.0.5"}}]}},
                          "auxiliary"),
                         ({"IPAM": {"Config": "x"}}, "list")):
        with pytest.raises(InvalidArgument, match=message):
            _ipam(bad)


def test_links() -> None:
    assert parse_link("db") == ("db", "db")
    assert parse_link("db:database") == ("db", "database")
    assert parse_link("/db:/web/database") == ("db", "database")
    for bad in ("", ":x", "db:"):
        with pytest.raises(InvalidArgument):
            parse_link(bad)


def test_pull_progress_messages() -> None:
    line = _pull_message(ProgressEvent.line("1.36: Pulling from docker.io/library/busybox"))
    assert line == {"status": "Pulling from library/busybox", "id": "1.36"}
    assert _pull_message(ProgressEvent.line("Digest: sha256:x")) == {"status": "Digest: sha256:x"}
    downloading = _pull_message(ProgressEvent("abc", "Downloading", 50, 100))
    assert downloading["progressDetail"] == {"current": 50, "total": 100}
    assert downloading["progress"].startswith("[=") and downloading["id"] == "abc"
    done = _pull_message(ProgressEvent("abc", "Pull complete", 100, 100, done=True))
    assert done == {"status": "Pull complete", "progressDetail": {}, "id": "abc"}
