"""The real docker CLI (v28, client only) runs a script of container commands through
Servin's docker.sock, each checked for its output and exit code; then the same script runs
against a private Debian dockerd 20.10 in the same test, and the outputs marked
``compare=True`` (exit codes, formatted fields, file contents, normalised as each step says)
must agree between the two daemons."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tarfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.daemon import DaemonProcess, short_tmpdir
from tests.dockerapi.conftest import DOCKER, docker_sock
from tests.interactive.ptyproc import PtyCli

Run = Callable[..., subprocess.CompletedProcess[str]]
HEX64 = re.compile(r"^[0-9a-f]{64}$")


@dataclass
class Target:
    """One daemon the script runs against: its socket, and scratch space on the host."""

    name: str
    socket: Path
    workdir: Path
    docker_config: Path
    results: dict[str, object] = field(default_factory=dict)  # step -> compared value

    def env(self) -> dict[str, str]:
        full = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
        full.update({"DOCKER_CONFIG": str(self.docker_config), "DOCKER_CLI_HINTS": "false",
                     "DOCKER_HOST": f"unix://{self.socket}"})
        return full

    def docker(self, *args: str, input: str | bytes | None = None,
               timeout: float = 60) -> subprocess.CompletedProcess[str]:
        assert DOCKER is not None
        if isinstance(input, bytes):
            raw = subprocess.run([DOCKER, *args], input=input, capture_output=True,
                                 timeout=timeout, env=self.env())
            return subprocess.CompletedProcess(raw.args, raw.returncode,
                                               raw.stdout.decode("utf-8", "replace"),
                                               raw.stderr.decode("utf-8", "replace"))
        return subprocess.run([DOCKER, *args], input=input, capture_output=True, text=True,
                              timeout=timeout, env=self.env())

    def pty(self, *args: str) -> PtyCli:
        assert DOCKER is not None
        return PtyCli("", *args, program=[DOCKER], env={
            "DOCKER_CONFIG": str(self.docker_config), "DOCKER_CLI_HINTS": "false",
            "DOCKER_HOST": f"unix://{self.socket}"})


def ok(r: subprocess.CompletedProcess[str]) -> str:
    assert r.returncode == 0, f"{r.args}: {r.returncode} {r.stderr}"
    return r.stdout


def eventually(check: Callable[[], bool], what: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def run_script(t: Target, *, publish: bool) -> None:
    """The script: every step asserts on the output; ``t.results`` keeps what is compared
    between daemons (``publish``: -p needs a bridge, which the private dockerd lacks)."""
    d = t.docker
    r = t.results
    data = t.workdir / "data"
    data.mkdir()
    (data / "in.txt").write_text("from the host\n")

    # run --rm, exit codes, -e, -v
    out = d("run", "--rm", "busybox", "echo", "hello")
    assert (out.returncode, out.stdout) == (0, "hello\n"), out.stderr
    r["run --rm"] = (out.returncode, out.stdout)
    out = d("run", "--name", "ex", "busybox", "sh", "-c", "echo out; echo err >&2; exit 7")
    assert (out.returncode, out.stdout, out.stderr) == (7, "out\n", "err\n")
    r["run exit code"] = (out.returncode, out.stdout, out.stderr)
    out = d("run", "--rm", "-e", "FOO=bar", "busybox", "sh", "-c", "echo $FOO")
    assert ok(out) == "bar\n"
    r["run -e"] = out.stdout
    out = d("run", "--rm", "-v", f"{data}:/data", "busybox", "sh", "-c",
            "cat /data/in.txt; echo written > /data/out.txt")
    assert ok(out) == "from the host\n"
    assert (data / "out.txt").read_text() == "written\n"
    r["run -v"] = (out.stdout, (data / "out.txt").read_text())
    out = d("run", "--rm", "--network", "none", "busybox", "sh", "-c",
            "grep -c : /proc/net/dev")
    assert ok(out) == "1\n"  # only lo
    r["run --network none"] = out.stdout
    out = d("run", "--name", "ex", "busybox", "true")
    assert out.returncode == 125 and "is already in use" in out.stderr, out.stderr
    r["run name conflict"] = out.returncode

    # run -d with limits and a restart policy; inspect -f
    out = d("run", "-d", "--name", "web", "--restart", "on-failure:3", "-m", "64m", "--cpus",
            "0.5", "busybox", "sh", "-c", "echo started; while true; do echo tick; sleep 0.2; "
            "done")
    assert HEX64.match(ok(out).strip()), out.stdout
    r["run -d"] = bool(HEX64.match(out.stdout.strip()))
    fmt = ("{{.State.Running}} {{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} "
           "{{.HostConfig.RestartPolicy.Name}} {{.HostConfig.RestartPolicy.MaximumRetryCount}}")
    out = d("inspect", "-f", fmt, "web")
    assert ok(out) == "true 67108864 500000000 on-failure 3\n"
    r["inspect -f"] = out.stdout
    out = d("run", "-d", "--name", "lab", "--label", "team=a", "busybox", "sleep", "300")
    ok(out)

    # ps in all its forms
    out = d("ps", "--format", "{{.Names}}")
    assert sorted(ok(out).split()) == ["lab", "web"]
    r["ps"] = sorted(out.stdout.split())
    out = d("ps", "-a", "--format", "{{.Names}} {{.State}}")
    assert sorted(ok(out).splitlines()) == ["ex exited", "lab running", "web running"]
    r["ps -a"] = sorted(out.stdout.splitlines())
    out = d("ps", "-q")
    assert len(ok(out).split()) == 2 and all(re.fullmatch(r"[0-9a-f]{12}", x)
                                             for x in out.stdout.split())
    r["ps -q"] = len(out.stdout.split())
    out = d("ps", "-a", "--filter", "status=exited", "--format", "{{.Names}}")
    assert ok(out) == "ex\n"
    r["ps --filter status"] = out.stdout
    out = d("ps", "-a", "--filter", "exited=7", "--format", "{{.Names}}")
    assert ok(out) == "ex\n"
    r["ps --filter exited"] = out.stdout
    out = d("ps", "--filter", "name=^/we", "--format", "{{.Names}}")
    assert ok(out) == "web\n"
    r["ps --filter name"] = out.stdout
    out = d("ps", "--filter", "label=team=a", "--format", '{{.Names}} {{.Label "team"}}')
    assert ok(out) == "lab a\n"
    r["ps --filter label"] = out.stdout
    out = d("ps", "-l", "--format", "{{.Names}} {{.Image}}")
    assert ok(out) == "lab busybox\n"
    r["ps -l"] = out.stdout
    out = d("ps", "-a", "-n", "2", "-q")
    assert len(ok(out).split()) == 2
    r["ps -n"] = len(out.stdout.split())
    out = d("ps", "-a", "--no-trunc", "--filter", "name=ex", "--format", "{{.Command}}")
    assert ok(out) == '"sh -c \'echo out; echo err >&2; exit 7\'"\n'
    r["ps --no-trunc command"] = out.stdout

    # logs
    out = d("logs", "ex")
    assert (ok(out), out.stderr) == ("out\n", "err\n")
    r["logs"] = (out.stdout, out.stderr)
    out = d("logs", "-f", "ex")  # an exited container: follow ends at once
    assert ok(out) == "out\n"
    r["logs -f (exited)"] = out.stdout
    out = d("logs", "--since", "2099-01-01T00:00:00", "ex")
    assert (ok(out), out.stderr) == ("", "")
    r["logs --since future"] = out.stdout
    out = d("logs", "--since", "1h", "ex")
    assert ok(out) == "out\n"
    r["logs --since 1h"] = out.stdout
    eventually(lambda: d("logs", "web").stdout.count("tick") >= 3, "web ticks")
    out = d("logs", "--tail", "2", "web")
    assert ok(out) == "tick\ntick\n"
    r["logs --tail"] = out.stdout
    out = d("logs", "-t", "--tail", "1", "web")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z tick\n", ok(out)), out.stdout
    r["logs -t"] = "ok"
    follow = subprocess.Popen([DOCKER or "docker", "logs", "-f", "--tail", "1", "web"],
                              stdout=subprocess.PIPE, env=t.env())
    try:
        assert follow.stdout is not None
        lines = [follow.stdout.readline() for _ in range(3)]  # the tail, then new lines
        assert lines == [b"tick\n"] * 3
        r["logs -f --tail"] = lines
    finally:
        follow.kill()
        follow.wait()

    # exec
    out = d("exec", "web", "sh", "-c", "echo $((6*7))")
    assert ok(out) == "42\n"
    r["exec"] = out.stdout
    out = d("exec", "web", "sh", "-c", "echo to-err >&2; exit 3")
    assert (out.returncode, out.stderr) == (3, "to-err\n")
    r["exec exit code"] = (out.returncode, out.stderr)
    blob = os.urandom(1536 * 1024)
    out = d("exec", "-i", "web", "md5sum", input=blob)
    assert ok(out).split()[0] == hashlib.md5(blob).hexdigest()
    r["exec -i 1.5 MB"] = out.stdout.split()[0] == hashlib.md5(blob).hexdigest()
    out = d("exec", "-d", "web", "sh", "-c", "sleep 0.2; echo detached > /tmp/flag")
    assert ok(out) == ""
    eventually(lambda: d("exec", "web", "cat", "/tmp/flag").stdout == "detached\n",
               "exec -d ran")
    r["exec -d"] = "detached"
    out = d("exec", "web", "nosuchcommand")
    assert out.returncode in (126, 127), (out.returncode, out.stderr)
    r["exec missing command"] = out.returncode != 0

    # terminals: run -it, exec -it, attach with detach keys
    p = t.pty("run", "-it", "--rm", "busybox", "sh")
    try:
        p.read_until(r"# ")
        p.send(b"tty; echo $((6*7))\r")
        p.read_until(r"/dev/pts/\d+\r\n42")
        p.send(b"exit 5\r")
        r["run -it"] = p.wait()
        assert r["run -it"] == 5, bytes(p.output)
    finally:
        p.close()
    p = t.pty("exec", "-it", "web", "sh")
    try:
        p.read_until(r"# ")
        p.send(b"echo $((7*7))\r")
        p.read_until(r"49")
        p.send(b"exit 4\r")
        r["exec -it"] = p.wait()
        assert r["exec -it"] == 4, bytes(p.output)
    finally:
        p.close()
    ok(d("run", "-dit", "--name", "att", "busybox", "sh"))
    for keys, typed in (("ctrl-x,x", b"\x18x"), ("", b"\x10\x11")):
        args = ["attach", *(["--detach-keys", keys] if keys else []), "att"]
        p = t.pty(*args)
        try:
            time.sleep(0.3)  # the attach is in place before we type
            p.send(b"echo $((8*8))\r")
            p.read_until(r"64")
            p.send(typed)
            p.read_until(r"read escape sequence")
            code = p.wait()
        finally:
            p.close()
        r[f"attach detach {keys or 'default'}"] = code
    out = d("inspect", "-f", "{{.State.Running}}", "att")
    assert ok(out) == "true\n"  # detaching leaves it running
    r["attach leaves running"] = out.stdout

    # files: cp both ways, diff, export
    (t.workdir / "up.txt").write_text("copied in\n")
    ok(d("cp", str(t.workdir / "up.txt"), "web:/tmp/"))
    out = d("exec", "web", "cat", "/tmp/up.txt")
    assert ok(out) == "copied in\n"
    r["cp to container"] = out.stdout
    ok(d("exec", "web", "sh", "-c", "mkdir -p /srv/dir && echo inner > /srv/dir/f"))
    ok(d("cp", "web:/srv/dir", str(t.workdir / "got")))
    assert (t.workdir / "got" / "f").read_text() == "inner\n"
    r["cp from container"] = (t.workdir / "got" / "f").read_text()
    out = d("cp", "web:/nonexistent", str(t.workdir / "x"))
    assert out.returncode == 1 and "Could not find the file" in out.stderr, out.stderr
    r["cp missing path"] = out.returncode
    out = d("diff", "web")
    assert "A /srv/dir/f" in ok(out).splitlines() and "C /tmp" in out.stdout.splitlines()
    r["diff"] = sorted(line for line in out.stdout.splitlines() if "/srv" in line)
    exported = t.workdir / "web.tar"
    ok(d("export", "-o", str(exported), "web"))
    with tarfile.open(exported) as tar:
        names = set(tar.getnames())
    assert {"bin/busybox", "srv/dir/f"} <= names
    r["export"] = {"bin/busybox", "srv/dir/f"} <= names

    # stats, top
    out = d("stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}} {{.MemUsage}}", "web")
    name, pids, mem = ok(out).split(" ", 2)
    assert name == "web" and int(pids) >= 1 and "/ 64MiB" in mem, out.stdout
    r["stats --no-stream"] = (name, mem.split("/ ")[1].strip())
    out = d("top", "web")
    assert "PID" in ok(out).splitlines()[0] and "sleep" in out.stdout
    r["top"] = "sleep" in out.stdout
    out = d("top", "web", "-o", "pid,comm")
    assert ok(out).split()[:2] == ["PID", "COMMAND"]
    r["top ps_args"] = out.stdout.split()[:2]

    # rename, update, pause/unpause, kill -s, wait, restart
    ok(d("rename", "lab", "lab2"))
    out = d("ps", "--filter", "label=team", "--format", "{{.Names}}")
    assert ok(out) == "lab2\n"
    r["rename"] = out.stdout
    out = d("rename", "lab2", "web")
    assert out.returncode == 1 and "already in use" in out.stderr
    r["rename conflict"] = out.returncode
    ok(d("update", "-m", "128m", "--cpus", "1", "--restart", "always", "web"))
    out = d("inspect", "-f", "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} "
            "{{.HostConfig.RestartPolicy.Name}}", "web")
    assert ok(out) == "134217728 1000000000 always\n"
    r["update"] = out.stdout
    ok(d("pause", "web"))
    out = d("inspect", "-f", "{{.State.Status}} {{.State.Paused}}", "web")
    assert ok(out) == "paused true\n"
    r["pause"] = out.stdout
    out = d("exec", "web", "true")
    assert out.returncode != 0 and "paused" in out.stderr
    r["exec in paused"] = out.returncode != 0
    ok(d("unpause", "web"))
    out = d("inspect", "-f", "{{.State.Status}}", "web")
    assert ok(out) == "running\n"
    r["unpause"] = out.stdout
    ok(d("run", "-d", "--name", "trap", "busybox", "sh", "-c",
         "trap 'echo got USR1; exit 9' USR1; echo ready; while true; do sleep 0.1; done"))
    eventually(lambda: "ready" in d("logs", "trap").stdout, "trap ready")
    ok(d("kill", "-s", "USR1", "trap"))
    out = d("wait", "trap")
    assert ok(out) == "9\n"
    r["kill -s + wait"] = out.stdout
    assert d("logs", "trap").stdout == "ready\ngot USR1\n"
    out = d("wait", "ex")
    assert ok(out) == "7\n"
    r["wait exited"] = out.stdout
    out = d("kill", "ex")
    assert out.returncode == 1 and "is not running" in out.stderr
    r["kill not running"] = out.returncode
    ok(d("restart", "-t", "1", "att"))
    out = d("inspect", "-f", "{{.State.Running}} {{.RestartCount}}", "att")
    assert ok(out) == "true 0\n"
    r["restart"] = out.stdout
    ok(d("stop", "-t", "1", "att"))
    out = d("inspect", "-f", "{{.State.Status}}", "att")
    assert ok(out) == "exited\n"
    r["stop"] = out.stdout
    ok(d("start", "att"))
    out = d("inspect", "-f", "{{.State.Status}}", "att")
    assert ok(out) == "running\n"
    r["start"] = out.stdout

    if publish:
        out = d("run", "-d", "--name", "pub", "-p", "127.0.0.1::8080", "busybox", "sleep", "60")
        ok(out)
        port = ok(d("port", "pub", "8080/tcp")).strip()
        assert re.fullmatch(r"127\.0\.0\.1:\d+", port), port
        out = d("ps", "--filter", "name=pub", "--format", "{{.Ports}}")
        assert ok(out).strip() == f"{port}->8080/tcp"
        ok(d("rm", "-f", "pub"))

    # rm, prune, errors
    out = d("rm", "web")
    assert out.returncode == 1 and "cannot remove a running container" in out.stderr.lower()
    r["rm running"] = out.returncode
    out = d("rm", "-f", "web", "lab2", "att")
    assert ok(out).split() == ["web", "lab2", "att"]
    r["rm -f"] = out.stdout
    out = d("container", "prune", "-f")
    assert ok(out).startswith("Deleted Containers:") and len(out.stdout.splitlines()) >= 3
    r["container prune"] = out.stdout.splitlines()[0]
    out = d("ps", "-aq")
    assert ok(out) == ""
    r["ps -aq after"] = out.stdout
    out = d("inspect", "nosuch")
    assert out.returncode == 1 and "No such object: nosuch" in out.stderr
    r["inspect missing"] = (out.returncode, out.stderr.strip())
    out = d("logs", "nosuch")
    assert out.returncode == 1 and "No such container: nosuch" in out.stderr
    r["logs missing"] = (out.returncode, out.stderr.strip())


@pytest.fixture
def workdir() -> Iterator[Path]:
    path = short_tmpdir("sv-dcli-")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_docker_cli_script_servin_and_dockerd(engine: DaemonProcess, docker_config: Path,
                                              workdir: Path) -> None:
    if DOCKER is None:
        pytest.fail("the docker CLI (v28, client only) is needed in /usr/local/bin")
    servin = Target("servin", docker_sock(engine), workdir / "servin", docker_config)
    servin.workdir.mkdir()
    run_script(servin, publish=True)
    assert len(servin.results) >= 40

    # The same script against Debian's dockerd 20.10, private to this test.
    if shutil.which("dockerd") is None:
        pytest.skip("dockerd (Debian docker.io) is not installed: compared nothing")
    from bench.peers import DockerPeer

    peer = DockerPeer(short_tmpdir("sv-dpeer-"))
    try:
        peer.start()
        from servin.devtools.busybox import write_rootfs  # the busybox the engine has

        tar = workdir / "busybox.tar"
        write_rootfs(tar)
        peer.import_busybox(tar)
        other = Target("dockerd", peer.socket, workdir / "dockerd", docker_config)
        other.workdir.mkdir()
        run_script(other, publish=False)
    finally:
        peer.stop()
    differ = {k: (servin.results[k], other.results.get(k)) for k in servin.results
              if servin.results[k] != other.results.get(k)}
    assert not differ, f"outputs that differ from dockerd's: {differ}"
