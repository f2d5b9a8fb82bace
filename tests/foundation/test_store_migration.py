"""Schema 6: container specs stored as servin.v1 protobuf (schema <= 5) become the core's own
JSON documents, and a daemon upgraded in place keeps every container, image, volume and
network."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from servin.engine.containers.model import (
    DeviceMapping,
    EndpointConfig,
    HealthConfig,
    Mount,
    PortBinding,
    Resources,
    RestartPolicy,
    Ulimit,
)
from servin.engine.containers.store import ContainerStore
from servin.engine.images.store import ImageStore
from servin.engine.networks.store import NetworkStore
from servin.engine.store import legacy_spec
from servin.engine.store.content import ContentStore
from servin.engine.store.metadata import MetadataStore
from servin.engine.store.migrations import MIGRATIONS
from servin.engine.volumes.store import VolumeStore
from tests.daemon import DaemonProcess

# Made by the daemon of schema 4 (before the core had its own model): busybox imported and
# tagged, a volume, a network, and four containers (see their names below).
FIXTURE = Path(__file__).parent / "data" / "store-schema4.sql"


@pytest.fixture
def migrated(tmp_path: Path) -> MetadataStore:
    db = tmp_path / "servin.db"
    raw = sqlite3.connect(db)
    raw.executescript(FIXTURE.read_text())
    assert raw.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] == 4
    raw.close()
    meta = MetadataStore(db)
    yield meta
    meta.close()


def test_every_record_survives(migrated: MetadataStore, tmp_path: Path) -> None:
    assert migrated.schema_version == len(MIGRATIONS)
    containers = {c.name: c for c in ContainerStore(migrated).list()}
    assert set(containers) == {"rich", "plain", "ran", "joiner"}
    images = ImageStore(migrated, ContentStore(tmp_path / "content")).list()
    assert [sorted(i.refs) for i in images] == [
        ["docker.io/library/busybox:latest", "example.com/team/bb:1.0"]]
    assert all(c.image_id == images[0].id for c in containers.values())
    volumes = {v.name: v for v in VolumeStore(migrated, tmp_path / "volumes").list()}
    assert volumes["data"].labels == {"tier": "db"} and len(volumes) == 4
    assert sum(v.anonymous for v in volumes.values()) == 3
    networks = {n.name: n for n in NetworkStore(migrated).list()}
    assert {"bridge", "host", "none", "appnet"} <= set(networks)
    assert networks["appnet"].subnet == "10.231.7.0/24"
    endpoints = NetworkStore(migrated).endpoints_of_container(containers["rich"].id)
    assert [(e.address, e.aliases) for e in endpoints] == [("10.231.7.9", ["web"])]


def test_every_setting_of_a_rich_container(migrated: MetadataStore) -> None:
    c = ContainerStore(migrated).resolve("rich")
    cfg, host = c.config, c.host_config
    assert (cfg.image, cfg.entrypoint, cfg.cmd) == ("busybox", ["/bin/sh"], ["-c", "sleep 1000"])
    assert cfg.env == ["A=1", "B=two words"]
    assert cfg.labels == {"com.example.k": "v", "empty": ""}
    assert (cfg.working_dir, cfg.user, cfg.hostname, cfg.domainname) == (
        "/tmp", "1000:1000", "richhost", "example.org")
    assert (cfg.tty, cfg.open_stdin, cfg.stdin_once) == (True, True, True)
    assert (cfg.stop_signal, cfg.stop_timeout) == ("SIGINT", 7)
    assert cfg.healthcheck == HealthConfig(test=["CMD-SHELL", "true"], interval_ns=5 * 10**9,
                                           timeout_ns=2 * 10**9, start_period_ns=10**9,
                                           retries=2)
    assert cfg.exposed_ports == ["9000/tcp"]
    assert host.binds == ["data:/data", "/tmp/core-fixture/hostdir:/host:ro"]
    assert host.port_bindings == [
        PortBinding(container_port=80, protocol="tcp", host_ip="127.0.0.1", host_port=18080),
        PortBinding(container_port=53, protocol="udp")]
    assert host.restart_policy == RestartPolicy(name="on-failure", maximum_retry_count=3)
    assert host.network_mode == "appnet"
    assert (host.cap_add, host.cap_drop) == (["NET_ADMIN"], ["MKNOD"])
    assert host.security_opt == ["no-new-privileges"]
    assert host.readonly_rootfs and host.runtime == "native"
    assert (host.dns, host.dns_search, host.dns_options) == (
        ["9.9.9.9"], ["example.com"], ["ndots:2"])
    assert host.extra_hosts == ["db:10.0.0.5"]
    assert (host.log_config.type, host.log_config.options) == (
        "json-file", {"max-size": "1m", "max-file": "2"})
    assert host.sysctls == {"net.ipv4.ip_forward": "1"}
    assert host.ulimits == [Ulimit(name="nofile", soft=1024, hard=2048)]
    assert (host.shm_size, host.group_add, host.annotations) == (
        16 * 2**20, ["10"], {"io.example": "1"})
    assert host.resources == Resources(memory=64 * 2**20, memory_swap=128 * 2**20,
                                       nano_cpus=500_000_000, cpu_shares=512, pids_limit=100,
                                       oom_score_adj=100)
    assert c.networking.endpoints == {
        "appnet": EndpointConfig(aliases=["web"], ipv4_address="10.231.7.9")}
    assert [(m.type, m.target, m.name or m.source) for m in c.mounts] == [
        ("volume", "/data", "data"),
        ("bind", "/host", "/tmp/core-fixture/hostdir"),
        ("tmpfs", "/scratch", ""),
        ("tmpfs", "/run", ""),
        ("volume", "/vol", c.mounts[-1].name),
    ]
    assert c.mounts[1].read_only and c.mounts[2].options == ["size=1048576"]
    assert c.state.status == "created"


def test_other_containers(migrated: MetadataStore) -> None:
    store = ContainerStore(migrated)
    ran = store.resolve("ran")
    assert (ran.state.status, ran.state.exit_code) == ("exited", 3)
    assert ran.state.started_at_ns and ran.state.finished_at_ns
    assert ran.config.entrypoint is None and ran.config.stop_timeout is None
    joiner = store.resolve("joiner")
    assert joiner.host_config.network_mode == "container:plain"
    assert (joiner.host_config.ipc_mode, joiner.host_config.privileged) == ("shareable", True)
    assert joiner.host_config.volumes_from == ["rich:ro"]
    assert all(m.read_only for m in joiner.mounts)
    assert store.resolve("plain").config.cmd == ["true"]


def test_the_reader_knows_every_field_of_schemas_4_and_5() -> None:
    """Every ContainerSpec field that schemas 4 and 5 stored, set, read back."""
    from servin.api.servin.v1 import common_pb2, containers_pb2

    spec = containers_pb2.ContainerSpec(
        image="img", cmd=["c"], entrypoint=["e"], entrypoint_set=True, env=["A=1"],
        working_dir="/w", user="u", hostname="h", domainname="d", labels={"l": "v"},
        tty=True, open_stdin=True, stdin_once=True, stop_signal="INT", stop_timeout=0,
        healthcheck=common_pb2.HealthConfig(test=["CMD", "x"], interval_ns=1, timeout_ns=2,
                                            start_period_ns=3, retries=4),
        exposed_ports=["1/tcp"],
        resources=common_pb2.Resources(
            memory=1, memory_swap=-1, memory_reservation=3, nano_cpus=4, cpu_shares=5,
            cpu_period=6, cpu_quota=7, cpuset_cpus="0", cpuset_mems="1", pids_limit=-1,
            blkio_weight=10, oom_score_adj=-500, oom_kill_disable=True),
        network_mode="net", ports=[common_pb2.PortBinding(container_port=1, protocol="udp",
                                                          host_ip="1.2.3.4", host_port=2,
                                                          host_port_end=4)],
        publish_all=True,
        mounts=[common_pb2.Mount(type="volume", source="s", target="/t", read_only=True,
                                 propagation="rslave", options=["nocopy"], driver="local",
                                 name="n")],
        restart_policy=containers_pb2.RestartPolicy(name="always"), auto_remove=True,
        privileged=True, cap_add=["A"], cap_drop=["B"], security_opt=["s"], read_only=True,
        runtime="crun", ipc_mode="host", pid_mode="host", uts_mode="host", dns=["1.1.1.1"],
        dns_search=["x"], dns_options=["y"], extra_hosts=["a:1.1.1.1"], volumes_from=["v"],
        log_config=containers_pb2.LogConfig(type="cri", options={"max-file": "3"}),
        sysctls={"k": "v"}, ulimits=[containers_pb2.Ulimit(name="nproc", soft=1, hard=2)],
        init=True, shm_size=9, devices=["/dev/fuse:/dev/f:rw", "/dev/null:r"],
        group_add=["g"], device_cgroup_rules=["c 1:3 rwm"], cgroupns_mode="host",
        networks={"net": containers_pb2.EndpointSpec(aliases=["a"], ipv4_address="10.0.0.2",
                                                     mac_address="92:d0:c6:0a:29:33")},
        platform="linux/amd64", pod_id="pod1", annotations=["k=v"], binds=["/a:/b"],
    )
    doc, pod_id = legacy_spec.convert(spec.SerializeToString())
    assert pod_id == "pod1"
    import msgspec

    from servin.engine.containers.store import StoredSpec

    stored = msgspec.convert(doc, StoredSpec)
    cfg, host = stored.config, stored.host_config
    assert (cfg.entrypoint, cfg.stop_timeout, cfg.healthcheck.retries) == (["e"], 0, 4)
    assert host.resources.memory_swap == -1 and host.resources.oom_score_adj == -500
    assert host.resources.pids_limit == -1 and host.resources.oom_kill_disable
    assert host.port_bindings == [PortBinding(container_port=1, protocol="udp",
                                              host_ip="1.2.3.4", host_port=2,
                                              host_port_end=4)]
    assert stored.mounts == [Mount(type="volume", source="s", target="/t", read_only=True,
                                   propagation="rslave", options=["nocopy"], driver="local",
                                   name="n")]
    assert host.devices == [DeviceMapping(path_on_host="/dev/fuse",
                                          path_in_container="/dev/f", permissions="rw"),
                            DeviceMapping(path_on_host="/dev/null", permissions="r")]
    assert (host.device_cgroup_rules, host.cgroupns_mode) == (["c 1:3 rwm"], "host")
    assert host.restart_policy.name == "always" and host.auto_remove and host.init
    assert (host.ipc_mode, host.pid_mode, host.uts_mode, host.runtime) == (
        "host", "host", "host", "crun")
    assert host.log_config.options == {"max-file": "3"} and host.annotations == {"k": "v"}
    ep = stored.networking.endpoints["net"]
    assert (ep.ipv4_address, ep.mac_address) == ("10.0.0.2", "92:d0:c6:0a:29:33")
    assert (host.binds, host.volumes_from, host.publish_all_ports, host.readonly_rootfs) == (
        ["/a:/b"], ["v"], True, True)
    disabled = containers_pb2.ContainerSpec(
        image="i", healthcheck=common_pb2.HealthConfig(disabled=True, test=["NONE"]))
    doc, _ = legacy_spec.convert(disabled.SerializeToString())
    assert doc["config"]["healthcheck"] == {"test": ["NONE"]}


def _downgrade_to_schema_5(db: Path) -> None:
    """Rewrite a store as schema 5 wrote it (servin.v1 protobuf specs)."""
    from servin.engine.server.grpc.convert import container_spec

    meta = MetadataStore(db)
    containers = ContainerStore(meta).list()
    meta.close()
    raw = sqlite3.connect(db)
    raw.execute("DROP INDEX containers_by_pod")
    raw.execute("ALTER TABLE containers DROP COLUMN pod_id")
    raw.execute("ALTER TABLE containers ADD COLUMN old_spec BLOB NOT NULL DEFAULT x''")
    for c in containers:
        raw.execute("UPDATE containers SET old_spec = ? WHERE id = ?",
                    (container_spec(c).SerializeToString(), c.id))
    raw.execute("ALTER TABLE containers DROP COLUMN spec")
    raw.execute("ALTER TABLE containers RENAME COLUMN old_spec TO spec")
    raw.execute("DROP TABLE IF EXISTS pods")  # schema 7
    raw.execute("DELETE FROM schema_version WHERE version >= 6")
    raw.commit()
    raw.close()


def test_a_daemon_upgraded_in_place_keeps_everything(daemon: DaemonProcess,
                                                     busybox_tar: Path) -> None:
    daemon.cli("import", "-c", 'CMD ["sh"]', str(busybox_tar), "busybox", check=True)
    daemon.cli("volume", "create", "--label", "k=v", "keep", check=True)
    daemon.cli("network", "create", "--label", "n=1", "upnet", check=True)
    daemon.cli("create", "--name", "kept", "-v", "keep:/data", "--network", "upnet",
               "--network-alias", "svc", "-e", "X=1", "--restart", "on-failure:2",
               "busybox", "sh", "-c", "echo hi > /data/f; echo $X", check=True)
    daemon.cli("run", "--name", "done", "--network", "none", "busybox", "true", check=True)
    before = daemon.cli("inspect", "kept", check=True).stdout
    daemon.stop()
    _downgrade_to_schema_5(daemon.root / "servin.db")
    daemon.start()
    ps = daemon.cli("ps", "-a", "--format", "{{.Names}} {{.Status}}", check=True).stdout
    assert sorted(line.split()[0] for line in ps.splitlines()) == ["done", "kept"]
    assert daemon.cli("volume", "inspect", "-f", "{{.Labels}}", "keep", check=True
                      ).stdout.strip() == "map[k:v]"
    assert "upnet" in daemon.cli("network", "ls", check=True).stdout
    after = daemon.cli("inspect", "kept", check=True).stdout
    assert after == before
    out = daemon.cli("start", "-a", "kept", check=True).stdout
    assert out.strip() == "1"
    assert daemon.cli("inspect", "-f", "{{.HostConfig.RestartPolicy.Name}}", "kept",
                      check=True).stdout.strip() == "on-failure"
