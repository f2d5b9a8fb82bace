"""Servin's builder beside Debian's dockerd 20.10 classic builder (``DOCKER_BUILDKIT=0``).

Each Dockerfile of the corpus is built by both from the same context on the same busybox
layer; the images must have the same config (Env, Cmd, Entrypoint, WorkingDir, User,
ExposedPorts, Volumes, Labels, Healthcheck, StopSignal, OnBuild), the same number of layers,
and in each layer the same entries with the same types, modes, owners, link targets and
contents (times are not compared). Here-documents and ``--chmod``, which the classic builder
lacks, are checked against the files they must give instead.

The dockerd is private to this module (its own data root, exec root and socket, no bridge,
no iptables), as the benchmarks run it, and stopped afterwards.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import io
import json
import shutil
import subprocess
import sys
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.daemon import DaemonProcess, short_tmpdir

CONFIG_FIELDS = ("Env", "Cmd", "Entrypoint", "WorkingDir", "User", "ExposedPorts", "Volumes",
                 "Labels", "Healthcheck", "StopSignal", "OnBuild")


@dataclass
class Case:
    """One Dockerfile, its context, and what to build first (a base it names)."""

    name: str
    dockerfile: str
    files: dict[str, str | bytes] = field(default_factory=dict)
    args: tuple[str, ...] = ()
    base: str = ""  # a Dockerfile built first as "diffbase-<name>"


def _tgz(entries: dict[str, tuple[bytes, int, int, int]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, (data, mode, uid, gid) in entries.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.uid, info.gid, info.mtime = (len(data), mode, uid, gid,
                                                                     1_700_000_000)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


CORPUS = [
    Case("env-forms", 'FROM busybox\nENV A=1 B="two words"\nENV C $A-${B}\n'
         "ENV PATH=/opt/bin:$PATH\nENV A=replaced\n"),
    Case("arg-scoping", "ARG TAG=latest\nARG GLOBAL=g\nFROM busybox:${TAG}\n"
         "ARG GLOBAL\nARG LOCAL=l-$GLOBAL\nARG FROM_CLI=default\n"
         "ENV SEEN=$GLOBAL/$LOCAL/$FROM_CLI UNDECLARED=x$TAG\n"
         "RUN echo $GLOBAL $LOCAL $FROM_CLI > /args\nARG LOCAL=second\nENV AFTER=$LOCAL\n",
         args=("--build-arg", "FROM_CLI=cli")),
    Case("env-wins-over-arg", "FROM busybox\nARG V=from-arg\nENV V=from-env\n"
         "ENV W=$V\nRUN echo $V > /v\n", args=("--build-arg", "V=cli")),
    Case("multi-stage", "FROM busybox AS build\nRUN mkdir -p /out && echo built > /out/a "
         "&& echo more > /out/b\n"
         "FROM busybox AS other\nRUN echo other > /other\n"
         "FROM build AS test\nRUN cat /out/a > /tested\n"
         "FROM busybox\nCOPY --from=build /out /result\nCOPY --from=test /tested /\n"
         "COPY --from=1 /other /o\n"),
    Case("copy-chown", "FROM busybox\nCOPY --chown=user:users a.txt /home/user/\n"
         "COPY --chown=1000 dir /srv/dir\nCOPY --chown=33:33 a.txt /new/deep/path/b.txt\n",
         {"a.txt": "a\n", "dir/x": "x\n", "dir/sub/y": "y\n"}),
    Case("add-tar", "FROM busybox\nADD pack.tgz /unpacked/\nADD pack.tgz /again\n",
         {"pack.tgz": _tgz({"top.txt": (b"top\n", 0o644, 0, 0),
                            "d/inner.txt": (b"inner\n", 0o600, 1000, 1000),
                            "d/exec.sh": (b"#!/bin/sh\n", 0o755, 0, 0)})}),
    Case("add-file", "FROM busybox\nADD plain.txt /plain\nADD dir /added/\n",
         {"plain.txt": "plain\n", "dir/f": "f\n"}),
    Case("user-workdir", "FROM busybox\nWORKDIR /a\nWORKDIR b/c\nUSER user\nWORKDIR ../d\n"
         "USER 1000:100\nWORKDIR /home/user\nRUN pwd > /tmp/pwd\n"),
    Case("volume", "FROM busybox\nVOLUME /data\nVOLUME [\"/logs\", \"/var/cache\"]\n"
         "RUN echo discarded > /data/f && echo kept > /kept\n"),
    Case("onbuild", "FROM diffbase-onbuild\nRUN cat /trigger > /seen\n",
         {"t.txt": "from the child's context\n"},
         base="FROM busybox\nONBUILD COPY t.txt /trigger\nONBUILD RUN echo ran >> /ran\n"
              "ONBUILD ENV TRIGGERED=1\n"),
    Case("dockerignore", "FROM busybox\nCOPY . /ctx/\n",
         {".dockerignore": "*.log\n!keep.log\nsecret/\n**/*.tmp\nsub/**/skip*\n",
          "a.txt": "a\n", "x.log": "x\n", "keep.log": "keep\n", "secret/s": "s\n",
          "sub/deep/b.tmp": "b\n", "sub/deep/skip-me": "no\n", "sub/deep/ok": "ok\n"}),
    Case("metadata", "FROM busybox\nEXPOSE 80 443/tcp 53/udp\nEXPOSE 8000-8002\n"
         'LABEL a=1 b="two words" "c d"=e\nLABEL a=override\nSTOPSIGNAL SIGUSR1\n'
         "HEALTHCHECK --interval=30s --timeout=3s --start-period=5s --retries=4 "
         "CMD wget -q -O- localhost || exit 1\n"),
    Case("healthcheck-none", "FROM busybox\nHEALTHCHECK CMD true\nHEALTHCHECK NONE\n"),
    Case("cmd-entrypoint", "FROM busybox\nCMD echo shell form\n"
         'ENTRYPOINT ["/bin/echo", "exec"]\nFROM busybox\nCMD ["a", "b"]\n'
         "ENTRYPOINT /bin/true\n"),
    Case("entrypoint-resets-cmd", 'FROM busybox\nENTRYPOINT ["/bin/sh"]\n'),
    Case("shell", 'FROM busybox\nSHELL ["/bin/sh", "-ec"]\nRUN echo $0 > /shell\n'
         "CMD echo hi\n"),
    Case("whiteouts", "FROM busybox\nRUN rm /bin/vi /etc/group && rm -r /var/www\n"
         "RUN echo new > /etc/group\n"),
    Case("links-and-modes", "FROM busybox\nRUN mkdir -p /x/y && echo f > /x/f && "
         "ln -s f /x/link && ln /x/f /x/hard && chmod 0750 /x/y && chmod 4755 /x/f && "
         "chown 1000:1000 /x/y && mkfifo /x/fifo\n"),
    Case("copy-wildcards", "FROM busybox\nCOPY *.txt /txt/\nCOPY src/*/*.c /c/\n"
         "COPY sr? /all/\n",
         {"a.txt": "a\n", "b.txt": "b\n", "c.md": "c\n", "src/one/m.c": "1\n",
          "src/two/n.c": "2\n", "src/two/n.h": "h\n"}),
    Case("copy-into-existing", "FROM busybox\nCOPY etc/ /etc/\nCOPY bin/tool /bin/\n",
         {"etc/extra.conf": "conf\n", "etc/sub/more": "more\n", "bin/tool": "tool\n"}),
    Case("copy-rename", "FROM busybox\nCOPY a.txt /renamed\nCOPY a.txt /dir/\n"
         "COPY a.txt b.txt /many/\n", {"a.txt": "a\n", "b.txt": "b\n"}),
    Case("workdir-relative-copy", "FROM busybox\nWORKDIR /app\nCOPY a.txt .\n"
         "COPY a.txt sub/\nCOPY dir ./d2\n", {"a.txt": "a\n", "dir/x": "x\n"}),
    Case("escape-directive", "# escape=`\nFROM busybox\nRUN echo one `\n  two > /o\n"
         "ENV W=C:\\path\n"),
    Case("continuations-comments", "FROM busybox\n# a comment\nRUN echo a \\\n"
         "  # inside\n  b \\\n  c > /abc\n\nENV X=1 \\\n    Y=2\n"),
    Case("expose-args", "FROM busybox\nARG PORT=8080\nARG PROTO=udp\nEXPOSE $PORT ${PORT}/$PROTO\n"
         "LABEL port=$PORT\n", args=("--build-arg", "PORT=9090")),
    Case("symlink-source", "FROM busybox\nCOPY link.txt /followed\n",
         {"real.txt": "real\n", "link.txt": b"SYMLINK:real.txt"}),
    Case("scratch", "FROM busybox AS tools\nRUN echo data > /data\n"
         "FROM scratch\nCOPY --from=tools /bin/busybox /bin/\nCOPY --from=tools /data /\n"
         'CMD ["/bin/busybox", "cat", "/data"]\n'),
]

# Features the classic builder lacks: compared with the files they must give.
EXPECTED = [
    ("heredocs", "FROM busybox\nARG WHO=world\nRUN <<EOF\necho one > /h1\necho two >> /h1\nEOF\n"
     "RUN cat <<'EOF' > /h2\n$NOT_EXPANDED\nEOF\n"
     "COPY <<EOF /etc/h3\nhello ${WHO}\nEOF\n"
     "COPY <<-EOF /h4\n\ttabs go\n\tEOF\n",
     {"h1": (0o644, 0, 0, b"one\ntwo\n"), "h2": (0o644, 0, 0, b"$NOT_EXPANDED\n"),
      "etc/h3": (0o644, 0, 0, b"hello world\n"), "h4": (0o644, 0, 0, b"tabs go\n")}),
    ("chmod", "FROM busybox\nCOPY --chmod=0750 --chown=1000:100 a.txt dir /c/\n",
     {"c/a.txt": (0o750, 1000, 100, b"a\n"), "c/x": (0o750, 1000, 100, b"x\n")}),
]


# -- dockerd --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def docker(busybox_tar: Path) -> Iterator[Any]:
    """A private dockerd 20.10 with the same busybox imported; skipped where it is missing."""
    if shutil.which("dockerd") is None:
        pytest.skip("dockerd is not installed (scripts/bootstrap installs docker.io)")
    from bench.peers import DockerPeer

    peer = DockerPeer(short_tmpdir("sv-dockerd-")).start()
    try:
        peer.import_busybox(busybox_tar)
        yield peer
    finally:
        peer.stop()


def _context(root: Path, case: Case) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "Dockerfile").write_text(case.dockerfile)
    for name, content in case.files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes) and content.startswith(b"SYMLINK:"):
            path.symlink_to(content.decode().removeprefix("SYMLINK:"))
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return root


def _docker_build(peer: Any, context: Path, tag: str, args: tuple[str, ...]) -> None:
    env = dict(peer.engine.env, DOCKER_BUILDKIT="0")
    out = subprocess.run([*peer.engine.argv, "build", "-q", "--network", "none", "-t", tag,
                          *args, str(context)], capture_output=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr.decode()


def _servin_build(d: DaemonProcess, context: Path, tag: str, args: tuple[str, ...]) -> None:
    d.cli("build", "-q", "--network", "none", "-t", tag, *args, str(context), check=True)


# -- reading images -------------------------------------------------------------------------------


Entry = tuple[str, int, int, int, str]  # type, mode, uid, gid, content digest or link target


@dataclass
class Image:
    config: dict[str, Any]
    layers: list[dict[str, Entry]]


def _layer(data: bytes) -> dict[str, Entry]:
    out: dict[str, Entry] = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for m in tar:
            name = m.name.removeprefix("./").rstrip("/")
            if not name or name == ".":
                continue
            content = ""
            if m.isreg():
                f = tar.extractfile(m)
                assert f is not None
                content = hashlib.sha256(f.read()).hexdigest()[:16]
            elif m.issym() or m.islnk():
                content = m.linkname.removeprefix("./")
            kind = {tarfile.REGTYPE: "file", tarfile.AREGTYPE: "file", tarfile.DIRTYPE: "dir",
                    tarfile.SYMTYPE: "symlink", tarfile.LNKTYPE: "hardlink",
                    tarfile.FIFOTYPE: "fifo", tarfile.CHRTYPE: "char"}.get(m.type, str(m.type))
            out[name] = (kind, m.mode & 0o7777, m.uid, m.gid, content)
    return out


def _read_saved(archive: bytes) -> Image:
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        def member(name: str) -> bytes:
            f = tar.extractfile(name)
            assert f is not None
            return f.read()

        manifest = json.loads(member("manifest.json"))[0]
        config = json.loads(member(manifest["Config"]))
        return Image(config, [_layer(member(name)) for name in manifest["Layers"]])


def _saved_docker(peer: Any, tag: str) -> Image:
    out = subprocess.run([*peer.engine.argv, "save", tag], capture_output=True,
                         env=peer.engine.env, check=True, timeout=120)
    return _read_saved(out.stdout)


def _saved_servin(d: DaemonProcess, tag: str) -> Image:
    out = subprocess.run([*_servin_argv(d), "save", tag], capture_output=True, check=True,
                         timeout=120)
    return _read_saved(out.stdout)


def _servin_argv(d: DaemonProcess) -> list[str]:
    return [sys.executable, "-m", "servin", "-H", d.host]


def _normal(value: Any) -> Any:
    """Docker's and Servin's ways to say "nothing" compared as one."""
    return None if value in (None, [], {}, "") else value


def _config(image: Image) -> dict[str, Any]:
    inner = image.config.get("config") or {}
    return {k: _normal(inner.get(k)) for k in CONFIG_FIELDS}


def _build_both(peer: Any, d: DaemonProcess, context: Path, tag: str,
                args: tuple[str, ...]) -> None:
    errors: list[BaseException] = []

    def docker_side() -> None:
        try:
            _docker_build(peer, context, tag, args)
        except BaseException as exc:  # reported by the calling thread
            errors.append(exc)

    thread = threading.Thread(target=docker_side)
    thread.start()
    try:
        _servin_build(d, context, tag, args)
    finally:
        thread.join()
    if errors:
        raise errors[0]


@pytest.fixture(scope="module")
def built(docker: Any, engine: DaemonProcess,
          tmp_path_factory: pytest.TempPathFactory) -> dict[str, BaseException | None]:
    """Every case built by both engines, a few at a time (the suite stays short); a case's
    build error, or None."""
    root = tmp_path_factory.mktemp("corpus")

    def one(case: Case) -> BaseException | None:
        try:
            if case.base:
                base = _context(root / case.name / "base", Case("base", case.base))
                _build_both(docker, engine, base, f"diffbase-{case.name}", ())
            _build_both(docker, engine, _context(root / case.name / "ctx", case),
                        f"diff-{case.name}", case.args)
        except BaseException as exc:  # reported by the case's test
            return exc
        return None

    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        return dict(zip([c.name for c in CORPUS], pool.map(one, CORPUS), strict=True))


# -- the comparison -------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CORPUS, ids=[c.name for c in CORPUS])
def test_same_image_as_the_classic_builder(case: Case, built: dict[str, BaseException | None],
                                           docker: Any, engine: DaemonProcess) -> None:
    error = built[case.name]
    if error is not None:
        raise error
    tag = f"diff-{case.name}"
    theirs, ours = _saved_docker(docker, tag), _saved_servin(engine, tag)
    assert _config(ours) == _config(theirs)
    assert len(ours.layers) == len(theirs.layers)
    for i, (mine, reference) in enumerate(zip(ours.layers, theirs.layers, strict=True)):
        if i == 0:
            continue  # the same busybox layer on both sides
        assert mine == reference, f"layer {i} differs"


@pytest.mark.parametrize(("name", "dockerfile", "files"), EXPECTED,
                         ids=[e[0] for e in EXPECTED])
def test_features_the_classic_builder_lacks_give_the_expected_files(
        name: str, dockerfile: str, files: dict[str, tuple[int, int, int, bytes]],
        engine: DaemonProcess, tmp_path: Path) -> None:
    context = _context(tmp_path / "ctx", Case(name, dockerfile, {"a.txt": "a\n",
                                                                  "dir/x": "x\n"}))
    _servin_build(engine, context, f"expect-{name}", ())
    image = _saved_servin(engine, f"expect-{name}")
    merged: dict[str, Entry] = {}
    for layer in image.layers[1:]:
        merged.update(layer)
    for path, (mode, uid, gid, data) in files.items():
        kind, got_mode, got_uid, got_gid, digest = merged[path]
        assert (kind, got_mode, got_uid, got_gid) == ("file", mode, uid, gid), path
        assert digest == hashlib.sha256(data).hexdigest()[:16], path
