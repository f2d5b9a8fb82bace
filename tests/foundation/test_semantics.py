"""docker semantics in the core (no daemon): create options from both doors end in the same
request, filters match as docker's, status texts and inspect documents have docker's shape."""

from __future__ import annotations

import time
from typing import Any

import pytest

from servin.engine.containers.model import (
    Container,
    ContainerConfig,
    ContainerPaths,
    ContainerState,
    HostConfig,
    Mount,
    PortBinding,
    PublishedPort,
    RestartPolicy,
)
from servin.engine.containers.views import ContainerDetails
from servin.engine.semantics import filters
from servin.engine.semantics.create import from_docker
from servin.engine.semantics.inspect import container_document
from servin.engine.semantics.status import status_text
from servin.errors import InvalidArgument


def _run_flags(*argv: str) -> Any:
    """What ``servin run ARGV`` sends: its flags parsed by the CLI into a ContainerSpec, then
    translated by the servin.v1 door into the core's create request."""
    from servin.cli.commands.run import run
    from servin.cli.runflags import build_spec
    from servin.engine.server.grpc.convert import create_request

    ctx = run.make_context("run", list(argv))
    params = dict(ctx.params)
    image, command = params.pop("image"), params.pop("command")
    params.pop("pull", None)
    params.pop("platform", None)
    spec = build_spec(image, tuple(command), params)
    spec.attach.extend(["stdin", "stdout", "stderr"])  # what `run -i` without -a records
    spec.attach_set = True
    return create_request(params["name"], spec)


def test_run_flags_and_a_docker_create_body_end_in_the_same_request() -> None:
    argv = ["--name", "web", "-e", "A=1", "-l", "tier=front", "-p", "127.0.0.1:8080:80",
            "-p", "53/udp", "-v", "data:/data:ro", "--tmpfs", "/run:size=1m",
            "--restart", "on-failure:3", "-m", "64m", "--cpus", "1.5", "--cap-add",
            "NET_ADMIN", "--network", "appnet", "--network-alias", "www", "--ulimit",
            "nofile=10:20", "--health-cmd", "true", "--health-interval", "2s",
            "--stop-timeout", "5", "--entrypoint", "/bin/sh", "-w", "/srv", "-t", "-i",
            "--read-only", "--sysctl", "net.ipv4.ip_forward=1", "--shm-size", "8m",
            "--dns", "9.9.9.9", "--add-host", "db:10.0.0.5", "--security-opt",
            "no-new-privileges", "busybox", "-c", "sleep 1"]
    body = {
        "Image": "busybox", "Cmd": ["-c", "sleep 1"], "Entrypoint": ["/bin/sh"],
        "Env": ["A=1"], "Labels": {"tier": "front"}, "WorkingDir": "/srv", "Tty": True,
        "OpenStdin": True, "StdinOnce": True, "StopTimeout": 5, "AttachStdin": True,
        "AttachStdout": True, "AttachStderr": True,
        "Healthcheck": {"Test": ["CMD-SHELL", "true"], "Interval": 2_000_000_000},
        "HostConfig": {
            "Binds": ["data:/data:ro"], "Tmpfs": {"/run": "size=1m"},
            "PortBindings": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}],
                             "53/udp": [{"HostIp": "", "HostPort": ""}]},
            "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 3},
            "Memory": 64 * 2**20, "NanoCpus": 1_500_000_000, "CapAdd": ["NET_ADMIN"],
            "NetworkMode": "appnet", "Ulimits": [{"Name": "nofile", "Soft": 10, "Hard": 20}],
            "ReadonlyRootfs": True, "Sysctls": {"net.ipv4.ip_forward": "1"},
            "ShmSize": 8 * 2**20, "Dns": ["9.9.9.9"], "ExtraHosts": ["db:10.0.0.5"],
            "SecurityOpt": ["no-new-privileges"], "MemorySwappiness": None, "Links": None,
            "CgroupnsMode": "", "Isolation": "",
        },
        "NetworkingConfig": {"EndpointsConfig": {"appnet": {"Aliases": ["www"]}}},
    }
    from_cli = _run_flags(*argv)
    from_api = from_docker("web", body)
    assert from_cli.config == from_api.config
    assert from_cli.networking == from_api.networking
    # --tmpfs arrives as a structured mount from the CLI and in HostConfig.Tmpfs from docker.
    assert from_cli.host_config == from_api.host_config
    assert from_api.host_config.mounts == [Mount(type="tmpfs", target="/run",
                                                 options=["size=1m"])]


def test_docker_body_details() -> None:
    req = from_docker("", {"Image": "x", "Entrypoint": "", "Cmd": "true",
                           "Volumes": {"/cache": {}, "/data": {}},
                           "HostConfig": {"Binds": ["v:/data"]}})
    assert req.config.entrypoint == [""] and req.config.cmd == ["true"]
    assert req.host_config.binds == ["v:/data", "/cache"]  # Config.Volumes: anonymous ones
    assert from_docker("", {"Image": "x"}).config.entrypoint is None
    # Links (HostConfig's and an endpoint's) are the container's; the network service
    # refuses them off user networks.
    req = from_docker("", {"Image": "x", "HostConfig": {"Links": ["a:b"]},
                           "NetworkingConfig": {"EndpointsConfig": {"n": {"Links": ["c"]}}}})
    assert req.host_config.links == ["a:b", "c"]
    with pytest.raises(InvalidArgument, match="StorageOpt is not supported"):
        from_docker("", {"Image": "x", "HostConfig": {"StorageOpt": {"size": "1G"}}})
    with pytest.raises(InvalidArgument, match="invalid Tty"):
        from_docker("", {"Image": "x", "Tty": "yes"})
    with pytest.raises(InvalidArgument, match="HostPort"):
        from_docker("", {"HostConfig": {"PortBindings": {"80/tcp": [{"HostPort": "x"}]}}})


def _container(name: str = "web", **state: Any) -> Container:
    return Container(id="ab" * 32, name=name, image_ref="busybox", image_id="sha256:" + "c" * 64,
                     created_ns=time.time_ns(), state=ContainerState(**state))


def _matches(c: Container, **wanted: list[str]) -> bool:
    return filters.container_matches(c, wanted, networks=["bridge"], network_ids=["f00d"],
                                     pivots={}, ancestors=set())


def test_container_filters_follow_docker() -> None:
    c = _container("web-1")
    # name= is a regular expression matched against docker's "/NAME".
    assert _matches(c, name=["web"]) and _matches(c, name=["^/web-[0-9]$"])
    assert not _matches(c, name=["^web"]) and not _matches(c, name=["^/web$"])
    assert _matches(c, name=["/web-1"])  # an exact match of the /NAME form
    assert _matches(c, id=["abab"]) and not _matches(c, id=["ffff"])
    assert _matches(c, network=["bridge"]) and _matches(c, network=["f00"])
    assert not _matches(c, network=["other"])
    assert _matches(c, health=["none"]) and not _matches(c, health=["healthy"])
    c.host_config = HostConfig(port_bindings=[PortBinding(container_port=80)])
    assert _matches(c, publish=["80"]) and _matches(c, publish=["70-90/tcp"])
    assert not _matches(c, publish=["80/udp"])
    with pytest.raises(InvalidArgument):
        filters.check({"bogus": ["1"]}, filters.CONTAINER_KEYS)
    with pytest.raises(InvalidArgument, match="invalid until"):
        filters.check({"until": ["soon"]}, filters.CONTAINER_PRUNE_KEYS)


def test_status_texts() -> None:
    now = time.time()
    up = _container(status="running", started_at_ns=int((now - 120) * 1e9),
                    health_status="healthy")
    assert status_text(up, now) == "Up 2 minutes (healthy)"
    down = _container(status="exited", exit_code=3, finished_at_ns=int((now - 5) * 1e9))
    assert status_text(down, now) == "Exited (3) 5 seconds ago"
    assert status_text(_container(), now) == "Created"


def test_container_document_has_dockers_shape(tmp_path: Any) -> None:
    c = _container(status="running", pid=42, started_at_ns=time.time_ns(),
                   ports=[PublishedPort(container_port=80, protocol="tcp", host_ip="",
                                        host_port=8080)])
    c.config = ContainerConfig(image="busybox", env=["A=1"], labels={"k": "v"})
    c.host_config = HostConfig(binds=["/h:/c:ro"],
                               restart_policy=RestartPolicy(name="always"),
                               port_bindings=[PortBinding(container_port=80, host_port=8080)])
    details = ContainerDetails(
        container=c, image={"Env": ["PATH=/bin"], "Cmd": ["sh"], "Labels": {"img": "1"}},
        path="sh", args=[], paths=ContainerPaths.of(tmp_path, tmp_path, c.id), networks=[],
        mounts=[Mount(type="bind", source="/h", target="/c", read_only=True)],
    )
    doc = container_document(details)
    assert set(doc) >= {"Id", "Created", "Path", "Args", "State", "Image", "ResolvConfPath",
                        "HostnamePath", "HostsPath", "LogPath", "Name", "RestartCount",
                        "Driver", "Platform", "MountLabel", "ProcessLabel", "AppArmorProfile",
                        "ExecIDs", "HostConfig", "GraphDriver", "Mounts", "Config",
                        "NetworkSettings"}
    assert doc["Name"] == "/web" and doc["State"]["Running"] and doc["State"]["Pid"] == 42
    assert doc["HostConfig"]["Binds"] == ["/h:/c:ro"]
    assert doc["HostConfig"]["RestartPolicy"] == {"Name": "always", "MaximumRetryCount": 0}
    assert doc["HostConfig"]["PortBindings"] == {"80/tcp": [{"HostIp": "",
                                                             "HostPort": "8080"}]}
    assert doc["HostConfig"]["Ulimits"] is None and doc["HostConfig"]["CapAdd"] is None
    assert doc["Config"]["Env"] == ["PATH=/bin", "A=1"]
    assert doc["Config"]["Cmd"] == ["sh"] and doc["Config"]["Labels"] == {"img": "1", "k": "v"}
    assert doc["NetworkSettings"]["Ports"] == {"80/tcp": [{"HostIp": "0.0.0.0",
                                                           "HostPort": "8080"}]}
    assert doc["Mounts"] == [{"Type": "bind", "Source": "/h", "Destination": "/c",
                              "Mode": "ro", "RW": False, "Propagation": "rprivate"}]
    assert "Health" not in doc["State"]

