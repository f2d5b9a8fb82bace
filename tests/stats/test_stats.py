"""``servin stats`` and Containers.Stats against a real daemon and real containers."""

from __future__ import annotations

import itertools
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from servin.api.servin.v1 import containers_pb2
from tests.daemon import REPO, DaemonProcess
from tests.stats.conftest import (
    container_pid,
    grpc_client,
    run_detached,
    stats_json,
)

MB = 1_000_000


def _percent(text: str) -> float:
    assert text.endswith("%"), text
    return float(text[:-1])


def _batches(engine: DaemonProcess, count: int, **request: object) -> list[object]:
    """The first ``count`` batches of a Stats stream."""
    got = []
    with grpc_client(engine) as client:
        stream = client.containers.Stats(containers_pb2.StatsRequest(**request))  # type: ignore[arg-type]
        for batch in stream:
            got.append(batch)
            if len(got) == count:
                break
    return got


def _wait_for_log(engine: DaemonProcess, name: str, text: str, tries: int = 300) -> None:
    for _ in range(tries):
        if text in engine.cli("logs", name).stdout:
            return
        time.sleep(0.1)
    raise AssertionError(f"{name} never logged {text!r}: {engine.cli('logs', name).stdout!r}")


def test_cpu_spinner_shows_about_one_core(engine: DaemonProcess) -> None:
    cid = run_detached(engine, "--name", "spinner", "busybox", "sh", "-c", "while :; do :; done")
    idle = run_detached(engine, "--name", "idler", "busybox", "sleep", "300")
    batches = _batches(engine, 3, ids=[cid, idle], stream=True, interval_ms=1000)
    spins = [next(s for s in b.stats if s.id == cid) for b in batches]  # type: ignore[attr-defined]
    idles = [next(s for s in b.stats if s.id == idle) for b in batches]  # type: ignore[attr-defined]
    # A busy machine (other tests, other daemons) takes CPU from the spinner, so "one core" is
    # not a fixed number: compare each figure with the share the spinner really got in the
    # window, from its own CPU counter and the samples' timestamps (docker's formula divides
    # by all cores' time and multiplies by their count: that is the share of one core).
    for before, after in itertools.pairwise(spins[1:]):
        wall_ns = after.read.ToNanoseconds() - before.read.ToNanoseconds()
        share = 100.0 * (after.cpu_total_ns - before.cpu_total_ns) / wall_ns
        assert share > 5.0, share
        assert abs(after.cpu_percent - share) <= 5.0 + 0.25 * share, (after.cpu_percent, share)
        assert after.cpu_percent <= 100.0 * after.online_cpus + 5.0
    assert all(s.cpu_percent < 20.0 for s in idles[1:]), [s.cpu_percent for s in idles]
    assert spins[-1].cpu_total_ns > spins[0].cpu_total_ns
    assert spins[-1].online_cpus == os.cpu_count()
    # The CLI's one-shot answer measures too (it never reports the baseline's zero).
    row = stats_json(engine, "spinner")[0]
    assert row["Name"] == "spinner" and row["ID"] == cid[:12] and row["Container"] == "spinner"
    assert _percent(row["CPUPerc"]) > 5.0, row
    engine.cli("rm", "-f", "spinner", "idler", check=True)


def test_memory_held_by_a_process_is_counted(engine: DaemonProcess) -> None:
    # The shell keeps ~27 MB of base64 text in a variable; the trailing echo stops it from
    # exec'ing sleep (which would drop the variable).
    script = "x=$(head -c 20000000 /dev/urandom | base64); echo ready; sleep 300; echo ${#x}"
    run_detached(engine, "--name", "holder", "-m", "256m", "busybox", "sh", "-c", script)
    run_detached(engine, "--name", "small", "busybox", "sleep", "300")
    _wait_for_log(engine, "holder", "ready")
    # It really holds the memory: the shell's resident set is above 20 MB.
    status = Path(f"/proc/{container_pid(engine, 'holder')}/status").read_text()
    rss_kb = int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1))  # type: ignore[union-attr]
    assert rss_kb * 1024 >= 20 * MB, status

    (holder,) = _batches(engine, 1, ids=["holder"], stream=False)[0].stats  # type: ignore[attr-defined]
    assert holder.memory_usage >= 20 * MB, holder
    assert holder.memory_limit == 256 * 1024 * 1024
    assert abs(holder.memory_percent - holder.memory_usage / holder.memory_limit * 100) < 1e-6
    assert holder.pids == 2  # the shell and its sleep

    (small,) = _batches(engine, 1, ids=["small"], stream=False)[0].stats  # type: ignore[attr-defined]
    assert small.memory_usage < 5 * MB, small
    # No limit: the host's memory is the limit, as docker shows it.
    assert small.memory_limit == os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")

    row = stats_json(engine, "holder")[0]
    usage, limit = row["MemUsage"].split(" / ")
    assert limit == "256MiB"
    assert usage.endswith("MiB") and float(usage[:-3]) >= 19.0, row
    engine.cli("rm", "-f", "holder", "small", check=True)


def test_network_counters_skip_lo_and_the_host_network(engine: DaemonProcess) -> None:
    # Traffic on the container's own loopback (its only interface with --network none).
    cid = run_detached(
        engine,
        "--name",
        "pinger",
        "--network",
        "none",
        "--cap-add",
        "NET_ADMIN",  # to bring lo up
        "busybox",
        "sh",
        "-c",
        "ip link set lo up; ping -c 3 -i 0.2 127.0.0.1; echo pinged; sleep 300",
    )
    host = run_detached(engine, "--name", "hostnet", "--network", "host", "busybox", "sleep", "300")
    _wait_for_log(engine, "pinger", "pinged")
    lo = Path(f"/proc/{container_pid(engine, 'pinger')}/net/dev").read_text()
    lo_rx = int(re.search(r"lo:\s*(\d+)", lo).group(1))  # type: ignore[union-attr]
    assert lo_rx > 0, lo  # the loopback really carried traffic
    host_dev = Path("/proc/self/net/dev").read_text().splitlines()[2:]
    host_rx = sum(
        int(ln.split(":")[1].split()[0]) for ln in host_dev if ln.split(":")[0].strip() != "lo"
    )
    assert host_rx > 0, "the host's interfaces carried no traffic: cannot check --network host"

    batch = _batches(engine, 1, ids=[cid, host], stream=False)[0]
    by_id = {s.id: s for s in batch.stats}  # type: ignore[attr-defined]
    assert by_id[cid].net_rx == 0 and by_id[cid].net_tx == 0
    assert by_id[host].net_rx == 0 and by_id[host].net_tx == 0
    rows = {r["Name"]: r for r in stats_json(engine, "pinger", "hostnet")}
    assert rows["pinger"]["NetIO"] == "0B / 0B"
    assert rows["hostnet"]["NetIO"] == "0B / 0B"
    engine.cli("rm", "-f", "pinger", "hostnet", check=True)


def test_named_stopped_and_unknown_containers(engine: DaemonProcess) -> None:
    engine.cli("create", "--name", "dormant", "busybox", "true", check=True)
    (row,) = stats_json(engine, "dormant")
    assert row["Name"] == "dormant"
    assert row["CPUPerc"] == "0.00%" and row["PIDs"] == "0" and row["MemUsage"] == "0B / 0B"
    missing = engine.cli("stats", "--no-stream", "no-such-thing")
    assert missing.returncode != 0
    assert "No such container: no-such-thing" in missing.stderr
    assert missing.stderr.count("\n") == 1, missing.stderr
    # -a lists the created container among all of them.
    names = engine.cli("stats", "-a", "--no-stream", "--format", "{{.Name}}", check=True).stdout
    assert "dormant" in names.split()
    engine.cli("rm", "dormant", check=True)


def test_no_stream_over_fifty_containers_answers_in_one_call(
    daemon: DaemonProcess, busybox_image: str
) -> None:
    names = [f"many{i:02d}" for i in range(50)]
    with grpc_client(daemon) as client:

        def start(name: str) -> None:
            spec = containers_pb2.ContainerSpec(image="busybox", cmd=["sleep", "600"])
            made = client.containers.Create(
                containers_pb2.CreateContainerRequest(name=name, spec=spec)
            )
            client.containers.Start(containers_pb2.StartContainerRequest(id=made.id))

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(start, names))
        batches = list(client.containers.Stats(containers_pb2.StatsRequest(stream=False)))
    assert len(batches) == 1
    assert sorted(s.name for s in batches[0].stats) == names
    assert all(s.pids == 1 and s.memory_usage > 0 for s in batches[0].stats)

    table = daemon.cli("stats", "--no-stream", check=True).stdout.splitlines()
    assert table[0].split() == [
        "CONTAINER", "ID", "NAME", "CPU", "%", "MEM", "USAGE", "/", "LIMIT",
        "MEM", "%", "NET", "I/O", "BLOCK", "I/O", "PIDS",
    ]  # fmt: skip
    assert len(table) == 51
    assert sorted(line.split()[1] for line in table[1:]) == names
    assert "\x1b" not in "".join(table)  # a pipe gets no terminal codes


def test_stream_includes_containers_started_after_subscribing(engine: DaemonProcess) -> None:
    run_detached(engine, "--name", "early", "busybox", "sleep", "300")
    seen: list[set[str]] = []
    reads: list[int] = []
    late_id = ""
    with grpc_client(engine) as client:
        stream = client.containers.Stats(containers_pb2.StatsRequest(stream=True, interval_ms=300))
        for batch in stream:
            seen.append({s.name for s in batch.stats})
            reads.append(max(s.read.ToNanoseconds() for s in batch.stats))
            if len(seen) == 2:
                late_id = run_detached(engine, "--name", "late", "busybox", "sleep", "300")
            if "late" in seen[-1] or len(seen) == 40:
                break
    assert "early" in seen[0] and "late" not in seen[0]
    assert "late" in seen[-1], seen
    assert reads == sorted(reads) and len(set(reads)) == len(reads)  # a new pass each time
    assert late_id
    engine.cli("rm", "-f", "early", "late", check=True)


def test_stream_in_a_pipe_prints_plain_tables(engine: DaemonProcess) -> None:
    run_detached(engine, "--name", "piped", "busybox", "sleep", "300")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "servin",
            "-H",
            engine.host,
            "stats",
            "--format",
            "{{.Name}} {{.PIDs}}",
            "piped",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=REPO,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline().decode() for _ in range(3)]
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
    assert lines == ["piped 1\n"] * 3  # one line per frame: a stream, plainly
    engine.cli("rm", "-f", "piped", check=True)


def test_stream_on_a_terminal_redraws_in_place(engine: DaemonProcess) -> None:
    run_detached(engine, "--name", "watched", "busybox", "sleep", "300")
    pid, fd = pty.fork()
    if pid == 0:  # the child: the CLI on a terminal
        os.chdir(REPO)
        os.execv(sys.executable, [sys.executable, "-m", "servin", "-H", engine.host, "stats"])
    output = b""
    try:
        deadline = time.monotonic() + 60
        while output.count(b"watched") < 3 and time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 1.0)
            if ready:
                try:
                    output += os.read(fd, 65536)
                except OSError:
                    break
    finally:
        os.kill(pid, signal.SIGINT)
        while True:  # drain until the CLI exits (it restores the cursor on the way out)
            ready, _, _ = select.select([fd], [], [], 5.0)
            if not ready:
                break
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
        os.waitpid(pid, 0)
        os.close(fd)
    text = output.decode(errors="replace")
    assert text.count("watched") >= 3, text
    assert text.count("CONTAINER ID") >= 3
    assert text.count("\x1b[H") >= 3  # each frame goes back to the top: no scrolling
    assert text.count("\x1b[2J") == 1  # the screen is cleared once, at the start
    assert text.rfind("\x1b[?25h") > text.rfind("\x1b[H"), repr(text[-80:])  # cursor back
    engine.cli("rm", "-f", "watched", check=True)


def test_one_shot_answers_at_once_and_leaves_streams_their_baselines(
    engine: DaemonProcess,
) -> None:
    run_detached(engine, "--name", "oneshot", "busybox", "sh", "-c", "while :; do :; done")
    time.sleep(0.5)
    # No stream open: each one-shot is a read of its own, its CPU % the average since start.
    first = _batches(engine, 1, ids=["oneshot"], stream=False)[0].stats[0]  # type: ignore[attr-defined]
    second = _batches(engine, 1, ids=["oneshot"], stream=False)[0].stats[0]  # type: ignore[attr-defined]
    assert first.cpu_percent > 5.0 and second.cpu_percent > 5.0, (first, second)
    assert second.read.ToNanoseconds() > first.read.ToNanoseconds()
    # With a stream open, a one-shot is the stream's latest pass, and the stream's next
    # figures still cover its own intervals (the one-shot moved no baseline).
    with grpc_client(engine) as client:
        stream = client.containers.Stats(containers_pb2.StatsRequest(
            ids=["oneshot"], stream=True, interval_ms=400))  # fmt: skip
        seen = [next(stream).stats[0] for _ in range(2)]
        shot = client.containers.Stats(containers_pb2.StatsRequest(ids=["oneshot"]))
        (one,) = next(shot).stats
        seen += [next(stream).stats[0] for _ in range(3)]
        stream.close()
    reads = [s.read.ToNanoseconds() for s in seen]
    assert one.read.ToNanoseconds() in reads
    for before, after in itertools.pairwise(seen[1:]):
        wall_ns = after.read.ToNanoseconds() - before.read.ToNanoseconds()
        share = 100.0 * (after.cpu_total_ns - before.cpu_total_ns) / wall_ns
        assert abs(after.cpu_percent - share) <= 5.0 + 0.25 * share, (after.cpu_percent, share)
    engine.cli("rm", "-f", "oneshot", check=True)
