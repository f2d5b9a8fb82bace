"""Remote use: contexts (CRUD, lookup order), ssh:// contexts, tcp:// with TLS client certs."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon import DaemonProcess, run_cli, short_tmpdir
from tests.sshd import TestSSHD, free_port


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A private SERVIN_CONFIG directory."""
    return tmp_path / "servin-config"


def servin(config: Path, *args: str, env: dict[str, str] | None = None,
           input: bytes | None = None) -> subprocess.CompletedProcess[str]:
    """The CLI with its own config dir and no -H (so contexts decide)."""
    full = {"SERVIN_CONFIG": str(config), **(env or {})}
    full.setdefault("SERVIN_CONTEXT", "")
    return run_cli(*args, env=full, input=input)


def test_contexts_crud(config: Path, daemon: DaemonProcess) -> None:
    out = servin(config, "context", "ls", "--format", "json")
    assert [json.loads(x)["Name"] for x in out.stdout.splitlines()] == ["default"]
    assert servin(config, "context", "show").stdout.strip() == "default"

    out = servin(config, "context", "create", "local", "--host", daemon.host,
                 "--description", "the test daemon")
    assert out.returncode == 0 and out.stdout.strip() == "local", out.stderr
    path = config / "contexts.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["contexts"]["local"]["host"] == daemon.host

    # Refused, and nothing changed: duplicate, bad name, bad host, TLS on a unix host.
    before = path.read_text()
    for args, message in (
        (["local", "--host", daemon.host], "already exists"),
        (["default", "--host", daemon.host], "already exists"),
        (["bad name", "--host", daemon.host], "is invalid"),
        (["x", "--host", "http://nowhere"], "use unix://, tcp:// or ssh://"),
        (["x", "--host", "tcp://h"], "tcp:// needs a port"),
        (["x", "--host", daemon.host, "--tlsverify"], "TLS applies to tcp:// hosts only"),
        (["x"], "needs --host"),
    ):
        out = servin(config, "context", "create", *args)
        assert out.returncode == 1 and message in out.stderr, (args, out.stderr)
        assert len(out.stderr.strip().splitlines()) == 1
    assert path.read_text() == before

    out = servin(config, "context", "ls")
    assert out.stdout.splitlines()[1].startswith("default *")
    assert servin(config, "context", "use", "local").returncode == 0
    assert servin(config, "context", "show").stdout.strip() == "local"
    assert servin(config, "context", "ls", "-q").stdout.split() == ["default", "local"]
    inspected = json.loads(servin(config, "context", "inspect").stdout)
    assert inspected[0]["Name"] == "local" and inspected[0]["Current"] is True
    assert inspected[0]["Endpoints"]["servin"]["Host"] == daemon.host
    # The current context is where commands go now.
    out = servin(config, "info", "--format", "{{.ServinRootDir}}")
    assert out.stdout.strip() == str(daemon.root), out.stderr

    assert servin(config, "context", "update", "local", "--description", "new").returncode == 0
    out = servin(config, "context", "inspect", "local", "-f", "{{.Description}}")
    assert out.stdout.strip() == "new"
    out = servin(config, "context", "create", "copy", "--from", "local")
    assert out.returncode == 0, out.stderr
    assert servin(config, "context", "inspect", "copy", "-f",
                  "{{.Endpoints.servin.Host}}").stdout.strip() == daemon.host

    out = servin(config, "context", "rm", "local")
    assert out.returncode == 1 and "is in use" in out.stderr
    assert servin(config, "context", "rm", "default").returncode == 1
    assert servin(config, "context", "rm", "-f", "local", "copy").returncode == 0
    assert servin(config, "context", "show").stdout.strip() == "default"
    assert servin(config, "context", "ls", "-q").stdout.split() == ["default"]
    out = servin(config, "context", "use", "gone")
    assert out.returncode == 1 and "does not exist" in out.stderr


def test_lookup_order(config: Path, daemon: DaemonProcess) -> None:
    """-H, then --context, then $SERVIN_HOST, then $SERVIN_CONTEXT, then the current one."""
    nowhere = "unix:///nonexistent/servin.sock"
    servin(config, "context", "create", "good", "--host", daemon.host)
    servin(config, "context", "create", "bad", "--host", nowhere)

    def reaches(*args: str, **env: str) -> bool:
        out = servin(config, *args, "info", "--format", "{{.ServinRootDir}}", env=env)
        if out.returncode == 0:
            assert out.stdout.strip() == str(daemon.root)
            return True
        assert "Cannot connect to the Servin daemon" in out.stderr, out.stderr
        return False

    servin(config, "context", "use", "bad")
    assert not reaches()  # the current context
    assert reaches(SERVIN_CONTEXT="good")  # $SERVIN_CONTEXT beats the current context
    assert not reaches(SERVIN_HOST=nowhere, SERVIN_CONTEXT="good")  # $SERVIN_HOST beats it
    assert reaches("--context", "good", SERVIN_HOST=nowhere)  # --context beats $SERVIN_HOST
    assert reaches("-c", "good", SERVIN_HOST=nowhere)
    assert reaches("-H", daemon.host, SERVIN_CONTEXT="bad")  # -H beats everything
    out = servin(config, "-H", daemon.host, "--context", "good", "ps")
    assert out.returncode == 1 and "either specify --host or --context" in out.stderr
    out = servin(config, "--context", "missing", "ps")
    assert out.returncode == 1 and "context 'missing' does not exist" in out.stderr


@pytest.fixture
def sshd() -> Iterator[TestSSHD]:
    server = TestSSHD(short_tmpdir("sv-ssh-")).start()
    try:
        yield server
    finally:
        server.stop()


def test_ssh_context_lists_the_same_containers(
    config: Path, daemon: DaemonProcess, busybox_image: str, sshd: TestSSHD
) -> None:
    daemon.cli("run", "--name", "far", "busybox", "true", check=True)
    daemon.cli("run", "-d", "--name", "near", "busybox", "sleep", "300", check=True)
    url = f"ssh://root@127.0.0.1:{sshd.port}{daemon.socket}"
    out = servin(config, "context", "create", "remote", "--host", url)
    assert out.returncode == 0, out.stderr
    env = {"SERVIN_SSH_COMMAND": sshd.ssh_command()}
    remote = servin(config, "--context", "remote", "ps", "-a", "--no-trunc",
                    "--format", "{{.ID}} {{.Names}} {{.State}}", env=env)
    assert remote.returncode == 0, remote.stderr
    local = daemon.cli("ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Names}} {{.State}}",
                       check=True)
    assert remote.stdout == local.stdout
    assert len(local.stdout.splitlines()) == 2
    servin(config, "context", "use", "remote")
    out = servin(config, "inspect", "-f", "{{.State.Running}}", "near", env=env)
    assert out.stdout.strip() == "true", out.stderr


def _make_pki(base: Path) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1/localhost and a client certificate."""
    base.mkdir(parents=True, exist_ok=True)

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=base)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca-key.pem", "-out",
        "ca.pem", "-days", "2", "-subj", "/CN=servin test CA")
    for name, ext in (
        ("server", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"),
        ("client", "extendedKeyUsage=clientAuth\n"),
        ("other", "extendedKeyUsage=clientAuth\n"),
    ):
        (base / f"{name}.ext").write_text(ext)
        run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}-key.pem", "-out",
            f"{name}.csr", "-subj", f"/CN={name}")
        if name == "other":  # signed by itself, not by the CA
            run("x509", "-req", "-in", f"{name}.csr", "-signkey", f"{name}-key.pem", "-out",
                f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext")
        else:
            run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem",
                "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile",
                f"{name}.ext")
    return {n: base / f"{n}.pem" for n in ("ca", "server", "server-key", "client",
                                            "client-key", "other", "other-key")}


def test_tcp_with_tls_client_certificates(
    config: Path, daemon_factory: type[DaemonProcess], tmp_path: Path
) -> None:
    pki = _make_pki(tmp_path / "pki")
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    base = short_tmpdir()
    d = daemon_factory(base, [
        "--host", f"unix://{base}/run/servin.sock", "--host", url,
        "--tlscert", str(pki["server"]), "--tlskey", str(pki["server-key"]),
        "--tlscacert", str(pki["ca"]), "--tlsverify",
    ]).start()

    tls = ["--tlsverify", "--tlscacert", str(pki["ca"]), "--tlscert", str(pki["client"]),
           "--tlskey", str(pki["client-key"])]
    fmt = ["info", "--format", "{{.ServinRootDir}}"]
    out = servin(config, "-H", url, *tls, *fmt)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(d.root)
    # grpcio's transport too.
    out = servin(config, "-H", url, *tls, *fmt, env={"SERVIN_CLIENT_TRANSPORT": "grpc"})
    assert out.stdout.strip() == str(d.root), out.stderr
    # --tls without verifying the daemon, still with the client certificate.
    out = servin(config, "-H", url, "--tls", "--tlscert", str(pki["client"]), "--tlskey",
                 str(pki["client-key"]), *fmt)
    assert out.stdout.strip() == str(d.root), out.stderr

    # Refused: no client certificate, one the CA did not sign, a CA that did not sign the
    # daemon's, no TLS at all. Each is one line.
    for args in (
        ["--tlsverify", "--tlscacert", str(pki["ca"])],
        ["--tlsverify", "--tlscacert", str(pki["ca"]), "--tlscert", str(pki["other"]),
         "--tlskey", str(pki["other-key"])],
        ["--tlsverify", "--tlscacert", str(pki["other"]), "--tlscert", str(pki["client"]),
         "--tlskey", str(pki["client-key"])],
        [],
    ):
        out = servin(config, "-H", url, *args, *fmt)
        assert out.returncode == 1, (args, out.stdout)
        assert len(out.stderr.strip().splitlines()) == 1, out.stderr
        assert "Cannot connect to the Servin daemon" in out.stderr
    out = servin(config, "-H", url, "--tlscert", str(pki["client"]), *fmt)
    assert out.returncode == 1 and "--tlscert and --tlskey must be given together" in out.stderr

    # A context keeps the TLS material (as absolute paths) and uses it.
    out = servin(config, "context", "create", "secure", "--host", url, *tls[1:])
    assert out.returncode == 0, out.stderr
    out = servin(config, "--context", "secure", *fmt)
    assert out.stdout.strip() == str(d.root), out.stderr
    material = json.loads(servin(config, "context", "inspect", "secure").stdout)[0]
    assert material["Endpoints"]["servin"]["TLSMaterial"]["ca"] == str(pki["ca"])
    # docker's --docker spelling makes the same context.
    spec = f"host={url},ca={pki['ca']},cert={pki['client']},key={pki['client-key']}"
    out = servin(config, "context", "create", "dockerish", "--docker", spec)
    assert out.returncode == 0, out.stderr
    out = servin(config, "--context", "dockerish", *fmt)
    assert out.stdout.strip() == str(d.root), out.stderr

    # The asyncio client (the console's) through the same resolution.
    from servin.api.servin.v1 import system_pb2
    from servin.client.aio import AsyncClient
    from servin.client.hosts import resolve_target

    os.environ["SERVIN_CONFIG"] = str(config)
    try:
        target = resolve_target(context="secure")
    finally:
        del os.environ["SERVIN_CONFIG"]

    async def root_dir() -> str:
        async with AsyncClient(target) as client:
            return (await client.system.Info(system_pb2.InfoRequest())).root_dir

    assert asyncio.run(root_dir()) == str(d.root)


def test_console_resolves_hosts_as_the_cli(
    config: Path, daemon: DaemonProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    """servin tui goes through the same resolve_target: a context reaches its daemon."""
    from servin.api.servin.v1 import system_pb2
    from servin.client.hosts import resolve_target
    from servin.tui.source import client_factory

    servin(config, "context", "create", "here", "--host", daemon.host)
    servin(config, "context", "use", "here")
    monkeypatch.setenv("SERVIN_CONFIG", str(config))
    monkeypatch.delenv("SERVIN_HOST", raising=False)
    monkeypatch.delenv("SERVIN_CONTEXT", raising=False)
    target = resolve_target()
    assert (target.url, target.context, target.source) == (daemon.host, "here", "context")

    async def root_dir() -> str:
        client = client_factory(None)()  # what the console makes when given no -H
        try:
            return (await client.system.Info(system_pb2.InfoRequest())).root_dir
        finally:
            await client.close()

    assert asyncio.run(root_dir()) == str(daemon.root)
