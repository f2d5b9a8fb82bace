"""`inspect` prints the daemon's docker-shaped documents, and -f templates evaluate against
docker's structure (for containers, images, networks and volumes)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.daemon import DaemonProcess


def _f(engine: DaemonProcess, template: str, *names: str, kind: str = "") -> str:
    command = [kind, "inspect"] if kind else ["inspect"]
    return engine.cli(*command, "-f", template, *names, check=True).stdout.strip()


def test_container_document_and_templates(engine: DaemonProcess, tmp_path: Path) -> None:
    cid = engine.cli("run", "-d", "--name", "doc", "--restart", "unless-stopped",
                     "-v", f"{tmp_path}:/h:ro", "--ulimit", "nofile=100:200", "-l", "k=v",
                     "--health-cmd", "true", "--health-interval", "1s", "busybox", "sleep", "60",
                     check=True).stdout.strip()
    try:
        doc = json.loads(engine.cli("inspect", "doc", check=True).stdout)[0]
        assert doc["Id"] == cid and doc["Name"] == "/doc" and doc["Platform"] == "linux"
        assert {"HostConfig", "Config", "NetworkSettings", "State", "Mounts", "GraphDriver",
                "ExecIDs", "LogPath", "ResolvConfPath"} <= set(doc)
        assert _f(engine, "{{.ID}}", "doc") == cid
        assert _f(engine, "{{.HostConfig.RestartPolicy.Name}}", "doc") == "unless-stopped"
        assert _f(engine, "{{.HostConfig.Binds}}", "doc") == f"[{tmp_path}:/h:ro]"
        assert "nofile" in _f(engine, "{{.HostConfig.Ulimits}}", "doc")
        assert _f(engine, "{{json .Config.Labels}}", "doc") == '{"k":"v"}'
        assert _f(engine, "{{.NetworkSettings.IPAddress}}", "doc").startswith("10.")
        assert _f(engine, "{{range $k, $v := .NetworkSettings.Networks}}{{$k}}{{end}}",
                  "doc") == "bridge"
        mounts = json.loads(_f(engine, "{{json .Mounts}}", "doc"))
        assert mounts == [{"Type": "bind", "Source": str(tmp_path), "Destination": "/h",
                           "Mode": "ro", "RW": False, "Propagation": "rprivate"}]
        deadline = time.monotonic() + 20
        while _f(engine, "{{.State.Health.Status}}", "doc") != "healthy":
            assert time.monotonic() < deadline, "the health check never passed"
            time.sleep(0.2)
    finally:
        engine.cli("rm", "-f", "doc", check=True)


def test_image_network_and_volume_documents(engine: DaemonProcess) -> None:
    image_id = _f(engine, "{{.Id}}", "busybox", kind="image")
    assert image_id.startswith("sha256:") and _f(engine, "{{.ID}}", "busybox",
                                                  kind="image") == image_id
    assert _f(engine, "{{.RepoTags}}", "busybox", kind="image") == "[busybox:latest]"
    assert _f(engine, "{{.RootFS.Type}}", "busybox", kind="image") == "layers"
    engine.cli("network", "create", "--label", "t=1", "docnet", check=True)
    engine.cli("volume", "create", "docvol", check=True)
    try:
        net = json.loads(engine.cli("network", "inspect", "docnet", check=True).stdout)[0]
        assert net["Name"] == "docnet" and net["Driver"] == "bridge"
        assert net["IPAM"]["Config"][0]["Subnet"] and net["Labels"] == {"t": "1"}
        vol = json.loads(engine.cli("volume", "inspect", "docvol", check=True).stdout)[0]
        assert vol["Name"] == "docvol" and vol["Driver"] == "local" and vol["Scope"] == "local"
        assert _f(engine, "{{.Mountpoint}}", "docvol", kind="volume").endswith("/docvol/_data")
    finally:
        engine.cli("network", "rm", "docnet", check=True)
        engine.cli("volume", "rm", "docvol", check=True)
