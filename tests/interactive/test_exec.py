"""``servin exec`` against a real daemon: namespaces, identity, security, exit codes, events."""

from __future__ import annotations

import json
import os
import statistics
import time

import pytest

from tests.daemon import DaemonProcess

RUNTIMES = ["native", "runc"]


def run_detached(engine: DaemonProcess, *args: str) -> str:
    return engine.cli("run", "-d", *args, check=True).stdout.strip()


def init_pid(engine: DaemonProcess, cid: str) -> int:
    out = engine.cli("inspect", "-f", "{{.State.Pid}}", cid, check=True).stdout.strip()
    return int(out)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_exec_sees_pid_namespace_hostname_and_returns_exit_code(
    engine: DaemonProcess, runtime: str
) -> None:
    cid = run_detached(engine, "--runtime", runtime, "--hostname", f"box-{runtime}", "busybox",
                       "sleep", "300")
    try:
        host_ns = os.readlink(f"/proc/{init_pid(engine, cid)}/ns/pid")
        r = engine.cli("exec", cid, "sh", "-c",
                       "hostname; echo $$; readlink /proc/self/ns/pid; ps -o pid,comm; exit 42")
        assert r.returncode == 42, r.stderr
        lines = r.stdout.splitlines()
        assert lines[0] == f"box-{runtime}"
        assert 1 < int(lines[1]) < 50  # a small pid: the container's own numbering
        assert lines[2] == host_ns  # the very PID namespace of the container's init
        assert any(line.split() == ["1", "sleep"] for line in lines[3:]), lines
        assert r.stderr == ""
    finally:
        engine.cli("rm", "-f", cid)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_exec_runs_as_container_user_and_with_u(engine: DaemonProcess, runtime: str) -> None:
    cid = run_detached(engine, "--runtime", runtime, "-u", "nobody", "busybox", "sleep", "300")
    try:
        r = engine.cli("exec", cid, "id", check=True)
        # docker lists the primary group among the supplementary ones (moby getUser)
        assert r.stdout.strip() == "uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)"
        r = engine.cli("exec", "-u", "user", cid, "sh", "-c", "id -u; id -g; echo $HOME",
                       check=True)
        assert r.stdout.split() == ["1000", "1000", "/home/user"]
        r = engine.cli("exec", "-u", "0:10", cid, "id", check=True)
        assert r.stdout.startswith("uid=0(root) gid=10(wheel)")
    finally:
        engine.cli("rm", "-f", cid)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_exec_has_the_containers_security_and_cgroup(engine: DaemonProcess, runtime: str) -> None:
    cid = run_detached(engine, "--runtime", runtime, "--cap-drop", "NET_RAW", "busybox",
                       "sleep", "300")
    try:
        pid = init_pid(engine, cid)
        with open(f"/proc/{pid}/status") as f:
            init_status = dict(line.split(":\t", 1) for line in f.read().splitlines())
        r = engine.cli("exec", cid, "sh", "-c",
                       "cat /proc/self/status; echo ---; cat /proc/self/cgroup; echo ---;"
                       " cat /proc/1/cgroup; echo ---; for n in net ipc mnt uts cgroup; do"
                       " readlink /proc/self/ns/$n; readlink /proc/1/ns/$n; done",
                       check=True)
        status_text, own_cgroup, init_cgroup, links = r.stdout.split("---\n")
        status = dict(line.split(":\t", 1) for line in status_text.splitlines() if ":\t" in line)
        for key in ("CapEff", "CapPrm", "CapBnd", "NoNewPrivs", "Seccomp"):
            assert status[key] == init_status[key], key
        assert int(status["CapBnd"], 16) & (1 << 13) == 0  # NET_RAW dropped, as in the init
        assert init_status["Seccomp"].strip() == "2"  # the default profile is a filter
        assert own_cgroup == init_cgroup and own_cgroup.strip()
        ns = links.split()
        assert len(ns) == 10 and ns[0::2] == ns[1::2], ns  # the init's very namespaces
        r = engine.cli("exec", "--privileged", cid, "grep", "CapEff", "/proc/self/status",
                       check=True)
        assert int(r.stdout.split()[1], 16) & (1 << 21)  # CAP_SYS_ADMIN with --privileged
    finally:
        engine.cli("rm", "-f", cid)


def test_exec_streams_env_workdir_stdin_and_detach(engine: DaemonProcess, tmp_path) -> None:
    cid = run_detached(engine, "-e", "KEEP=1", "-e", "OVER=old", "busybox", "sleep", "300")
    try:
        r = engine.cli("exec", cid, "sh", "-c", "echo out; echo err >&2")
        assert (r.stdout, r.stderr) == ("out\n", "err\n")  # separate without -t
        env_file = tmp_path / "env"
        env_file.write_text("# comment\nFROMFILE=yes\n")
        r = engine.cli("exec", "-w", "/etc", "-e", "OVER=new", "--env-file", str(env_file),
                       cid, "sh", "-c", "pwd; echo $KEEP $OVER $FROMFILE", check=True)
        assert r.stdout == "/etc\n1 new yes\n"
        r = engine.cli("exec", "-i", cid, "sh", "-c", "tr a-z A-Z; echo done",
                       input=b"piped through stdin\n", check=True)
        assert r.stdout == "PIPED THROUGH STDIN\ndone\n"
        r = engine.cli("exec", "-d", cid, "sh", "-c", "sleep 0.2; echo later > /tmp/marker",
                       check=True)
        assert r.stdout == ""
        deadline = time.monotonic() + 10
        while engine.cli("exec", cid, "cat", "/tmp/marker").stdout != "later\n":
            assert time.monotonic() < deadline, "the detached exec did not run"
            time.sleep(0.1)
    finally:
        engine.cli("rm", "-f", cid)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_exec_errors_are_one_clear_line(engine: DaemonProcess, runtime: str) -> None:
    cid = run_detached(engine, "--runtime", runtime, "busybox", "sleep", "300")
    try:
        r = engine.cli("exec", cid, "no-such-command", "arg")
        assert r.returncode == 127
        assert r.stdout == ""
        assert len(r.stderr.splitlines()) == 1 and "no-such-command" in r.stderr, r.stderr
        r = engine.cli("exec", cid, "/etc")  # a directory: cannot be invoked
        assert r.returncode == 126, r.stderr
        assert len(r.stderr.splitlines()) == 1
        engine.cli("stop", "-t", "0", cid, check=True)
        r = engine.cli("exec", cid, "true")
        assert r.returncode == 1
        assert r.stderr.splitlines() == [f"Error: container {cid} is not running"]
    finally:
        engine.cli("rm", "-f", cid)


def test_exec_events_and_inspect(engine: DaemonProcess) -> None:
    from servin.api.servin.v1 import containers_pb2, system_pb2
    from servin.client.sync import Client

    cid = run_detached(engine, "busybox", "sleep", "300")
    try:
        with Client(engine.host) as client:
            since = system_pb2.EventsRequest().since
            since.FromNanoseconds(time.time_ns() - 1_000_000)
            created = client.containers.ExecCreate(containers_pb2.ExecCreateRequest(
                container_id=cid, cmd=["sh", "-c", "exit 9"], attach_stdout=True))
            out = list(client.containers.ExecStart(
                iter([containers_pb2.ExecInput(exec_id=created.id)])))
            assert out[-1].exited and out[-1].exit_code == 9
            detail = client.containers.ExecInspect(
                containers_pb2.ExecInspectRequest(exec_id=created.id))
            assert (detail.running, detail.exit_code, detail.container_id) == (False, 9, cid)
            assert list(detail.cmd) == ["sh", "-c", "exit 9"] and detail.pid > 0
            until = system_pb2.EventsRequest().until
            until.FromNanoseconds(time.time_ns())
            events = [e for e in client.system.Events(system_pb2.EventsRequest(
                since=since, until=until)) if e.attributes.get("execID") == created.id]
        assert [e.action.split(":")[0] for e in events] == ["exec_create", "exec_start",
                                                            "exec_die"]
        assert events[0].action == "exec_create: sh -c exit 9"
        assert events[2].attributes["exitCode"] == "9" and events[2].id == cid
    finally:
        engine.cli("rm", "-f", cid)


def test_exec_created_and_started_in_one_call(engine: DaemonProcess) -> None:
    """ExecStart whose first message carries the create request: one round trip."""
    from servin.api.servin.v1 import containers_pb2
    from servin.client.sync import Client
    from servin.errors import InvalidArgument, NotFound

    cid = run_detached(engine, "-e", "KEEP=1", "busybox", "sleep", "300")
    try:
        with Client(engine.host) as client:
            create = containers_pb2.ExecCreateRequest(
                container_id=cid, cmd=["sh", "-c", "tr a-z A-Z; echo $KEEP $EXTRA >&2; exit 5"],
                env=["EXTRA=2"], attach_stdin=True, attach_stdout=True, attach_stderr=True)
            out = list(client.containers.ExecStart(iter([
                containers_pb2.ExecInput(create=create),
                containers_pb2.ExecInput(data=b"hello\n"),
                containers_pb2.ExecInput(close_stdin=True)])))
            streams: dict[int, bytes] = {1: b"", 2: b""}
            for o in out[:-1]:
                streams[o.stream] += o.data
            assert streams == {1: b"HELLO\n", 2: b"1 2\n"}
            assert out[-1].exited and out[-1].exit_code == 5
            # Bad input: one clear error, nothing started.
            with pytest.raises(InvalidArgument):
                list(client.containers.ExecStart(iter([containers_pb2.ExecInput(
                    exec_id="abc", create=containers_pb2.ExecCreateRequest(
                        container_id=cid, cmd=["true"]))])))
            with pytest.raises(NotFound):
                list(client.containers.ExecStart(iter([containers_pb2.ExecInput(
                    create=containers_pb2.ExecCreateRequest(container_id="no-such-container",
                                                            cmd=["true"]))])))
            with pytest.raises(InvalidArgument):
                list(client.containers.ExecStart(iter([containers_pb2.ExecInput(
                    create=containers_pb2.ExecCreateRequest(container_id=cid))])))
    finally:
        engine.cli("rm", "-f", cid)


def test_exec_latency(engine: DaemonProcess) -> None:
    """ExecCreate + ExecStart of `true`, through the API; printed for the record."""
    from servin.api.servin.v1 import containers_pb2
    from servin.client.sync import Client

    cid = run_detached(engine, "busybox", "sleep", "300")
    try:
        with Client(engine.host) as client:
            samples = []
            for _ in range(20):
                t = time.perf_counter()
                created = client.containers.ExecCreate(containers_pb2.ExecCreateRequest(
                    container_id=cid, cmd=["true"], attach_stdout=True))
                out = list(client.containers.ExecStart(
                    iter([containers_pb2.ExecInput(exec_id=created.id)])))
                samples.append(time.perf_counter() - t)
                assert out[-1].exited and out[-1].exit_code == 0
        median = statistics.median(samples)
        print(json.dumps({"exec_median_ms": round(median * 1000, 1),
                          "exec_max_ms": round(max(samples) * 1000, 1)}))
        assert median < 1.0
    finally:
        engine.cli("rm", "-f", cid)
