"""``servin build`` against real daemons: the cache, failures and interruptions, stages in
parallel, here-documents, RUN mounts and networks, outputs, contexts, pulls, a remote daemon
and bad input."""

from __future__ import annotations

import http.server
import io
import json
import os
import re
import signal
import subprocess
import sys
import tarfile
import threading
import time
import uuid
from pathlib import Path

import pytest

from tests.daemon import REPO, DaemonProcess, short_tmpdir
from tests.registry.registryd import Registry, start_registry
from tests.sshd import free_port

TEN = """\
FROM busybox
ENV APP=/app
ARG VERSION=1.0
WORKDIR /app
COPY config.txt ./
RUN echo "version $VERSION" > version.txt
COPY src/ ./src/
RUN cat src/* > combined.txt
LABEL stage=ten
CMD ["cat", "/app/combined.txt"]
"""


def make_context(root: Path, dockerfile: str, files: dict[str, str] | None = None) -> Path:
    """A context directory with a Dockerfile and files."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "Dockerfile").write_text(dockerfile)
    for name, text in (files or {}).items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def build(d: DaemonProcess, context: Path | str, *args: str, check: bool = True,
          input: bytes | None = None) -> subprocess.CompletedProcess[str]:
    """``servin build --progress plain ARGS CONTEXT``."""
    out = d.cli("build", "--progress", "plain", "--network", "none", *args, str(context),
                input=input)
    if check and out.returncode != 0:
        raise AssertionError(f"build failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    return out


def steps(stderr: str) -> dict[str, str]:
    """Each step's title -> "CACHED" or "DONE" from plain progress."""
    titles: dict[str, str] = {}
    for line in stderr.splitlines():
        if m := re.match(r"#(\d+) \[[^\]]+\] (.*)$", line):
            titles[m.group(1)] = m.group(2)
    out: dict[str, str] = {}
    for line in stderr.splitlines():
        if m := re.match(r"#(\d+) (CACHED|DONE)", line):
            out[titles[m.group(1)]] = m.group(2)
    return out


def run_in(d: DaemonProcess, image: str, script: str) -> str:
    return d.cli("run", "--rm", "--network", "none", image, "sh", "-c", script,
                 check=True).stdout


def image_id(d: DaemonProcess, ref: str) -> str:
    return d.cli("inspect", "--format", "{{.Id}}", ref, check=True).stdout.strip()


def build_containers(d: DaemonProcess) -> list[str]:
    return d.cli("ps", "-aq", "--filter", "label=servin.build", check=True).stdout.split()


def leftovers(d: DaemonProcess) -> list[str]:
    """What a build must never leave: containers, mounts, scratch snapshots, contexts."""
    found = [f"container {c}" for c in build_containers(d)]
    with open("/proc/self/mountinfo") as f:
        mounts = [line.split()[4] for line in f]
    for point in mounts:
        if point.startswith((str(d.exec_root / "build"), str(d.root / "build"),
                             str(d.root / "snapshots"))):
            found.append(f"mount {point}")
    found += [f"snapshot {p.name}" for p in (d.root / "snapshots" / "containers").iterdir()]
    found += [f"context {p.name}" for p in (d.root / "build" / "contexts").iterdir()]
    found += [f"download {p.name}" for p in (d.root / "build" / "downloads").iterdir()]
    found += [f"step dir {p.name}" for p in (d.exec_root / "build").iterdir()
              if p.name != "mnt"]
    return found


def stored(d: DaemonProcess) -> tuple[int, int]:
    """(blobs, unpacked layers) on disk."""
    blobs = len(list((d.root / "content" / "blobs" / "sha256").iterdir()))
    layers = len(list((d.root / "snapshots" / "layers").iterdir()))
    return blobs, layers


def wait_for(check: object, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def fresh(daemon: DaemonProcess, busybox_tar: Path) -> DaemonProcess:
    """A daemon of its own (its disk is counted) with busybox."""
    daemon.cli("import", "-c", 'CMD ["sh"]', str(busybox_tar), "busybox", check=True)
    return daemon


# -- the cache ------------------------------------------------------------------------------------


def test_second_build_is_cached_and_creates_no_container(engine: DaemonProcess,
                                                         tmp_path: Path) -> None:
    ctx = make_context(tmp_path / "ctx", TEN, {"config.txt": "k=v\n", "src/a.txt": "a\n",
                                               "src/b.txt": "b\n"})
    first = build(engine, ctx, "-t", "ten:1")
    assert "CACHED" not in steps(first.stderr).values()
    assert "Successfully tagged ten:1" in first.stdout
    since = f"{time.time():.6f}"
    second = build(engine, ctx, "-t", "ten:1")
    results = steps(second.stderr)
    assert len(results) == 9 and set(list(results.values())[1:]) == {"CACHED"}
    assert image_id(engine, "ten:1").removeprefix("sha256:")[:12] in second.stdout
    made = engine.cli("events", "--since", since, "--until", "0s", "--filter", "type=container",
                      "--format", "{{.Action}}", check=True).stdout.split()
    assert made == []
    assert run_in(engine, "ten:1", "cat /app/version.txt /app/combined.txt") == \
        "version 1.0\na\nb\n"


def test_a_touched_file_rebuilds_from_the_step_that_copies_it(engine: DaemonProcess,
                                                              tmp_path: Path) -> None:
    ctx = make_context(tmp_path / "ctx", TEN, {"config.txt": "k=v\n", "src/a.txt": "a\n"})
    build(engine, ctx, "-t", "touch:1")
    os.utime(ctx / "src" / "a.txt", (time.time() + 5, time.time() + 5))
    results = steps(build(engine, ctx, "-t", "touch:1").stderr)
    assert results["COPY config.txt ./"] == "CACHED"
    assert results['RUN echo "version $VERSION" > version.txt'] == "CACHED"
    assert results["COPY src/ ./src/"] == "DONE"
    assert results["RUN cat src/* > combined.txt"] == "DONE"
    (ctx / "config.txt").write_text("k=changed\n")
    results = steps(build(engine, ctx, "-t", "touch:1").stderr)
    assert results["WORKDIR /app"] == "CACHED" and results["COPY config.txt ./"] == "DONE"


def test_a_changed_build_arg_rebuilds_from_its_first_use(engine: DaemonProcess,
                                                         tmp_path: Path) -> None:
    ctx = make_context(tmp_path / "ctx", TEN, {"config.txt": "k=v\n", "src/a.txt": "a\n"})
    build(engine, ctx, "--build-arg", "VERSION=2")
    results = steps(build(engine, ctx, "--build-arg", "VERSION=3", "-t", "arg:3").stderr)
    assert results["COPY config.txt ./"] == "CACHED"
    assert results['RUN echo "version $VERSION" > version.txt'] == "DONE"
    assert run_in(engine, "arg:3", "cat /app/version.txt") == "version 3\n"


def test_the_cache_survives_a_restart_and_cache_from_gives_back_the_image(
        fresh: DaemonProcess, tmp_path: Path) -> None:
    ctx = make_context(tmp_path / "ctx", TEN, {"config.txt": "k=v\n", "src/a.txt": "a\n"})
    build(fresh, ctx, "-t", "keep:1")
    built = image_id(fresh, "keep:1")
    fresh.stop()
    fresh.start()
    assert set(list(steps(build(fresh, ctx, "-t", "keep:1").stderr).values())[1:]) == {"CACHED"}
    assert image_id(fresh, "keep:1") == built
    pruned = fresh.cli("builder", "prune", "-f", check=True).stdout
    assert re.search(r"Deleted build cache objects: [1-9]", pruned)
    fresh.cli("tag", "keep:1", "source:1", check=True)
    fresh.cli("rmi", "keep:1", check=True)
    again = build(fresh, ctx, "--cache-from", "source:1", "-t", "keep:2")
    assert set(list(steps(again.stderr).values())[1:]) == {"CACHED"}
    assert image_id(fresh, "keep:2") == built


def test_prune_drops_the_cache_and_what_only_it_kept(fresh: DaemonProcess,
                                                     tmp_path: Path) -> None:
    before = stored(fresh)
    ctx = make_context(tmp_path / "ctx", "FROM busybox\nRUN echo 1 > /one\nRUN echo 2 > /two\n")
    build(fresh, ctx)  # untagged: only the cache refers to its layers
    assert stored(fresh)[1] == before[1] + 2
    fresh.cli("image", "prune", "-f", check=True)  # the cache's layers are roots
    assert stored(fresh)[1] == before[1] + 2
    assert cache_usage(fresh) not in ("", "0B")  # system df counts the cache's own layers
    out = fresh.cli("builder", "prune", "-f", "--filter", "until=1h", check=True).stdout
    assert "Deleted build cache objects: 0" in out
    fresh.cli("builder", "prune", "-f", check=True)
    fresh.cli("image", "prune", "-f", check=True)
    assert stored(fresh)[1] == before[1]
    assert cache_usage(fresh) == "0B"


def cache_usage(daemon: DaemonProcess) -> str:
    """The Build Cache row's size in ``system df``."""
    out = daemon.cli("system", "df", "--format", "{{.Type}}={{.Size}}", check=True).stdout
    return dict(line.split("=", 1) for line in out.splitlines())["Build Cache"]


# -- failures and interruptions -------------------------------------------------------------------


def test_a_failed_run_reports_its_step_and_leaves_nothing(fresh: DaemonProcess,
                                                          tmp_path: Path) -> None:
    ctx = make_context(tmp_path / "ctx", (
        "FROM busybox\nRUN echo kept > /kept\n"
        "RUN --mount=type=cache,target=/c --mount=type=tmpfs,target=/t "
        "echo to-stdout && echo to-stderr >&2 && exit 7\n"))
    out = build(fresh, ctx, check=False)
    assert out.returncode == 1
    assert "to-stdout" in out.stderr and "to-stderr" in out.stderr
    assert 'did not complete successfully: exit code: 7' in out.stderr
    assert "RUN --mount=type=cache" in out.stderr
    assert "Traceback" not in out.stdout + out.stderr
    assert leftovers(fresh) == []
    # Nothing unreferenced: a collection finds nothing to remove.
    before = stored(fresh)
    fresh.cli("image", "prune", "-f", check=True)
    assert stored(fresh) == before
    assert fresh.cli("images", "-aq", check=True).stdout.split() == [image_id(fresh, "busybox")
                                                                      .removeprefix("sha256:")
                                                                      [:12]]


def test_an_interrupted_build_leaves_nothing(fresh: DaemonProcess, tmp_path: Path) -> None:
    ctx = make_context(tmp_path / "ctx", "FROM busybox\nRUN echo started && sleep 60\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "servin", "-H", fresh.host, "build", "--progress", "plain",
         "--network", "none", str(ctx)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        cwd=REPO, text=True)
    try:
        assert proc.stderr is not None
        seen = ""
        while not re.search(r"^#\d+ started$", seen, re.M):  # the command's output line
            line = proc.stderr.readline()
            assert line, seen
            seen += line
        assert build_containers(fresh)
        proc.send_signal(signal.SIGINT)
        proc.wait(20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    wait_for(lambda: leftovers(fresh) == [], "the build's cleanup")
    before = stored(fresh)
    fresh.cli("image", "prune", "-f", check=True)
    assert stored(fresh) == before


def test_a_daemon_killed_mid_build_cleans_up_at_its_next_start(fresh: DaemonProcess,
                                                               tmp_path: Path) -> None:
    ctx = make_context(tmp_path / "ctx", "FROM busybox\nRUN echo 1 > /one\n"
                                          "RUN echo started && sleep 60\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "servin", "-H", fresh.host, "build", "--progress", "plain",
         "--network", "none", str(ctx)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        cwd=REPO, text=True)
    try:
        assert proc.stderr is not None
        seen = ""
        while not re.search(r"^#\d+ started$", seen, re.M):  # the command's output line
            line = proc.stderr.readline()
            assert line, seen
            seen += line
        fresh.stop(signal.SIGKILL)
        proc.wait(20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert (fresh.root / "build" / "parents.json").read_text() != "[]"
    fresh.start()
    assert leftovers(fresh) == []
    assert not (fresh.root / "build" / "parents.json").exists()
    before = stored(fresh)
    fresh.cli("image", "prune", "-f", check=True)
    assert stored(fresh) == before
    # The step before the crash is cached; the interrupted one runs again.
    make_context(ctx, "FROM busybox\nRUN echo 1 > /one\nRUN echo again\n")
    results = steps(build(fresh, ctx).stderr)
    assert results["RUN echo 1 > /one"] == "CACHED"


# -- stages ---------------------------------------------------------------------------------------


def test_independent_stages_run_at_the_same_time(engine: DaemonProcess,
                                                 tmp_path: Path) -> None:
    # Each stage waits (up to 20 s) for the other's mark in a shared cache mount: the build
    # succeeds only when both RUN steps run at once.
    meet = uuid.uuid4().hex
    wait = ("touch /r/{me} && for i in $(seq 1 200); do [ -e /r/{other} ] && exit 0; "
            "sleep 0.1; done; exit 1")
    ctx = make_context(tmp_path / "ctx", (
        f"FROM busybox AS a\nRUN --mount=type=cache,id={meet},target=/r "
        f"{wait.format(me='a', other='b')}\n"
        f"FROM busybox AS b\nRUN --mount=type=cache,id={meet},target=/r "
        f"{wait.format(me='b', other='a')}\n"
        "FROM busybox AS never\nRUN exit 1\n"
        "FROM busybox\nCOPY --from=a /etc/passwd /a\nCOPY --from=b /etc/group /b\n"))
    out = build(engine, ctx, "-t", "parallel:1")
    assert "never" not in out.stderr
    assert run_in(engine, "parallel:1", "ls /a /b") == "/a\n/b\n"
    target = build(engine, ctx, "--target", "never", check=False)
    assert target.returncode == 1 and "[never 2/2] RUN exit 1" in target.stderr


def test_onbuild_triggers_run_in_the_child_only(engine: DaemonProcess, tmp_path: Path) -> None:
    base = make_context(tmp_path / "base", (
        "FROM busybox\nONBUILD COPY trig.txt /trig.txt\nONBUILD RUN echo ran >> /ran\n"))
    build(engine, base, "-t", "onbase:1")
    child = make_context(tmp_path / "child", "FROM onbase:1\nRUN true\n",
                         {"trig.txt": "from the child's context\n"})
    out = build(engine, child, "-t", "onchild:1")
    assert "ONBUILD COPY trig.txt /trig.txt" in out.stderr
    assert run_in(engine, "onchild:1", "cat /trig.txt /ran") == "from the child's context\nran\n"
    config = json.loads(engine.cli("inspect", "onchild:1", check=True).stdout)[0]["Config"]
    assert not config.get("OnBuild")
    grandchild = make_context(tmp_path / "grand", "FROM onchild:1\nRUN cat /ran\n")
    assert "ONBUILD" not in build(engine, grandchild).stderr


# -- what steps make ------------------------------------------------------------------------------


def test_heredocs_and_chmod_give_the_expected_files(engine: DaemonProcess,
                                                    tmp_path: Path) -> None:
    ctx = make_context(tmp_path / "ctx", (
        "FROM busybox\nARG V=value\n"
        "RUN <<EOF\necho one > /h1\necho two >> /h1\nEOF\n"
        "RUN cat <<'EOF' > /h2\n$NOT_EXPANDED\nEOF\n"
        "RUN <<EOF\n#!/bin/sh\necho \"script $0\" > /h3\nEOF\n"
        "COPY <<EOF /etc/h4\nv=${V}\nEOF\n"
        "COPY <<-EOF /h5\n\ttabbed\n\tEOF\n"
        "COPY --chmod=751 <<EOF /h6\nx\nEOF\n"
        "COPY --chmod=600 --chown=user:users dir/ /d/\n"), {"dir/f": "f\n", "dir/sub/g": "g\n"})
    build(engine, ctx, "-t", "heredoc:1")
    out = run_in(engine, "heredoc:1", "cat /h1 /h2 /h3 /etc/h4 /h5; "
                 "stat -c '%n %a %u:%g' /etc/h4 /h6 /d /d/f /d/sub /d/sub/g")
    assert out.splitlines() == [
        "one", "two", "$NOT_EXPANDED", "script /dev/.servin-heredoc/EOF", "v=value", "tabbed",
        "/etc/h4 644 0:0", "/h6 751 0:0", "/d 600 1000:100", "/d/f 600 1000:100",
        "/d/sub 600 1000:100", "/d/sub/g 600 1000:100"]


def test_run_mounts(engine: DaemonProcess, tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text("t0p-s3cret")
    cache_id = uuid.uuid4().hex
    ctx = make_context(tmp_path / "ctx", (
        "FROM busybox\n"
        "RUN --mount=target=/src,rw echo scribble > /src/new && cat /src/data/x > /from-ctx\n"
        f"RUN --mount=type=cache,id={cache_id},target=/cache echo run >> /cache/log && "
        "cp /cache/log /log-copy\n"
        "RUN --mount=type=tmpfs,target=/tmp/t,size=1m df /tmp/t | grep -c tmpfs > /tmpfs\n"
        "RUN --mount=type=secret,id=tok,mode=0440,uid=1000,required "
        "stat -c '%a %u' /run/secrets/tok > /secret-meta && "
        "[ \"$(cat /run/secrets/tok)\" = t0p-s3cret ]\n"
        "RUN --mount=type=secret,id=absent true\n"), {"data/x": "ctx-data\n"})
    build(engine, ctx, "-t", "mounts:1", "--secret", f"id=tok,src={secret}")
    assert not (ctx / "new").exists()  # rw bind writes are thrown away
    out = run_in(engine, "mounts:1", "cat /from-ctx /log-copy /tmpfs /secret-meta; "
                 "ls /src /cache /run 2>&1; grep -r t0p-s3cret / --exclude-dir=proc "
                 "--exclude-dir=sys -l 2>/dev/null; true")
    assert out.splitlines()[:4] == ["ctx-data", "run", "1", "440 1000"]
    assert "No such file or directory" in out and "t0p-s3cret" not in out
    # The cache mount persists: a rebuild (the step is not cached) sees the first run's log.
    again = make_context(tmp_path / "again", (
        f"FROM busybox\nRUN --mount=type=cache,id={cache_id},target=/cache "
        "cp /cache/log /seen\n"))
    build(engine, again, "-t", "mounts:2")
    assert run_in(engine, "mounts:2", "cat /seen") == "run\n"
    missing = build(engine, ctx, "-t", "mounts:3", check=False)
    assert missing.returncode == 1
    assert "secret tok not found" in missing.stderr


def test_run_networks_hosts_and_volumes(engine: DaemonProcess, tmp_path: Path) -> None:
    ctx = make_context(tmp_path / "ctx", (
        "FROM busybox\n"
        "RUN grep -c : /proc/net/dev > /none-links\n"
        "RUN --network=host grep -c : /proc/net/dev > /host-links\n"
        "RUN grep build-host /etc/hosts > /hosts\n"
        "VOLUME /data\n"
        "RUN echo discarded > /data/file && echo kept > /kept\n"))
    build(engine, ctx, "-t", "net:1", "--add-host", "build-host:10.1.2.3")
    out = run_in(engine, "net:1", "cat /none-links /host-links /hosts /kept; ls /data")
    none_links, host_links, hosts, kept = out.splitlines()[:4]
    assert none_links == "1" and int(host_links) > 1
    assert hosts.split() == ["10.1.2.3", "build-host"] and kept == "kept"
    assert "file" not in out.splitlines()[4:]
    bad = build(engine, ctx, "--add-host", "nocolon", check=False)
    assert bad.returncode != 0 and "HOST:IP" in bad.stderr
    bridged = make_context(tmp_path / "bridged", "FROM busybox\n"
                           "RUN ip -4 addr show eth0 | grep -c 'inet ' > /inet\n")
    build(engine, bridged, "--network", "default", "-t", "net:2")
    assert run_in(engine, "net:2", "cat /inet") == "1\n"


def test_add_unpacks_local_archives_and_fetches_urls(engine: DaemonProcess,
                                                     tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    with tarfile.open(ctx / "pack.tar.gz", "w:gz") as tar:
        data = b"packed\n"
        info = tarfile.TarInfo("inner/file.txt")
        info.size, info.uid, info.gid, info.mode = len(data), 1000, 1000, 0o640
        tar.addfile(info, io.BytesIO(data))
    served = tmp_path / "served"
    served.mkdir()
    (served / "remote.txt").write_text("remote\n")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), lambda *a: Quiet(*a, directory=str(served)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/remote.txt"
        make_context(ctx, f"FROM busybox\nADD pack.tar.gz /x/\nADD {url} /r/\n")
        build(engine, ctx, "-t", "add:1")
    finally:
        server.shutdown()
    out = run_in(engine, "add:1", "cat /x/inner/file.txt /r/remote.txt; "
                 "stat -c '%a %u' /x/inner/file.txt /r/remote.txt")
    assert out.splitlines() == ["packed", "remote", "640 1000", "600 0"]
    make_context(ctx, "FROM busybox\nADD http://127.0.0.1:9/nothing.txt /n\n")
    out = build(engine, ctx, check=False)
    assert out.returncode == 1 and "cannot reach the server (no network?)" in out.stderr


# -- outputs and contexts -------------------------------------------------------------------------


def test_tags_labels_iidfile_and_quiet(engine: DaemonProcess, tmp_path: Path) -> None:
    ctx = make_context(tmp_path / "ctx", "FROM busybox\nLABEL from=dockerfile\n")
    iid = tmp_path / "iid"
    out = engine.cli("build", "-q", "-t", "multi:1", "-t", "multi:2", "--label", "extra=yes",
                     "--iidfile", str(iid), str(ctx), check=True)
    assert out.stdout.strip() == iid.read_text() == image_id(engine, "multi:1") == \
        image_id(engine, "multi:2")
    assert out.stderr == ""
    labels = json.loads(engine.cli("inspect", "--format", "{{json .Config.Labels}}", "multi:1",
                                   check=True).stdout)
    assert labels == {"from": "dockerfile", "extra": "yes"}
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)
    same = engine.cli("build", "-q", "--platform", f"linux/{arch}", "--label", "extra=yes",
                      "-t", "multi:3", str(ctx), check=True)
    assert same.stdout.strip() == iid.read_text()  # the same build: every step cached


def test_outputs_local_and_tar_record_no_image(engine: DaemonProcess, tmp_path: Path) -> None:
    ctx = make_context(tmp_path / "ctx", "FROM busybox AS b\nRUN echo made > /made\n"
                                          "FROM scratch\nCOPY --from=b /made /out/made\n")
    before = engine.cli("images", "-aq", check=True).stdout
    build(engine, ctx, "-o", f"type=local,dest={tmp_path / 'dir'}")
    assert (tmp_path / "dir" / "out" / "made").read_text() == "made\n"
    out = subprocess.run([sys.executable, "-m", "servin", "-H", engine.host, "build", "-q",
                          "--network", "none", "-o", "-", str(ctx)], capture_output=True,
                         cwd=REPO, check=True)
    with tarfile.open(fileobj=io.BytesIO(out.stdout)) as tar:
        member = tar.extractfile("out/made")
        assert member is not None and member.read() == b"made\n"
    assert engine.cli("images", "-aq", check=True).stdout == before


def test_tar_and_stdin_contexts_with_their_dockerignore(engine: DaemonProcess,
                                                        tmp_path: Path) -> None:
    files = {"keep.txt": "keep\n", "skip.log": "skip\n", "logs/important.log": "important\n",
             ".dockerignore": "*.log\nlogs\n!logs/important.log\nDockerfile\n.dockerignore\n"}
    ctx = make_context(tmp_path / "ctx", "FROM busybox\nCOPY . /ctx/\n", files)
    archive = tmp_path / "ctx.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(ctx, arcname=".")
    out = build(engine, "-", "-t", "stdin:1", input=archive.read_bytes())
    assert "Successfully tagged stdin:1" in out.stdout
    listing = run_in(engine, "stdin:1", "cd /ctx && find . | sort")
    assert listing.split() == [".", "./keep.txt", "./logs", "./logs/important.log"]
    build(engine, archive, "-t", "file:1")
    assert run_in(engine, "file:1", "cat /ctx/keep.txt") == "keep\n"
    bare = build(engine, "-", "-t", "bare:1", input=b"FROM busybox\nENV BARE=1\n")
    assert "Successfully" in bare.stdout
    assert run_in(engine, "bare:1", "echo $BARE") == "1\n"


def test_a_base_image_is_pulled_from_a_registry(engine: DaemonProcess, tmp_path: Path) -> None:
    registry: Registry = start_registry(short_tmpdir("sv-reg-"))
    try:
        ref = f"{registry.host}/build/base:1"
        engine.cli("tag", "busybox", ref, check=True)
        engine.cli("push", ref, check=True)
        engine.cli("rmi", ref, check=True)
        ctx = make_context(tmp_path / "ctx", f"FROM {ref}\nRUN echo pulled > /p\n")
        out = build(engine, ctx, "-t", "pulled:1")
        assert "pulling" in out.stderr
        assert run_in(engine, "pulled:1", "cat /p") == "pulled\n"
        again = build(engine, ctx, "--pull")
        assert "pulling" in again.stderr
    finally:
        registry.stop()


def test_a_remote_daemon_gets_only_the_files_the_build_reads(
        daemon_factory: type[DaemonProcess], busybox_tar: Path, tmp_path: Path) -> None:
    port = free_port()
    base = short_tmpdir()
    d = daemon_factory(base, ["--host", f"unix://{base}/run/servin.sock", "--host",
                              f"tcp://127.0.0.1:{port}"]).start()
    d.cli("import", "-c", 'CMD ["sh"]', str(busybox_tar), "busybox", check=True)
    ctx = make_context(tmp_path / "ctx", "FROM busybox\nARG F=app\nCOPY $F/ /app/\n",
                       {"app/main.txt": "main\n"})
    (ctx / "big.bin").write_bytes(os.urandom(3 << 20))
    out = subprocess.run([sys.executable, "-m", "servin", "-H", f"tcp://127.0.0.1:{port}",
                          "build", "--progress", "plain", "--network", "none", "-t", "remote:1",
                          str(ctx)], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr
    sent = re.search(r"sending build context ([\d.]+)(\w+) done", out.stderr)
    assert sent is not None and sent.group(2) in ("B", "kB"), out.stderr
    assert run_in(d, "remote:1", "cat /app/main.txt") == "main\n"


# -- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("dockerfile", "args", "message"), [
    ("FROM busybox\nRUNN true\n", (), "line 2: unknown instruction: RUNN"),
    ("FROM busybox\nCOPY missing.txt /\n", (), "file not found in build context: missing.txt"),
    ("FROM busybox\nCOPY *.none /\n", (), "no source files were specified"),
    ("FROM busybox AS a\n", ("--target", "b"), "target stage 'b' could not be found"),
    ("FROM busybox\n", ("--platform", "linux/s390x"), "cannot run on this"),
    ("FROM busybox\nRUN --mount=type=ssh true\n", (), "type=ssh is not supported"),
    ("FROM busybox\nCOPY a b c\n", (), "must be a directory and end with a /"),
    ("FROM busybox\nCOPY --chown=nobody-here a /a\n", (), "unable to find user nobody-here"),
    ("FROM busybox\nEXPOSE http\n", (), "invalid containerPort"),
    ("FROM busybox\nENV A=${B:?required}\n", (), "B: required"),
    ("FROM no-such-image-here.invalid/x\n", (), "no-such-image-here.invalid"),
    ("FROM busybox\n", ("-t", "bad@sha256:" + "0" * 64), "cannot carry a digest"),
])
def test_bad_input_is_one_clear_line(engine: DaemonProcess, tmp_path: Path, dockerfile: str,
                                     args: tuple[str, ...], message: str) -> None:
    ctx = make_context(tmp_path / "ctx", dockerfile, {"a": "a\n", "b": "b\n"})
    out = build(engine, ctx, *args, check=False)
    assert out.returncode != 0
    assert message in out.stderr, out.stderr
    assert "Traceback" not in out.stderr and "internal error" not in out.stderr
    assert build_containers(engine) == []


def test_running_builds_are_announced_to_the_console(engine: DaemonProcess,
                                                     tmp_path: Path) -> None:
    since = f"{time.time():.6f}"
    ctx = make_context(tmp_path / "ctx", "FROM busybox\nENV X=1\n")
    build(engine, ctx, "-t", "announced:1")
    events = engine.cli("events", "--since", since, "--until", "0s", "--filter", "type=builder",
                        "--format", "{{.Action}} {{json .Actor.Attributes}}",
                        check=True).stdout.splitlines()
    mine = [(e.split()[0], json.loads(e.split(None, 1)[1])) for e in events if "announced:1" in e]
    assert [action for action, _ in mine] == ["start", "step", "step", "end"]
    assert mine[2][1]["step"] == "2/2 ENV X=1" and mine[3][1]["status"] == "done"
