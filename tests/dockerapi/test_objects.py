"""The object endpoints of a real daemon's docker.sock: the docker CLI v28 script of
``objects_script`` (beside a private dockerd 20.10 where installed), docker-py's high- and
low-level image, network and volume calls, search, and raw error answers."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import pytest

from bench.peers import DockerPeer
from tests.daemon import DaemonProcess, short_tmpdir
from tests.dockerapi.conftest import docker_sock, needs_container_routes
from tests.dockerapi.objects_script import Context, Result, check, run_script
from tests.dockerapi.rawhttp import request
from tests.registry.registryd import Registry

DockerCLI = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def servin_script(engine: DaemonProcess, plain_registry: Registry, docker_cli: DockerCLI,
                  busybox_tar: Path) -> Iterator[tuple[list[Result], Context]]:
    """The script's run against Servin (once for the module)."""
    scratch = short_tmpdir("sv-dscript-")
    assert engine.net_slot is not None
    ctx = Context("-sv1", plain_registry.host, scratch, f"10.201.{engine.net_slot}.224/28")
    try:
        yield run_script(lambda *a, **kw: docker_cli(docker_sock(engine), *a, **kw), ctx,
                         busybox_tar), ctx
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def test_cli_script_on_servin(servin_script: tuple[list[Result], Context]) -> None:
    results, ctx = servin_script
    assert len(results) >= 40
    failures = check(results, ctx)
    assert not failures, "\n".join(failures)


def test_cli_script_beside_dockerd(servin_script: tuple[list[Result], Context],
                                   engine: DaemonProcess, plain_registry: Registry,
                                   docker_cli: DockerCLI, busybox_tar: Path) -> None:
    """The same script against Debian's dockerd 20.10: both pass its checks, and the steps
    marked ``same`` print the same (names normalised)."""
    if shutil.which("dockerd") is None:
        pytest.skip("dockerd is not installed (scripts/bootstrap installs docker.io)")
    ours, _ = servin_script
    base = short_tmpdir("sv-dockerd-")
    peer = DockerPeer(base)
    try:
        peer.start()
        assert engine.net_slot is not None
        theirs_ctx = Context("-dk1", plain_registry.host, base,
                             f"10.201.{engine.net_slot}.240/28")
        theirs = run_script(lambda *a, **kw: docker_cli(peer.socket, *a, **kw), theirs_ctx,
                            busybox_tar)
    finally:
        peer.stop()
    failures = check(theirs, theirs_ctx)
    assert not failures, "dockerd: " + "\n".join(failures)
    differ = []
    for a, b in zip(ours, theirs, strict=True):
        assert a.rc == b.rc, (a.args, a.rc, b.rc)
        if a.step.same and a.normalised != b.normalised:
            differ.append(f"{' '.join(a.args)}:\n  servin  {a.normalised!r}\n"
                          f"  dockerd {b.normalised!r}")
    assert not differ, "\n".join(differ)


def test_docker_py_images(engine: DaemonProcess, client: docker.DockerClient,
                          plain_registry: Registry) -> None:
    busybox = client.images.get("busybox")
    assert busybox.tags == ["busybox:latest"]
    assert busybox.id.startswith("sha256:") and busybox.attrs["Os"] == "linux"
    assert busybox.id in {i.id for i in client.images.list()}
    assert client.images.list(filters={"reference": "nothing-like-this"}) == []
    assert busybox.history()[0]["Id"] == busybox.id
    # tag, push, remove, pull back from the registry
    repo = f"{plain_registry.host}/py-images"
    assert busybox.tag(repo, "one") is True
    pushed = [json.loads(line) for line in
              client.images.push(repo, tag="one").splitlines() if line.strip()]
    assert any("aux" in m and m["aux"]["Tag"] == "one" for m in pushed), pushed
    removed = client.api.remove_image(f"{repo}:one")
    assert {"Untagged": f"{repo}:one"} in removed
    pulled = client.images.pull(repo, tag="one")
    assert pulled.id == busybox.id and f"{repo}:one" in pulled.tags
    # low level: streamed, decoded progress
    events = list(client.api.pull(repo, tag="one", stream=True, decode=True))
    assert events[-1]["status"].startswith("Status: ")
    with pytest.raises(docker.errors.NotFound):
        client.images.get("py-missing:1")
    with pytest.raises(docker.errors.NotFound):  # before any progress: a plain 404
        client.images.pull(f"{plain_registry.host}/py-nothing", tag="x")
    # save and load round trip
    data = b"".join(busybox.save(named=True))
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert "manifest.json" in tar.getnames()
    client.images.remove(f"{repo}:one")
    loaded = client.images.load(data)
    assert [i.id for i in loaded] == [busybox.id]
    # build a tag again, remove by name, prune nothing dangling
    busybox.tag("py-extra", "1")
    client.images.remove("py-extra:1")
    assert "py-extra:1" not in client.images.get("busybox").tags
    report = client.images.prune()
    assert report["SpaceReclaimed"] >= 0


def test_docker_py_commit_import_and_errors(engine: DaemonProcess, client: docker.DockerClient,
                                            busybox_tar: Path) -> None:
    with busybox_tar.open("rb") as f:
        out = client.api.import_image_from_data(f.read(), repository="py-imported", tag="t",
                                                changes=['CMD ["echo", "hi"]'])
    assert "sha256:" in out
    image = client.images.get("py-imported:t")
    assert image.attrs["Config"]["Cmd"] == ["echo", "hi"]
    engine.cli("create", "--name", "py-commit", "py-imported:t", check=True)
    committed = client.api.commit("py-commit", repository="py-committed", tag="c",
                                  message="msg", author="me",
                                  changes=["LABEL from=commit"], conf={"Env": ["X=1"]})
    doc = client.images.get("py-committed:c").attrs
    assert doc["Id"] == committed["Id"]
    assert doc["Author"] == "me" and doc["Config"]["Labels"]["from"] == "commit"
    assert "X=1" in doc["Config"]["Env"]
    engine.cli("rm", "py-commit", check=True)
    client.images.remove("py-committed:c")
    client.images.remove("py-imported:t")
    # Errors: docker's statuses and message bodies.
    sock = docker_sock(engine)
    resp = request(sock, "DELETE", "/v1.50/images/py-nothing:1")
    assert resp.status == 404 and resp.json() == {"message": "No such image: py-nothing:1"}
    resp = request(sock, "POST", "/v1.50/images/create?fromImage=bad%2F%2Fname&tag=x")
    assert resp.status == 400 and "invalid reference" in resp.json()["message"]
    resp = request(sock, "POST", "/v1.50/images/busybox/tag")
    assert resp.status == 400 and "repo" in resp.json()["message"]
    resp = request(sock, "GET", "/v1.50/images/get?names=py-nothing:1")
    assert resp.status == 404
    resp = request(sock, "POST", "/v1.50/images/load", b"this is not a tar archive")
    assert resp.status in (200, 400)
    if resp.status == 200:  # the stream had started: its last message is the error
        assert "error" in json.loads(resp.body.splitlines()[-1])


def test_docker_py_networks_and_volumes(engine: DaemonProcess,
                                        client: docker.DockerClient) -> None:
    assert engine.net_slot is not None
    subnet = f"10.201.{engine.net_slot}.208/28"
    ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(
        subnet=subnet, gateway=f"10.201.{engine.net_slot}.209")])
    net = client.networks.create("py-net", driver="bridge", ipam=ipam,
                                 labels={"app": "py"}, check_duplicate=True)
    try:
        assert net.attrs["IPAM"]["Config"][0]["Subnet"] == subnet
        assert net.attrs["Options"] == {}  # as created (compose compares them)
        assert [n.name for n in client.networks.list(filters={"label": "app=py"})] == ["py-net"]
        assert {"bridge", "host", "none", "py-net"} <= {n.name for n in client.networks.list()}
        with pytest.raises(docker.errors.APIError) as err:
            client.networks.create("py-net")
        assert err.value.status_code == 409
        with pytest.raises(docker.errors.APIError) as err:
            client.networks.create("py-v6", enable_ipv6=True)
        assert err.value.status_code == 400
        assert "py-v6" not in {n.name for n in client.networks.list()}
        client.networks.create("py-net-home")
        container = engine.cli("run", "-d", "--name", "py-net-user", "--network", "py-net-home",
                               "busybox", "sleep", "60", check=True).stdout.strip()
        try:
            address = f"10.201.{engine.net_slot}.220"
            net.connect("py-net-user", aliases=["web"], ipv4_address=address)
            net.reload()
            entry = net.attrs["Containers"][container]
            assert entry["IPv4Address"] == f"{address}/28" and entry["Aliases"] == ["web"]
            addresses = engine.cli("exec", "py-net-user", "ip", "-4", "addr", check=True)
            assert f"inet {address}/28" in addresses.stdout
            # Its alias on the connected network resolves through its first network's DNS.
            found = engine.cli("exec", "py-net-user", "nslookup", "web", check=True).stdout
            assert address in found
            with pytest.raises(docker.errors.APIError) as err:
                net.remove()
            assert err.value.status_code == 409
            net.disconnect("py-net-user")
            net.reload()
            assert net.attrs["Containers"] == {}
        finally:
            engine.cli("rm", "-f", "py-net-user")
            client.api.remove_network("py-net-home")
    finally:
        client.api.remove_network("py-net")
    assert "py-net" not in {n.name for n in client.networks.list()}
    client.api.create_network("py-prune", labels={"gone": "yes"})
    assert client.networks.prune(filters={"label": "gone=yes"})["NetworksDeleted"] == [
        "py-prune"]
    # volumes
    vol = client.volumes.create("py-vol", labels={"k": "v"})
    assert vol.attrs["Mountpoint"].endswith("/py-vol/_data") and vol.attrs["Labels"] == {
        "k": "v"}
    assert client.volumes.create("py-vol").id == "py-vol"  # idempotent
    assert [v.name for v in client.volumes.list(filters={"label": "k=v"})] == ["py-vol"]
    assert client.api.inspect_volume("py-vol")["Driver"] == "local"
    engine.cli("create", "--name", "py-vol-user", "-v", "py-vol:/data", "busybox", check=True)
    with pytest.raises(docker.errors.APIError) as err:
        vol.remove()
    assert err.value.status_code == 409
    engine.cli("rm", "py-vol-user", check=True)
    vol.remove()
    with pytest.raises(docker.errors.NotFound):
        client.volumes.get("py-vol")
    client.volumes.create("py-vol-anon-like")
    pruned = client.volumes.prune(filters={"all": "true"})
    assert "py-vol-anon-like" in pruned["VolumesDeleted"]
    with pytest.raises(docker.errors.APIError) as err:
        client.volumes.create("py-bad", driver="nfs-magic")
    assert err.value.status_code == 400


def test_search_lists_the_registry(engine: DaemonProcess, plain_registry: Registry,
                                   docker_cli: DockerCLI) -> None:
    sock = docker_sock(engine)
    engine.cli("tag", "busybox", f"{plain_registry.host}/findme/box:1", check=True)
    assert docker_cli(sock, "push", f"{plain_registry.host}/findme/box:1").returncode == 0
    out = docker_cli(sock, "search", "--format", "{{.Name}}", f"{plain_registry.host}/findme")
    assert out.returncode == 0, out.stderr
    assert f"{plain_registry.host}/findme/box" in out.stdout.split()
    resp = request(sock, "GET", "/images/search?term=")
    assert resp.status == 400


def test_docker_py_build(engine: DaemonProcess, client: docker.DockerClient) -> None:
    context = short_tmpdir("sv-pybuild-")
    try:
        (context / "Dockerfile").write_text(
            "FROM busybox\nARG WHO\nRUN echo \"built by $WHO\" > /who && cat /who\n"
            "COPY data.txt /data.txt\nENV KEEP=1\nCMD [\"cat\", \"/who\"]\n")
        (context / "data.txt").write_text("context file\n")
        (context / ".dockerignore").write_text("ignored.txt\n")
        (context / "ignored.txt").write_text("must not reach the daemon\n")
        image, logs = client.images.build(path=str(context), tag="py-built:1",
                                          buildargs={"WHO": "docker-py"}, labels={"x": "y"},
                                          rm=True)
        lines = "".join(chunk.get("stream", "") for chunk in logs)
        assert "built by docker-py" in lines and "Successfully tagged py-built:1" in lines
        assert image.tags == ["py-built:1"] and image.labels == {"x": "y"}
        assert "KEEP=1" in image.attrs["Config"]["Env"]
        out = engine.cli("run", "--rm", "py-built:1", check=True).stdout
        assert out.strip() == "built by docker-py"
        assert engine.cli("run", "--rm", "py-built:1", "ls", "/ignored.txt").returncode != 0
        # low level: decoded messages, the aux ID, the cache
        messages = list(client.api.build(path=str(context), tag="py-built:2",
                                         buildargs={"WHO": "docker-py"}, decode=True))
        assert any("Using cache" in m.get("stream", "") for m in messages)
        ids = [m["aux"]["ID"] for m in messages if "aux" in m]
        assert ids == [client.images.get("py-built:2").id]
        # a Dockerfile given in the context under another name, nocache, a target stage
        (context / "Other").write_text("FROM busybox AS one\nRUN echo one > /n\n"
                                       "FROM busybox AS two\nRUN echo two > /n\n")
        image, _ = client.images.build(path=str(context), dockerfile="Other", target="one",
                                       nocache=True, tag="py-built:3")
        out = engine.cli("run", "--rm", "py-built:3", "cat", "/n", check=True).stdout
        assert out.strip() == "one"
        # a failing step: BuildError with docker's message
        (context / "Dockerfile").write_text("FROM busybox\nRUN exit 7\n")
        with pytest.raises(docker.errors.BuildError) as err:
            client.images.build(path=str(context), tag="py-broken:1")
        assert "returned a non-zero code: 7" in str(err.value)
        with pytest.raises(docker.errors.ImageNotFound):
            client.images.get("py-broken:1")
        # a Dockerfile that does not parse is a plain 400 before any output
        (context / "Dockerfile").write_text("FROM busybox\nNOSUCHINSTRUCTION x\n")
        with pytest.raises(docker.errors.APIError) as api_err:
            client.images.build(path=str(context))
        assert api_err.value.status_code == 400
        for tag in ("py-built:1", "py-built:2", "py-built:3"):
            client.images.remove(tag)
        pruned = client.api.prune_builds()
        assert pruned["SpaceReclaimed"] >= 0
    finally:
        shutil.rmtree(context, ignore_errors=True)


def test_links_name_containers_for_their_container_only(engine: DaemonProcess,
                                                        client: docker.DockerClient) -> None:
    """docker's legacy links on a user network (compose's one-off containers carry them):
    the alias resolves inside the linking container, nowhere else."""
    needs_container_routes(engine)
    client.networks.create("py-links")
    made: list[str] = []
    try:
        made.append("lk-target")
        engine.cli("run", "-d", "--name", "lk-target", "--network", "py-links", "busybox",
                   "sleep", "120", check=True)
        made.append("lk-other")
        engine.cli("run", "-d", "--name", "lk-other", "--network", "py-links", "busybox",
                   "sleep", "120", check=True)
        api = client.api
        made.append("lk-user")
        api.create_container("busybox", ["sleep", "120"], name="lk-user",
                             host_config=api.create_host_config(
                                 links={"lk-target": "tgt"}, network_mode="py-links"))
        api.start("lk-user")
        address = client.containers.get("lk-target").attrs["NetworkSettings"]["Networks"][
            "py-links"]["IPAddress"]
        assert client.containers.get("lk-user").attrs["HostConfig"]["Links"] == [
            "/lk-target:/lk-user/tgt"]
        found = engine.cli("exec", "lk-user", "nslookup", "tgt", check=True).stdout
        assert address in found
        assert engine.cli("exec", "lk-other", "nslookup", "tgt").returncode != 0
        with pytest.raises(docker.errors.APIError) as err:  # the default bridge: refused
            api.create_container("busybox", ["true"], name="lk-bridge",
                                 host_config=api.create_host_config(links={"lk-target": "t"}))
        assert err.value.status_code == 400 and "user-defined networks" in str(err.value)
    finally:
        for name in made:
            engine.cli("rm", "-f", name)
        client.api.remove_network("py-links")


def test_system_prune(daemon: DaemonProcess, busybox_image: str, docker_cli: DockerCLI) -> None:
    """``docker system prune`` (the CLI composes container, network, image and build-cache
    prune) on a daemon of its own: it removes every unused image with -a."""
    needs_container_routes(daemon)
    sock = docker_sock(daemon)
    stopped = daemon.cli("create", "--name", "sp-stopped", "busybox", "true",
                         check=True).stdout.strip()
    running = daemon.cli("run", "-d", "--name", "sp-running", "busybox", "sleep", "120",
                         check=True).stdout.strip()
    daemon.cli("network", "create", "sp-net", check=True)
    daemon.cli("volume", "create", "sp-vol", check=True)
    daemon.cli("create", "--name", "sp-anon", "-v", "/data", "busybox", check=True)
    anonymous = json.loads(daemon.cli("inspect", "sp-anon", check=True).stdout)[0]["Mounts"][0][
        "Name"]
    daemon.cli("rm", "sp-anon", check=True)
    daemon.cli("tag", "busybox", "sp-img:1", check=True)
    out = docker_cli(sock, "system", "prune", "-f")
    assert out.returncode == 0, out.stderr
    assert "Deleted Containers:" in out.stdout and stopped in out.stdout
    assert "Deleted Networks:\nsp-net" in out.stdout
    assert "Total reclaimed space" in out.stdout
    names = docker_cli(sock, "ps", "-a", "--format", "{{.Names}}").stdout.split()
    assert names == ["sp-running"]
    assert "sp-net" not in docker_cli(sock, "network", "ls").stdout
    volumes = docker_cli(sock, "volume", "ls", "-q").stdout.split()
    assert "sp-vol" in volumes and anonymous in volumes  # volumes only with --volumes
    assert "sp-img:1" in docker_cli(sock, "images", "--format", "{{.Repository}}:{{.Tag}}").stdout
    daemon.cli("rm", "-f", running, check=True)
    out = docker_cli(sock, "system", "prune", "-af", "--volumes")
    assert out.returncode == 0, out.stderr
    assert "untagged: sp-img:1" in out.stdout.lower() and busybox_image in out.stdout
    assert docker_cli(sock, "images", "-q").stdout.strip() == ""
    assert anonymous not in docker_cli(sock, "volume", "ls", "-q").stdout.split()


def _connect_script(cli: DockerCLI, suffix: str, subnet: str) -> list[tuple[int, str]]:
    """network connect/disconnect with an alias and a static address on a running container;
    (exit code, stdout) of each command."""
    net, other, box = f"sv-cn{suffix}", f"sv-cn{suffix}-b", f"sv-box{suffix}"
    address = subnet.rsplit(".", 1)[0] + "." + str(int(subnet.rsplit(".", 1)[1].split("/")[0])
                                                   + 5)
    steps = [
        ("network", "create", net),
        ("network", "create", "--subnet", subnet, other),
        ("run", "-d", "--name", box, "--network", net, "busybox", "sleep", "120"),
        ("network", "connect", "--alias", "web", "--ip", address, other, box),
        ("network", "inspect", "-f", "{{range .Containers}}{{.Name}} {{.IPv4Address}}{{end}}",
         other),
        ("inspect", "-f", f"{{{{(index .NetworkSettings.Networks \"{other}\").IPAddress}}}}",
         box),
        ("exec", box, "nslookup", "web"),
        ("network", "rm", other),
        ("network", "disconnect", other, box),
        ("network", "inspect", "-f", "{{len .Containers}}", other),
        ("network", "disconnect", other, box),
        ("rm", "-f", box),
        ("network", "rm", net, other),
    ]
    out = []
    for args in steps:
        done = cli(*args)
        text = done.stdout.strip().replace(suffix, "{S}").replace(address, "{IP}")
        if args[0] == "run" or args[:2] in (("exec", box), ("network", "create")):
            text = ""  # IDs; nslookup's server lines differ
        out.append((done.returncode, text))
    return out


def test_cli_network_connect_beside_dockerd(engine: DaemonProcess, docker_cli: DockerCLI,
                                            busybox_tar: Path) -> None:
    needs_container_routes(engine)
    assert engine.net_slot is not None
    ours = _connect_script(lambda *a: docker_cli(docker_sock(engine), *a), "-sv2",
                           f"10.201.{engine.net_slot}.192/28")
    rc = [r for r, _ in ours]
    assert rc == [0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0], ours
    assert ours[4][1] == "sv-box{S} {IP}/28"
    assert ours[5][1] == "{IP}" and ours[9][1] == "0"
    if shutil.which("dockerd") is None:
        pytest.skip("dockerd is not installed (scripts/bootstrap installs docker.io)")
    peer = DockerPeer(short_tmpdir("sv-dockerd-"))
    try:
        peer.start()
        peer.import_busybox(busybox_tar)
        theirs = _connect_script(lambda *a: docker_cli(peer.socket, *a), "-dk2",
                                 f"10.201.{engine.net_slot}.176/28")
    finally:
        peer.stop()
    assert [r for r, _ in theirs] == rc, theirs
    assert theirs == ours
