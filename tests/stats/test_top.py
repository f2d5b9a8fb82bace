"""``servin top``: the container's processes through the host's ps, and only those."""

from __future__ import annotations

import os

from servin.api.servin.v1 import containers_pb2
from tests.daemon import DaemonProcess
from tests.stats.conftest import cgroup_procs, grpc_client, run_detached


def test_top_lists_the_containers_processes_only(engine: DaemonProcess) -> None:
    cid = run_detached(
        engine, "--name", "family", "busybox", "sh", "-c", "sleep 301 & sleep 302 & wait"
    )
    with grpc_client(engine) as client:
        for _ in range(100):  # until the shell has started both children
            reply = client.containers.Top(containers_pb2.TopRequest(id="family"))
            if len(reply.processes) == 3:
                break
    assert list(reply.titles) == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    pids = {int(row.fields[1]) for row in reply.processes}
    assert pids == cgroup_procs(cid)
    commands = sorted(row.fields[-1] for row in reply.processes)
    assert commands == ["sh -c sleep 301 & sleep 302 & wait", "sleep 301", "sleep 302"]
    assert os.getpid() not in pids and engine.proc is not None and engine.proc.pid not in pids

    # The CLI: the same rows as a table, with ps options passed through.
    out = engine.cli("top", "family", "-o", "pid,comm", check=True).stdout.splitlines()
    assert out[0].split() == ["PID", "COMMAND"]
    rows = [line.split() for line in out[1:]]
    assert {int(pid) for pid, _ in rows} == pids
    assert sorted(comm for _, comm in rows) == ["sh", "sleep", "sleep"]
    bsd = engine.cli("top", "family", "aux", check=True).stdout.splitlines()
    assert bsd[0].split()[:2] == ["USER", "PID"] and len(bsd) == 4
    engine.cli("container", "top", "family", check=True)
    engine.cli("rm", "-f", "family", check=True)


def test_top_refuses_bad_ps_options_with_one_clear_error(engine: DaemonProcess) -> None:
    run_detached(engine, "--name", "target", "busybox", "sleep", "300")
    bad = engine.cli("top", "target", "--no-such-option")
    assert bad.returncode != 0
    assert bad.stdout == ""
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1, bad.stderr
    assert lines[0].startswith("Error: ps --no-such-option failed:"), lines[0]

    no_pid = engine.cli("top", "target", "-o", "comm")
    assert no_pid.returncode != 0
    assert (
        no_pid.stderr.strip() == "Error: ps output has no PID column: include pid in the ps options"
    )
    engine.cli("rm", "-f", "target", check=True)


def test_top_of_a_stopped_or_unknown_container(engine: DaemonProcess) -> None:
    engine.cli("create", "--name", "idle", "busybox", "true", check=True)
    stopped = engine.cli("top", "idle")
    assert stopped.returncode != 0 and "is not running" in stopped.stderr
    unknown = engine.cli("top", "nobody-here")
    assert unknown.returncode != 0 and "No such container: nobody-here" in unknown.stderr
    engine.cli("rm", "idle", check=True)
