"""The CNI caller's pure parts: configuration loading, request derivation, results, records."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import pytest

from servin.engine.networks.cni import Attachment, AttachmentRecord, PortMapping, port_mappings
from servin.engine.networks.cni.cache import ResultCache
from servin.engine.networks.cni.conf import load_dir, load_file, parse_config_list
from servin.engine.networks.cni.invoke import Invocation
from servin.engine.networks.cni.result import ResultError, parse_result
from servin.errors import InvalidArgument

BRIDGE = {"type": "bridge", "bridge": "cni0", "ipam": {"type": "host-local"}}


def write(path: Path, doc: object) -> Path:
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return path


def test_conf_dir_lexical_order_first_valid_and_conf_wrapped(tmp_path: Path) -> None:
    write(tmp_path / "30-last.conflist", {"cniVersion": "1.0.0", "name": "last",
                                          "plugins": [BRIDGE]})
    write(tmp_path / "20-single.conf", {"cniVersion": "0.4.0", "name": "single", **BRIDGE})
    write(tmp_path / "10-broken.conflist", {"cniVersion": "1.0.0", "name": "broken"})
    write(tmp_path / "05-notes.txt", "ignored: not a config extension")
    write(tmp_path / "15-old.conflist", {"cniVersion": "0.2.0", "name": "old",
                                         "plugins": [BRIDGE]})
    valid, problems = load_dir(tmp_path)
    assert [n.name for n in valid] == ["single", "last"]
    single = valid[0]
    assert single.cni_version == "0.4.0" and single.plugins == (
        {"cniVersion": "0.4.0", "name": "single", **BRIDGE},)
    assert problems == [
        f"CNI config {tmp_path}/10-broken.conflist: network 'broken' has no plugins",
        f"CNI config {tmp_path}/15-old.conflist: CNI version 0.2.0 is not supported (this "
        "runtime speaks 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0)",
    ]
    assert load_dir(tmp_path / "missing") == ([], [])


@pytest.mark.parametrize(("doc", "message"), [
    ("[]", "not a JSON object"),
    ({"cniVersion": "1.0.0", "name": "bad name", "plugins": [BRIDGE]}, "invalid or missing "
     "network name 'bad name'"),
    ({"name": "n", "plugins": [BRIDGE]}, "missing cniVersion"),
    ({"cniVersion": "one", "name": "n", "plugins": [BRIDGE]}, "invalid CNI version 'one'"),
    ({"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": "../x"}]},
     'plugins\\[0\\] has no valid "type"'),
    ({"cniVersion": "1.0.0", "name": "n", "plugins": [BRIDGE], "disableCheck": "maybe"},
     "disableCheck must be true or false"),
])
def test_invalid_configs_say_why(tmp_path: Path, doc: object, message: str) -> None:
    path = write(tmp_path / "n.conflist", doc)
    with pytest.raises(InvalidArgument, match=message) as err:
        load_file(path)
    assert err.value.message.startswith(f"CNI config {path}: ")


def test_version_selection_and_flags() -> None:
    net = parse_config_list({"cniVersion": "1.1.0", "cniVersions": ["0.3.1", "9.0.0", "1.0.0"],
                             "name": "n", "plugins": [BRIDGE], "disableCheck": "true",
                             "disableGC": True})
    assert net.cni_version == "1.1.0" and net.versions == ("1.1.0", "1.0.0", "0.3.1")
    assert net.disable_check and net.disable_gc
    assert net.with_version("1.0.0").cni_version == "1.0.0"


def test_request_config_derivation() -> None:
    portmap = {"type": "portmap", "capabilities": {"portMappings": True, "bandwidth": False},
               "runtimeConfig": {"stale": 1}, "cni.dev/private": 1, "snat": True}
    net = parse_config_list({"cniVersion": "1.0.0", "name": "pods", "plugins": [BRIDGE, portmap]})
    caps = {**port_mappings([PortMapping(8080, 80), PortMapping(53, 53, "udp", "127.0.0.1")]),
            "bandwidth": {"ingressRate": 1}}
    prev = {"cniVersion": "1.0.0", "ips": []}
    request = json.loads(net.request(portmap, prev_result=prev, capability_args=caps))
    assert request == {
        "type": "portmap", "snat": True, "cniVersion": "1.0.0", "name": "pods",
        "runtimeConfig": {"portMappings": [
            {"hostPort": 8080, "containerPort": 80, "protocol": "tcp"},
            {"hostPort": 53, "containerPort": 53, "protocol": "udp", "hostIP": "127.0.0.1"}]},
        "prevResult": prev,
    }
    first = json.loads(net.request(BRIDGE, prev_result=None, capability_args=caps))
    assert "runtimeConfig" not in first and "prevResult" not in first
    assert first["ipam"] == {"type": "host-local"}  # passed through unchanged
    gc = json.loads(net.request(BRIDGE, prev_result=None, capability_args={},
                                extra={"cni.dev/valid-attachments": []}))
    assert gc["cni.dev/valid-attachments"] == []


def test_environment_of_a_call(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CNI_STRAY", "x")
    env = Invocation("ADD", "c1", "/run/netns/c1", "eth0", "A=1;B=2").environment(
        [Path("/opt/cni/bin"), Path("/usr/lib/cni")])
    assert "CNI_STRAY" not in env and env["PATH"]
    assert {k: v for k, v in env.items() if k.startswith("CNI_")} == {
        "CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c1", "CNI_NETNS": "/run/netns/c1",
        "CNI_IFNAME": "eth0", "CNI_ARGS": "A=1;B=2", "CNI_PATH": "/opt/cni/bin:/usr/lib/cni"}
    version = Invocation("VERSION").environment([Path("/b")])
    assert {k for k in version if k.startswith("CNI_")} == {"CNI_COMMAND", "CNI_PATH"}


def test_result_parsing_and_pod_addresses() -> None:
    doc = {
        "cniVersion": "1.0.0",
        "interfaces": [{"name": "cni0", "mac": "aa:bb:cc:dd:ee:01"},
                       {"name": "veth1", "mac": "aa:bb:cc:dd:ee:02"},
                       {"name": "eth0", "mac": "aa:bb:cc:dd:ee:03", "sandbox": "/run/netns/p"}],
        "ips": [{"address": "10.1.0.5/16", "gateway": "10.1.0.1", "interface": 2},
                {"address": "fd00::5/64", "interface": 2},
                {"address": "192.168.9.9/32", "interface": 0}],
        "routes": [{"dst": "0.0.0.0/0"}, {"dst": "10.2.0.0/16", "gw": "10.1.0.254"}],
        "dns": {"nameservers": ["10.1.0.1"], "search": ["svc.local"]},
    }
    result = parse_result(doc)
    assert result.addresses("eth0") == [ipaddress.ip_interface("10.1.0.5/16"),
                                        ipaddress.ip_interface("fd00::5/64")]
    assert result.addresses("eth1") == []
    assert result.ips[0].gateway == ipaddress.ip_address("10.1.0.1")
    assert result.routes[1].gw == ipaddress.ip_address("10.1.0.254")
    assert result.dns.nameservers == ("10.1.0.1",) and result.raw is doc
    # IPAM-style results without interfaces still yield the address.
    ipam = parse_result({"cniVersion": "0.3.1", "ips": [{"version": "4",
                                                           "address": "10.1.0.6/16"}]})
    assert ipam.addresses("eth0") == [ipaddress.ip_interface("10.1.0.6/16")]
    for bad, why in (([], "not a JSON object"), ({}, "missing cniVersion"),
                     ({"cniVersion": "1.0.0", "ips": [{"address": "nope"}]}, "nope"),
                     ({"cniVersion": "1.0.0", "ips": [{"address": "10.0.0.1/8",
                                                        "interface": 3}]}, "names no interface"),
                     ({"cniVersion": "1.0.0", "interfaces": {}}, "not a list")):
        with pytest.raises(ResultError, match=why):
            parse_result(bad)


def test_attachment_validation() -> None:
    Attachment("abc-1.2_3", "/run/netns/x", args={"K8S_POD_NAME": "web"}).validate()
    assert Attachment("c", "", args={"A": "1", "B": "2"}).cni_args == "A=1;B=2"
    for bad, why in ((Attachment("-bad", ""), "container ID"),
                     (Attachment("c", "", ifname="a/b"), "interface name"),
                     (Attachment("c", "", ifname="x" * 16), "interface name"),
                     (Attachment("c", "", args={"A": "1;B=2"}), "CNI argument"),
                     (Attachment("c", "", capability_args={"x": object()}), "not JSON")):
        with pytest.raises(InvalidArgument, match=why):
            bad.validate()


def test_records_round_trip_and_bad_files_are_skipped(tmp_path: Path) -> None:
    cache = ResultCache(tmp_path / "results")
    assert cache.records() == []
    record = AttachmentRecord(network="pods", container_id="c-1", ifname="eth0",
                              netns="/run/netns/c-1", args="A=1", capability_args={},
                              config={"name": "pods"}, cni_version="1.0.0")
    cache.write(record)
    record.result = {"cniVersion": "1.0.0"}
    cache.write(record)
    other = AttachmentRecord(network="pods", container_id="c-2", ifname="eth0", netns="",
                             args="", capability_args={}, config={}, cni_version="1.0.0")
    cache.write(other)
    (tmp_path / "results" / "pods:c-3:eth0.json").write_text("{torn")
    (tmp_path / "results" / "pods:c-4:eth0.json").write_text('{"kind": "other"}')
    assert cache.read("pods", "c-1", "eth0") == record
    assert cache.records("c-1") == [record]
    assert cache.records() == [record, other]
    assert not list((tmp_path / "results").glob("*.tmp"))
    assert oct((tmp_path / "results" / "pods:c-1:eth0.json").stat().st_mode & 0o777) == "0o600"
    cache.remove("pods", "c-1", "eth0")
    cache.remove("pods", "c-1", "eth0")
    assert cache.records("c-1") == [] and cache.read("pods", "c-1", "eth0") is None


def test_daemon_config_keys(tmp_path: Path) -> None:
    from servin.engine.config import load_config
    from servin.engine.networks.cni import CNI

    cfg = write(tmp_path / "c.toml", 'root = "/srv/s"\ncni_conf_dir = "/srv/net.d"\n'
                'cni_bin_dirs = ["/a", "/b"]\n')
    config = load_config(cfg)
    cni = CNI.for_daemon(config)
    assert (cni.conf_dir, cni.bin_dirs) == (Path("/srv/net.d"), (Path("/a"), Path("/b")))
    assert cni.cache.directory == Path("/srv/s/cni/results")
    write(cfg, "cni_bin_dirs = '/a'\n")
    with pytest.raises(InvalidArgument, match="cni_bin_dirs must be a list of paths"):
        load_config(cfg)
    defaults = CNI.for_daemon(load_config(write(tmp_path / "d.toml", "")))
    assert defaults.bin_dirs == (Path("/opt/cni/bin"), Path("/usr/lib/cni"))
