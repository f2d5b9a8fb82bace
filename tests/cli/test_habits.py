"""Docker habits, round two (issue #21): each command line as a docker user types it, against a
real daemon, with what docker 28 answers (exit code, output). One module-scoped daemon.

The table holds the one-command cases; the cases that need a set-up (a running container,
a registry, a file on the host) follow as functions.
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import click
import pytest

from tests.daemon import REPO, DaemonProcess, short_tmpdir

Check = Callable[[subprocess.CompletedProcess[str]], None]


def _no_traceback(out: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in out.stderr, out.stderr


def code(expected: int, stdout: str | None = None, stderr: str | None = None,
         stderr_has: str = "", stdout_has: str = "") -> Check:
    def check(out: subprocess.CompletedProcess[str]) -> None:
        _no_traceback(out)
        assert out.returncode == expected, (out.stdout, out.stderr)
        if stdout is not None:
            assert out.stdout == stdout, out.stdout
        if stderr is not None:
            assert out.stderr == stderr, out.stderr
        assert stderr_has in out.stderr, out.stderr
        assert stdout_has in out.stdout, out.stdout

    return check


@dataclass
class Case:
    line: str  # after "servin"
    check: Check
    env: dict[str, str] | None = None


CASES = [
    # Short options with '=' (docker's pflag), and boolean flags with =true/=false.
    Case("run --rm -e=FOO=bar -w=/tmp busybox sh -c 'echo $FOO; pwd'",
         code(0, stdout="bar\n/tmp\n")),
    Case("run --rm -it=false --rm=true busybox echo plain", code(0, stdout="plain\n")),
    Case("run --rm -u=nobody busybox id -u", code(0, stdout="65534\n")),
    Case("--host=$HOST ps -a=true -q=false --format={{.Names}}", code(0)),
    Case("run --rm --privileged=maybe busybox true",
         code(125, stderr_has="invalid boolean value 'maybe'")),
    # Unknown commands: our wording, docker's exit code 1.
    Case("pss", code(1, stderr="Error: unknown command: servin pss\n"
                               "Run 'servin --help' for more information\n")),
    Case("container pss", code(1, stderr_has="unknown command: servin container pss")),
    # A directory as the command cannot be invoked: 126, as docker.
    Case("run --rm busybox /etc", code(126, stderr_has="is a directory")),
    # -f on a missing object is no error.
    Case("rm -f nosuchcontainer", code(0, stdout="", stderr="")),
    Case("rmi -f nosuchimage", code(0, stdout="", stderr="")),
    Case("rm nosuchcontainer", code(1, stderr="Error: No such container: nosuchcontainer\n")),
    # -it without a terminal on stdin.
    Case("run --rm -it busybox sh", code(1, stderr="Error: the input device is not a TTY\n")),
    Case("run --rm -t busybox echo only-t", code(0)),  # no stdin attached: nothing to check
    # -e VAR takes VAR from the client's environment; an unset one is not set at all.
    Case("run --rm -e FROM_CLIENT -e NOT_SET_ANYWHERE busybox sh -c "
         "'echo $FROM_CLIENT; env | grep -c NOT_SET_ANYWHERE'",
         code(1, stdout="yes\n0\n"), env={"FROM_CLIENT": "yes"}),
    # HOME from the image's /etc/passwd, "/" without an entry.
    Case("run --rm busybox sh -c 'echo $HOME'", code(0, stdout="/root\n")),
    Case("run --rm -u user busybox sh -c 'echo $HOME'", code(0, stdout="/home/user\n")),
    Case("run --rm -u 4242 busybox sh -c 'echo $HOME'", code(0, stdout="/\n")),
    Case("run --rm -e HOME=/x busybox sh -c 'echo $HOME'", code(0, stdout="/x\n")),
    # A plain container's /dev: the standard entries only (--privileged: see below).
    Case("run --rm busybox sh -c 'ls /dev | wc -l'",
         lambda out: (code(0)(out), _at_most(out.stdout.strip(), 16))),
    # --device, with its permissions in the device cgroup; --device-cgroup-rule.
    Case("run --rm --device /dev/fuse:/dev/fusex:r --device-cgroup-rule 'c 42:* rmw' busybox "
         "sh -c 'ls -l /dev/fusex; cat /sys/fs/cgroup/devices/devices.list'",
         lambda out: (code(0)(out), _contains(out.stdout, "10, 229"),
                      _contains(out.stdout, "c 10:229 r\n"), _contains(out.stdout, "c 42:* rwm"))),
    Case("run --rm --device /nonexistent busybox true",
         code(125, stderr_has="error gathering device information")),
    Case("run --rm --device-cgroup-rule 'x 1:2 rwm' busybox true",
         code(125, stderr_has="invalid device cgroup rule format")),
    # --cgroupns: a private cgroup namespace sees "/", the host's the real path.
    Case("run --rm busybox sh -c 'grep -c :/$ /proc/self/cgroup'",
         lambda out: (code(0)(out), _more_than(out.stdout.strip(), 0))),
    Case("run --rm --cgroupns host busybox sh -c 'grep -c :/servin/ /proc/self/cgroup'",
         lambda out: (code(0)(out), _more_than(out.stdout.strip(), 0))),
    Case("run --rm --cgroupns maybe busybox true", code(125, stderr_has="'maybe'")),
    # --dns-opt (docker's alias of --dns-option) and --dns-search in resolv.conf.
    Case("run --rm --dns 10.0.0.53 --dns-opt ndots:3 --dns-search example.com busybox "
         "cat /etc/resolv.conf",
         code(0, stdout_has="options ndots:3")),
    Case("run --rm --dns 10.0.0.53 --dns-search example.com busybox cat /etc/resolv.conf",
         code(0, stdout_has="search example.com")),
    # --mac-address.
    Case("run --rm --mac-address 92:d0:c6:0a:29:33 busybox cat /sys/class/net/eth0/address",
         code(0, stdout="92:d0:c6:0a:29:33\n")),
    Case("run --rm --mac-address 93:d0:c6:0a:29:33 busybox true",
         code(125, stderr_has="multicast")),
    Case("run --rm --mac-address 92:d0:c6:0a:29:33 --network none busybox true",
         code(125, stderr_has="conflicting options: mac-address and the network mode")),
    # -a/--attach chooses the streams; it conflicts with -d.
    Case("run --rm -a stdout busybox sh -c 'echo out; echo err >&2'",
         code(0, stdout="out\n", stderr="")),
    Case("run --rm -a stderr busybox sh -c 'echo out; echo err >&2'",
         code(0, stdout="", stderr="err\n")),
    Case("run -d -a stdout busybox true", code(125, stderr_has="conflicting options: -a and -d")),
    # Published ports and host / container networking.
    Case("run --rm -p 8080 --network host busybox true",
         code(0, stderr="WARNING: Published ports are discarded when using host network "
                        "mode\n")),
    # --init: the init is PID 1 and runs the program.
    Case("run --rm --init busybox ps -o pid,comm",
         code(0, stdout_has="    1 docker-init\n")),
    # version uses Go/OCI architecture names on both sides.
    Case("version --format '{{.Client.Arch}} {{.Server.Arch}}'",
         code(0, stdout=f"{'amd64' if os.uname().machine == 'x86_64' else 'arm64'} "
                        f"{'amd64' if os.uname().machine == 'x86_64' else 'arm64'}\n")),
    # search: docker.io offers no catalog: a clear line.
    Case("search busybox", code(1, stderr_has="Docker Hub offers no registry catalog")),
    # An error no command foresaw is one line, exit 1 (here: the output directory is missing).
    Case("export -o /nonexistent/dir/x.tar nosuchcontainer", code(1)),
]


def _more_than(text: str, n: int) -> None:
    assert int(text) > n, text


def _at_most(text: str, n: int) -> None:
    assert int(text) <= n, text


def _contains(text: str, part: str) -> None:
    assert part in text, text


@pytest.mark.parametrize("case", CASES, ids=[c.line for c in CASES])
def test_command_line(engine: DaemonProcess, case: Case) -> None:
    line = case.line.replace("$HOST", engine.host)
    out = engine.cli(*shlex.split(line), env=case.env)
    case.check(out)


# ----- cases with a set-up ------------------------------------------------------------------


@pytest.fixture(scope="module")
def box(engine: DaemonProcess) -> Iterator[str]:
    """A running container with a file, a directory and a trap for USR1."""
    cid = engine.cli("run", "-d", "--name", "box", "busybox", "sh", "-c",
                     "echo hello > /tmp/file.txt; mkdir /tmp/dir; echo x > /tmp/dir/a; "
                     "trap 'echo got USR1' USR1; echo ready; "
                     "while :; do sleep 1 & wait; done", check=True).stdout.strip()
    _wait_for_log(engine, cid, "ready")
    yield cid
    engine.cli("rm", "-f", cid)


def _wait_for_log(engine: DaemonProcess, cid: str, text: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while True:
        out = engine.cli("logs", cid).stdout
        if text in out:
            return out
        assert time.monotonic() < deadline, f"{text!r} never logged: {out!r}"
        time.sleep(0.1)


def test_short_option_with_equals_for_kill_and_cp(engine: DaemonProcess, box: str,
                                                  tmp_path: Path) -> None:
    out = engine.cli("kill", "-s=USR1", "box")
    assert out.returncode == 0 and out.stdout == "box\n", out.stderr
    _wait_for_log(engine, box, "got USR1")
    out = engine.cli("cp", "-a=false", "box:/tmp/file.txt", str(tmp_path / "f"))
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "f").read_text() == "hello\n"


def test_every_group_speaks_dockers_flag_syntax() -> None:
    """``-X=VALUE`` is handled once, in the group class: every group of the CLI must be one."""
    from servin.cli.flagsyntax import DockerGroup
    from servin.cli.main import cli

    ctx = click.Context(cli)
    groups = []

    def walk(group: click.Group, path: str) -> None:
        groups.append(path)
        assert isinstance(group, DockerGroup), path
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            if isinstance(command, click.Group):
                walk(command, f"{path} {name}")

    walk(cli, "servin")
    assert len(groups) >= 7, groups


@pytest.mark.parametrize(("args", "expected"), [
    (["-s=TERM", "c"], ["-s", "TERM", "c"]),
    (["-sTERM", "c"], ["-s", "TERM", "c"]),
    (["-ai=false", "c"], ["-a", "c"]),
    (["--interactive=true", "c"], ["--interactive", "c"]),
    (["-s", "-x=1", "c"], ["-s", "-x=1", "c"]),  # a value that looks like an option stays
    (["c", "-s=1"], ["c", "-s=1"]),  # after the first argument of a no-interspersed command
    (["--", "-s=1"], ["--", "-s=1"]),
])
def test_flag_normalisation(args: list[str], expected: list[str]) -> None:
    from servin.cli.flagsyntax import normalize

    @click.command(context_settings={"allow_interspersed_args": False})
    @click.option("-s", "--signal")
    @click.option("-a", "--attach", is_flag=True)
    @click.option("-i", "--interactive", is_flag=True)
    @click.argument("rest", nargs=-1)
    def command(**kw: object) -> None: ...

    assert normalize(command, args) == expected


def test_privileged_gets_the_hosts_devices(engine: DaemonProcess) -> None:
    from servin.engine.linux.devices import host_devices

    out = engine.cli("run", "--rm", "--privileged", "busybox", "find", "/dev", "-type", "c",
                     "-o", "-type", "b", check=True)
    inside = set(out.stdout.split())
    host = {node.name for node in host_devices()}
    assert len(host) > 14 and host <= inside, sorted(host - inside)


def test_cp_to_stdout_and_onto_a_directory(engine: DaemonProcess, box: str,
                                          tmp_path: Path) -> None:
    # /dev/stdout is a pipe here: the file's bytes go into it.
    out = engine.cli("cp", "box:/tmp/file.txt", "/dev/stdout")
    assert (out.returncode, out.stdout) == (0, "hello\n"), out.stderr
    (tmp_path / "file.txt").mkdir()
    out = engine.cli("cp", "box:/tmp/file.txt", str(tmp_path))
    assert out.returncode == 1
    assert out.stderr == (f'Error: cannot overwrite directory "{tmp_path}/file.txt" with '
                          f'non-directory "{tmp_path}"\n')
    assert list((tmp_path / "file.txt").iterdir()) == []  # the directory is left alone
    (tmp_path / "dir").write_text("a file")
    out = engine.cli("cp", "box:/tmp/dir", str(tmp_path))
    assert out.returncode == 1 and "cannot overwrite non-directory" in out.stderr, out.stderr
    _no_traceback(out)


@pytest.mark.parametrize("kind", ["plain", "gzip", "bzip2", "xz"])
def test_cp_from_stdin_takes_compressed_tar_streams(engine: DaemonProcess, box: str,
                                                    kind: str) -> None:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        data = f"made by {kind}\n".encode()
        info = tarfile.TarInfo(f"from-{kind}.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    packed = {"plain": lambda b: b, "gzip": gzip.compress, "bzip2": bz2.compress,
              "xz": lzma.compress}[kind](raw.getvalue())
    out = engine.cli("cp", "-", "box:/tmp", input=packed)
    assert out.returncode == 0, out.stderr
    got = engine.cli("exec", "box", "cat", f"/tmp/from-{kind}.txt", check=True).stdout
    assert got == f"made by {kind}\n"


def test_exec_it_without_a_terminal(engine: DaemonProcess, box: str) -> None:
    out = engine.cli("exec", "-it", "box", "sh")
    assert (out.returncode, out.stderr) == (1, "Error: the input device is not a TTY\n")


def test_env_file_takes_bare_names_from_the_client(engine: DaemonProcess,
                                                   tmp_path: Path) -> None:
    env_file = tmp_path / "env"
    env_file.write_text("# comment\nA=1\nFROM_CLIENT\nNOT_SET_ANYWHERE\n")
    out = engine.cli("run", "--rm", "--env-file", str(env_file), "busybox", "sh", "-c",
                     "echo $A $FROM_CLIENT; env | grep -c NOT_SET_ANYWHERE",
                     env={"FROM_CLIENT": "client"})
    assert (out.returncode, out.stdout) == (1, "1 client\n0\n"), out.stderr


def test_cidfile(engine: DaemonProcess, tmp_path: Path) -> None:
    cidfile = tmp_path / "cid"
    out = engine.cli("create", "--cidfile", str(cidfile), "busybox", "true")
    assert out.returncode == 0, out.stderr
    cid = out.stdout.strip()
    try:
        assert cidfile.read_text() == cid
        again = engine.cli("run", "--cidfile", str(cidfile), "busybox", "true")
        assert again.returncode == 125
        assert "container ID file found" in again.stderr
        assert cidfile.read_text() == cid  # untouched
        failed = tmp_path / "failed"
        out = engine.cli("create", "--cidfile", str(failed), "nosuchimage:1", "--pull", "never")
        assert out.returncode == 125 and not failed.exists()  # nothing left by a failure
    finally:
        engine.cli("rm", "-f", cid)


def test_create_rm_and_container_prune(engine: DaemonProcess) -> None:
    cid = engine.cli("create", "--rm", "busybox", "true", check=True).stdout.strip()
    assert engine.cli("inspect", "-f", "{{.HostConfig.AutoRemove}}", cid).stdout == "true\n"
    engine.cli("start", cid, check=True)
    deadline = time.monotonic() + 30
    while engine.cli("inspect", cid).returncode == 0:  # the daemon removes it once it ends
        assert time.monotonic() < deadline, "create --rm: not removed after its exit"
        time.sleep(0.1)
    keep = engine.cli("create", "--label", "keep=1", "busybox", "true", check=True).stdout.strip()
    gone = [engine.cli("create", "--label", "prune=me", "busybox", "true",
                       check=True).stdout.strip() for _ in range(2)]
    running = engine.cli("run", "-d", "--label", "prune=me", "busybox", "sleep", "60",
                         check=True).stdout.strip()
    try:
        out = engine.cli("container", "prune", "--filter", "label=prune=me", input=b"n\n")
        assert "WARNING! This will remove all stopped containers." in out.stdout
        assert all(engine.cli("inspect", g).returncode == 0 for g in gone)  # answered no
        out = engine.cli("container", "prune", "-f", "--filter", "label=prune=me")
        assert out.returncode == 0, out.stderr
        assert out.stdout.startswith("Deleted Containers:\n")
        assert sorted(out.stdout.split("\n\n")[0].splitlines()[1:]) == sorted(gone)
        assert "Total reclaimed space:" in out.stdout
        left = engine.cli("ps", "-aq", "--no-trunc").stdout.split()
        assert keep in left and running in left and not set(gone) & set(left)
    finally:
        engine.cli("rm", "-f", keep, running, *gone)


def test_create_attach_streams_as_docker_records_them(engine: DaemonProcess) -> None:
    # docker inspect's Config.Attach* : -a picks streams, -i adds stdin, a detached run none.
    fmt = "{{.Config.AttachStdin}} {{.Config.AttachStdout}} {{.Config.AttachStderr}}"
    made: list[str] = []
    try:
        for args, expected in ((["create", "-a", "stdout"], "false true false"),
                               (["create", "-a", "STDERR", "-i"], "true false true"),
                               (["create"], "false true true"),
                               (["run", "-d"], "false false false")):
            cid = engine.cli(*args, "busybox", "sleep", "5", check=True).stdout.strip()
            made.append(cid)
            assert engine.cli("inspect", "-f", fmt, cid, check=True).stdout.strip() == expected
        bad = engine.cli("create", "-a", "stdfoo", "busybox")
        assert bad.returncode != 0 and "stdfoo" in bad.stderr and "Traceback" not in bad.stderr
    finally:
        engine.cli("rm", "-f", *made)


def test_system_prune_rpc_for_api_clients(engine: DaemonProcess) -> None:
    # servin.v1's System.Prune does what `system prune --volumes` does, in one call; a bad
    # filter is refused before anything is removed.
    from servin.api.servin.v1 import common_pb2, system_pb2
    from servin.client.sync import Client
    from servin.errors import InvalidArgument

    stopped = engine.cli("create", "--label", "prune-rpc=1", "busybox", "true",
                         check=True).stdout.strip()
    kept = engine.cli("create", "busybox", "true", check=True).stdout.strip()
    engine.cli("network", "create", "--label", "prune-rpc=1", "prune-rpc-net", check=True)
    engine.cli("volume", "create", "--label", "prune-rpc=1", "prune-rpc-vol", check=True)
    label = [common_pb2.Filter(key="label", values=["prune-rpc=1"])]
    try:
        with Client(engine.host) as client:
            with pytest.raises(InvalidArgument):
                client.system.Prune(system_pb2.SystemPruneRequest(
                    filters=[common_pb2.Filter(key="bogus", values=["1"])]))
            assert engine.cli("inspect", stopped).returncode == 0  # nothing removed
            with pytest.raises(InvalidArgument, match="until"):
                client.system.Prune(system_pb2.SystemPruneRequest(
                    volumes=True, filters=[common_pb2.Filter(key="until", values=["1h"])]))
            reply = client.system.Prune(system_pb2.SystemPruneRequest(
                volumes=True, filters=label))
        assert list(reply.containers_deleted) == [stopped]
        assert list(reply.networks_deleted) == ["prune-rpc-net"]
        # A named volume stays (docker 23+ prunes anonymous volumes only).
        assert "prune-rpc-vol" not in reply.volumes_deleted
        assert engine.cli("volume", "inspect", "prune-rpc-vol").returncode == 0
        assert engine.cli("inspect", kept).returncode == 0
    finally:
        engine.cli("rm", "-f", stopped, kept)
        engine.cli("network", "rm", "prune-rpc-net")
        engine.cli("volume", "rm", "prune-rpc-vol")


def test_restart_with_a_signal(engine: DaemonProcess) -> None:
    cid = engine.cli("run", "-d", "busybox", "sh", "-c",
                     "trap 'echo got USR2; exit 0' USR2; echo up; "
                     "while :; do sleep 1 & wait; done", check=True).stdout.strip()
    try:
        _wait_for_log(engine, cid, "up")
        out = engine.cli("restart", "-s", "USR2", "-t", "30", cid)
        assert out.returncode == 0, out.stderr
        logs = _wait_for_log(engine, cid, "got USR2")
        assert engine.cli("inspect", "-f", "{{.State.Running}}", cid).stdout == "true\n"
        assert logs.count("up") >= 1
        out = engine.cli("restart", "-s", "NOSUCH", cid)
        assert out.returncode == 1 and "invalid signal: NOSUCH" in out.stderr
    finally:
        engine.cli("rm", "-f", cid)


def test_logs_details_and_quiet_ctrl_c(engine: DaemonProcess, box: str) -> None:
    out = engine.cli("logs", "--details", box, check=True)
    assert out.stdout.splitlines()[0] == " ready"  # docker's empty attributes, then a space
    cid = engine.cli("run", "--log-opt", "labels=tier", "--log-opt", "env-regex=^MO",
                     "-l", "tier=web", "-e", "MODE=prod", "-e", "MOON=1", "-e", "OTHER=2",
                     "busybox", "sh", "-c", "echo out; echo err >&2", check=True)
    name = engine.cli("ps", "-lq", "--no-trunc", check=True).stdout.strip()
    try:
        out = engine.cli("logs", "--details", name, check=True)
        assert out.stdout == "MODE=prod,MOON=1,tier=web out\n", cid.stdout
        assert out.stderr == "MODE=prod,MOON=1,tier=web err\n"
        assert engine.cli("logs", name, check=True).stdout == "out\n"
    finally:
        engine.cli("rm", "-f", name)
    out = engine.cli("run", "--rm", "--log-opt", "compress=true", "busybox", "true")
    assert out.returncode == 125 and "unknown log opt 'compress'" in out.stderr
    proc = subprocess.Popen([sys.executable, "-m", "servin", "-H", engine.host, "logs", "-f",
                             box], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"ready\n"  # following
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGINT  # ended by the signal, as docker's CLI
    assert err == b""  # quietly: no "Aborted."


def test_network_container_mode_refuses_ports(engine: DaemonProcess, box: str) -> None:
    out = engine.cli("run", "--rm", "--network", "container:box", "-p", "80:80", "busybox",
                     "true")
    assert out.returncode == 125
    assert "conflicting options: port publishing and the container type network mode" in \
        out.stderr


def _free_range(count: int) -> int:
    """The first port of ``count`` consecutive free host ports."""
    for start in range(30000 + os.getpid() % 20000, 65000, count):
        sockets = []
        try:
            for port in range(start, start + count):
                s = socket.socket()
                sockets.append(s)
                s.bind(("127.0.0.1", port))
            return start
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise AssertionError("no free port range")


def test_port_ranges(engine: DaemonProcess) -> None:
    first = _free_range(6)
    pair = f"{first}-{first + 2}:{first}-{first + 2}"
    pick = f"127.0.0.1:{first + 3}-{first + 5}:80"
    holder = socket.socket()
    holder.bind(("127.0.0.1", first + 3))  # taken: docker picks another of the range
    try:
        cid = engine.cli("run", "-d", "-p", pair, "-p", pick, "busybox", "sleep", "60",
                         check=True).stdout.strip()
        try:
            lines = sorted(engine.cli("port", cid, check=True).stdout.splitlines())
            assert f"{first}/tcp -> 0.0.0.0:{first}" in lines
            assert f"{first + 2}/tcp -> 0.0.0.0:{first + 2}" in lines
            picked = [ln for ln in lines if ln.startswith("80/tcp")]
            assert len(picked) == 1 and picked[0] in (
                f"80/tcp -> 127.0.0.1:{first + 4}", f"80/tcp -> 127.0.0.1:{first + 5}")
            bindings = json.loads(engine.cli(
                "inspect", "-f", "{{json .HostConfig.PortBindings}}", cid).stdout)
            assert bindings["80/tcp"] == [{"HostIp": "127.0.0.1",
                                           "HostPort": f"{first + 3}-{first + 5}"}]
        finally:
            engine.cli("rm", "-f", cid)
    finally:
        holder.close()


def test_images_positional_filter_and_reproducible_busybox(engine: DaemonProcess) -> None:

    engine.cli("tag", "busybox", "busybox:v2", check=True)
    engine.cli("tag", "busybox", "127.0.0.1:5999/team/busybox", check=True)
    try:
        out = engine.cli("images", "busybox", "--format", "{{.Repository}}:{{.Tag}}", check=True)
        assert sorted(out.stdout.split()) == ["busybox:latest", "busybox:v2"]
        out = engine.cli("images", "busybox:v2", "--format", "{{.Tag}}", check=True)
        assert out.stdout == "v2\n"
        out = engine.cli("images", "127.0.0.1:5999/team/busybox", "-q", check=True)
        assert len(out.stdout.split()) == 1
    finally:
        engine.cli("rmi", "busybox:v2", "127.0.0.1:5999/team/busybox", check=True)
    # The bundled image: the same bytes give the same ID, so importing again is a no-op.
    ids = set()
    for _ in range(2):
        out = subprocess.run([sys.executable, "-m", "servin.devtools.busybox", "--import",
                              "bundled:1", "-H", engine.host], capture_output=True, text=True,
                             cwd=REPO, check=True)
        ids.add(out.stdout.strip())
    assert len(ids) == 1
    dangling = engine.cli("images", "-q", "--filter", "dangling=true", check=True).stdout
    assert dangling == ""
    engine.cli("rmi", "bundled:1", check=True)


def test_network_inspect_lists_only_live_containers(engine: DaemonProcess) -> None:
    engine.cli("network", "create", "habitsnet", check=True)
    created = engine.cli("create", "--network", "habitsnet", "--name", "never-started",
                         "busybox", "true", check=True).stdout.strip()
    running = engine.cli("run", "-d", "--network", "habitsnet", "--name", "live", "busybox",
                         "sleep", "60", check=True).stdout.strip()
    try:
        doc = json.loads(engine.cli("network", "inspect", "habitsnet", check=True).stdout)[0]
        assert sorted(c["Name"] for c in doc["Containers"].values()) == ["live"]
        engine.cli("stop", "-t", "0", running, check=True)
        doc = json.loads(engine.cli("network", "inspect", "habitsnet", check=True).stdout)[0]
        assert doc["Containers"] == {}
    finally:
        engine.cli("rm", "-f", created, running)
        engine.cli("network", "rm", "habitsnet")


def test_init_reaps_zombies_and_forwards_signals(engine: DaemonProcess) -> None:
    def zombies(cid: str) -> list[str]:
        out = engine.cli("exec", cid, "ps", "-o", "stat,comm", check=True).stdout
        return [line for line in out.splitlines()[1:] if line.split()[0].startswith("Z")]

    with_init = engine.cli("run", "-d", "--init", "busybox", "sleep", "600",
                           check=True).stdout.strip()
    without = engine.cli("run", "-d", "busybox", "sleep", "600", check=True).stdout.strip()
    try:
        for cid in (with_init, without):
            # The exec's shell ends at once; its child is orphaned to the container's PID 1.
            engine.cli("exec", cid, "sh", "-c", "sleep 0.3 & exit 0", check=True)
        deadline = time.monotonic() + 20
        while zombies(with_init) or not zombies(without):
            assert time.monotonic() < deadline, (zombies(with_init), zombies(without))
            time.sleep(0.2)
        # stop: tini forwards SIGTERM to sleep (128+15); a bare sleep as PID 1 ignores it and
        # is killed when the timeout ends (128+9).
        engine.cli("stop", "-t", "3", with_init, without, check=True)
        codes = [engine.cli("inspect", "-f", "{{.State.ExitCode}}", c).stdout.strip()
                 for c in (with_init, without)]
        assert codes == ["143", "137"]
    finally:
        engine.cli("rm", "-f", with_init, without)


def test_system_df_verbose(engine: DaemonProcess, box: str) -> None:
    # An image committed from a busybox container shares busybox's layer: docker shows those
    # bytes as its SHARED SIZE, and busybox's own SHARED SIZE becomes the same figure.
    engine.cli("commit", box, "df-shared:v1", check=True)
    try:
        out = engine.cli("system", "df", "-v", check=True).stdout
    finally:
        engine.cli("rmi", "df-shared:v1")
    for section in ("Images space usage:", "Containers space usage:",
                    "Local Volumes space usage:", "Build cache usage: "):
        assert section in out, out
    images = out.split("Containers space usage:")[0]
    assert re.search(r"SIZE\s+SHARED SIZE\s+UNIQUE SIZE\s+CONTAINERS", images), images
    base = re.search(r"^busybox\s+latest\s+[0-9a-f]{12}\s+.+?ago\s+(\S+)\s+(\S+)\s+(\S+)\s+(\d+)$",
                     images, re.M)
    derived = re.search(r"^df-shared\s+v1\s+[0-9a-f]{12}\s+.+?ago\s+(\S+)\s+(\S+)\s+(\S+)\s+",
                        images, re.M)
    assert base and derived, images
    size, shared, _unique, users = base.groups()
    assert shared == size != "0B" and int(users) >= 1, images
    assert derived.group(2) == size, images
    containers = out.split("Local Volumes space usage:")[0].split("Containers space usage:")[1]
    assert re.search(rf"^{box[:12]}\s+busybox\s", containers, re.M), containers
    summary = engine.cli("system", "df", "--format", "{{.Type}}={{.Size}}", check=True).stdout
    cache = dict(line.split("=", 1) for line in summary.splitlines())["Build Cache"]
    assert f"Build cache usage: {cache}" in out, (out, summary)


# ----- with a registry ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def registry() -> Iterator[object]:
    from tests.registry.registryd import start_registry

    reg = start_registry(short_tmpdir("sv-reg-"))
    try:
        yield reg
    finally:
        reg.stop()


def test_search_and_quiet_pull(engine: DaemonProcess, registry: object) -> None:
    host = registry.host  # type: ignore[attr-defined]
    for name in ("team/busybox", "team/other", "solo/busybox-extra"):
        engine.cli("tag", "busybox", f"{host}/{name}", check=True)
        engine.cli("push", "-q", f"{host}/{name}", check=True)
        engine.cli("rmi", f"{host}/{name}", check=True)
    out = engine.cli("search", f"{host}/busy", check=True)
    lines = out.stdout.splitlines()
    assert re.split(r"\s{2,}", lines[0].strip()) == ["NAME", "DESCRIPTION", "STARS", "OFFICIAL"]
    assert sorted(line.split()[0] for line in lines[1:]) == [
        f"{host}/solo/busybox-extra", f"{host}/team/busybox"]
    out = engine.cli("search", "--limit", "1", "--format", "{{.Name}}", f"{host}/busy")
    assert len(out.stdout.splitlines()) == 1
    # -q: no "Unable to find image" and no pull progress, only the container's output.
    out = engine.cli("run", "--rm", "-q", f"{host}/team/other", "echo", "ran")
    assert (out.returncode, out.stdout, out.stderr) == (0, "ran\n", "")
    engine.cli("rmi", f"{host}/team/other", check=True)
    out = engine.cli("run", "--rm", f"{host}/team/other", "echo", "ran")
    assert out.returncode == 0 and "Unable to find image" in out.stderr
    engine.cli("rmi", f"{host}/team/other", check=True)
