"""Stand-ins for the images Kubernetes CRI tests pull, built from Debian's busybox-static.

critest (kubernetes-sigs/cri-tools) and the e2e suites pull images from registry.k8s.io and
gcr.io. Without internet, each is replaced by an image of our own that does what the tests
need of it (a web server on the right port, the right USER, a setuid helper...), pushed to a
local registry on 127.0.0.1 under the same repository path, and the runtime under test is
given that registry as a mirror of registry.k8s.io, gcr.io and k8s.gcr.io.

    python -m servin.devtools.critest_images list
    python -m servin.devtools.critest_images serve-registry DIR [--port 5000]  # execs it
    python -m servin.devtools.critest_images push --registry 127.0.0.1:5000
    python -m servin.devtools.critest_images mirrors --registry 127.0.0.1:5000 [--for containerd]

Every image is two layers: the bundled busybox rootfs (``servin.devtools.busybox``) and the
image's own files. Layers, configs and manifests are deterministic, so the same busybox
binary always gives the same digests. One image cannot be stood in for: critest pins
``test-image-digest`` by the upstream digest, which no other content can have.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import sys
import tarfile
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from servin.devtools.busybox import BUSYBOX, GROUP, MTIME, PASSWD, write_rootfs

# The registries critest pulls from; all are mirrored to one local registry.
MIRRORED = ("registry.k8s.io", "gcr.io", "k8s.gcr.io")
E2E = "registry.k8s.io/e2e-test-images"
STAGING = "gcr.io/k8s-staging-cri-tools"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CREATED = "2023-11-14T22:13:20Z"  # MTIME as RFC 3339: fixed, for reproducible digests

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


@dataclass(frozen=True)
class File:
    """One entry of an image's own layer."""

    path: str
    content: bytes | None = None  # None: a directory
    mode: int = 0o644
    uid: int = 0
    gid: int = 0


def _script(path: str, text: str) -> File:
    return File(path, text.encode(), 0o755)


def _web_server(port: int) -> list[File]:
    # nginx stand-in: busybox httpd on PORT; like nginx it writes /var/run/nginx.pid, its
    # process is named nginx (the kernel names a script's process after the script) and its
    # command line says "master process" (critest's PID namespace specs look for both).
    script = f"""#!/bin/sh
# nginx stand-in: serves /usr/share/nginx/html on port {port} with busybox httpd.
echo $$ > /var/run/nginx.pid
trap 'kill "$child" 2>/dev/null; rm -f /var/run/nginx.pid; exit 0' TERM INT QUIT
httpd -f -p {port} -h /usr/share/nginx/html &
child=$!
wait "$child"
"""
    page = b"<html><body><h1>Welcome (a busybox httpd standing in for nginx)</h1></body></html>\n"
    return [_script("usr/sbin/nginx", script), File("usr/share/nginx/html/index.html", page)]


PGREP = r"""#!/bin/sh
# pgrep for a busybox without it: print the PIDs of the processes whose name matches
# PATTERN (an extended regular expression; -x: the whole name). Exit 1 when none does.
exact=
if [ "$1" = -x ]; then exact=1; shift; fi
if [ $# -ne 1 ]; then echo "usage: pgrep [-x] PATTERN" >&2; exit 2; fi
pattern=$1
[ -n "$exact" ] && pattern="^($1)\$"
status=1
for dir in /proc/[0-9]*; do
    name=
    read -r name < "$dir/comm" 2>/dev/null || continue
    [ "${dir#/proc/}" = "$$" ] && continue
    if printf '%s\n' "$name" | grep -Eq -- "$pattern"; then
        echo "${dir#/proc/}"
        status=0
    fi
done
exit $status
"""

IPCS = r"""#!/bin/sh
# ipcs for a busybox without it: lists the System V shared memory segments (ipcs -m) of the
# IPC namespace, from /proc/sysvipc/shm.
case "$1" in
    ""|-m) ;;
    *) echo "ipcs: only -m is supported here" >&2; exit 1 ;;
esac
echo
echo "------ Shared Memory Segments --------"
echo "key        shmid      owner      perms      bytes      nattch"
awk 'NR > 1 { printf "0x%08x %-10s %-10s %-10s %-10s %-10s\n", $1 < 0 ? $1 + 4294967296 : $1,
              $2, $8, $3, $4, $7 }' /proc/sysvipc/shm
"""

HTTPD = """#!/bin/sh
# Apache httpd stand-in: serves /usr/local/apache2/htdocs on port 80 with busybox httpd.
echo "httpd: busybox httpd standing in for Apache httpd, serving on port 80" >&2
exec httpd -f -p 80 -h /usr/local/apache2/htdocs
"""

PAUSE = """#!/bin/sh
# pause stand-in: does nothing until it is told to stop.
trap 'exit 0' TERM INT
while :; do sleep 3600 & wait $!; done
"""

# A setuid-root copy of busybox that runs `id` keeping its effective uid (busybox.conf's
# [SUID] table; the file is root's and 0600, so only an exec that really became root reads
# it): with no_new_privs the kernel ignores the setuid bit and `id -u` prints the caller's uid.
NONEWPRIVS_CONF = b"[SUID]\nid = ssx 0.0\n"
NONEWPRIVS_CMD = 'echo "Effective uid: $(/usr/local/bin/id -u)"'


def _predefined_group() -> list[File]:
    # uid 1000 is default-user, in group-defined-in-image (gid 50000), as upstream's image.
    passwd = "".join(line + "\n" for line in PASSWD.splitlines()
                     if not line.startswith("user:"))
    passwd += "default-user:x:1000:1000:Linux User,,,:/home/default-user:/bin/sh\n"
    group = "".join(line + "\n" for line in GROUP.splitlines()
                    if not line.startswith(("user:", "users:")))
    group += "users:x:100:\ndefault-user:x:1000:\ngroup-defined-in-image:x:50000:default-user\n"
    return [File("etc/passwd", passwd.encode()), File("etc/group", group.encode()),
            File("home/default-user", None, 0o755, 1000, 1000)]


@dataclass(frozen=True)
class StandIn:
    """One image: the references critest pulls, what the image must do, and how it is made."""

    references: tuple[str, ...]
    purpose: str
    files: tuple[File, ...] = ()
    cmd: tuple[str, ...] = ("sh",)
    entrypoint: tuple[str, ...] = ()
    user: str = ""
    setuid_busybox: str = ""  # path of a setuid-root copy of busybox, if any


def stand_ins() -> list[StandIn]:
    """Every stand-in, in push order."""
    tagged = [StandIn((f"{STAGING}/test-image-{n}:latest",), f"file /test-image-{n}",
                      (File(f"test-image-{n}", b""),)) for n in ("1", "2", "3")]
    users = [
        StandIn((f"{STAGING}/test-image-user-{name}:latest",), f"USER {user}", user=user)
        for name, user in (("uid", "1002"), ("username", "www-data"),
                           ("uid-group", "1003:1004"), ("username-group", "www-data:1004"))
    ]
    return [
        StandIn((f"{E2E}/busybox:1.29-2",), "the default test image: busybox with pgrep, ipcs",
                (_script("bin/pgrep", PGREP), _script("bin/ipcs", IPCS))),
        StandIn((f"{E2E}/nginx:1.14-2",), "web server on port 80, pid file, 'master process'",
                tuple(_web_server(80)), cmd=("/usr/sbin/nginx", "master process")),
        StandIn((f"{STAGING}/hostnet-nginx-{_architecture()}:latest",),
                "web server on port 12003 (run on the host's network)",
                tuple(_web_server(12003)), cmd=("/usr/sbin/nginx", "master process")),
        StandIn((f"{E2E}/httpd:2.4.39-4",), "web server on port 80 that logs 'httpd'",
                (_script("usr/local/bin/httpd-foreground", HTTPD),
                 File("usr/local/apache2/htdocs/index.html", b"<html>It works!</html>\n")),
                cmd=("httpd-foreground",)),
        StandIn((f"{E2E}/nonewprivs:1.3",),
                "prints 'Effective uid: N' through a setuid-root helper",
                (File("etc/busybox.conf", NONEWPRIVS_CONF, 0o600),),
                cmd=("/bin/sh", "-c", NONEWPRIVS_CMD), setuid_busybox="usr/local/bin/id"),
        StandIn(("registry.k8s.io/pause:3.9", "k8s.gcr.io/pause:3.9"),
                "pause (one image under both registries)", (_script("pause", PAUSE),),
                cmd=(), entrypoint=("/pause",)),
        *tagged,
        StandIn((f"{STAGING}/test-image-latest:latest",), "file /test-image-latest",
                (File("test-image-latest", b""),)),
        StandIn((f"{STAGING}/test-image-digest:latest",),
                "file /test-image-digest (critest pins the upstream digest: cannot match)",
                (File("test-image-digest", b""),)),
        StandIn(tuple(f"{STAGING}/test-image-tags:{t}" for t in ("1", "2", "3")),
                "one image under three tags", (File("same-image", b""),)),
        StandIn((f"{STAGING}/test-image-tag:test",), "file /test", (File("test", b""),)),
        StandIn((f"{STAGING}/test-image-tag:all",), "file /all", (File("all", b""),)),
        *users,
        StandIn((f"{STAGING}/test-image-predefined-group:latest",),
                "USER 1000 (default-user), member of group 50000 in /etc/group",
                tuple(_predefined_group()), user="1000"),
    ]


def split_reference(reference: str) -> tuple[str, str, str]:
    """``registry.k8s.io/e2e-test-images/busybox:1.29-2`` -> (domain, repository, tag)."""
    domain, rest = reference.split("/", 1)
    repo, tag = rest.rsplit(":", 1)
    return domain, repo, tag


# -- building --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Blob:
    """Content addressed by its digest."""

    media_type: str
    data: bytes

    @property
    def digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.data).hexdigest()

    def descriptor(self) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": len(self.data)}


@dataclass(frozen=True)
class Image:
    """A built image: its layers, config and manifest."""

    layers: tuple[Blob, ...]
    config: Blob
    manifest: Blob


def _gzip(data: bytes) -> bytes:
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as gz:
        gz.write(data)
    return out.getvalue()


def _layer_tar(entries: Iterable[File], setuid_busybox: str, busybox: Path) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        made: set[str] = set()

        def add(entry: File) -> None:
            parts = entry.path.split("/")
            for i in range(1, len(parts)):  # parents first, as a layer lists them
                parent = "/".join(parts[:i])
                if parent not in made:
                    made.add(parent)
                    tar.addfile(_tarinfo(File(parent, None, 0o755)))
            made.add(entry.path)
            info = _tarinfo(entry)
            tar.addfile(info, io.BytesIO(entry.content) if entry.content is not None else None)

        for entry in entries:
            add(entry)
        if setuid_busybox:
            add(File(setuid_busybox, busybox.read_bytes(), 0o4755))
    return out.getvalue()


def _tarinfo(entry: File) -> tarfile.TarInfo:
    info = tarfile.TarInfo(entry.path)
    info.mtime = MTIME
    info.uid, info.gid = entry.uid, entry.gid
    info.uname = info.gname = "root" if entry.uid == 0 else ""
    info.mode = entry.mode
    if entry.content is None:
        info.type = tarfile.DIRTYPE
    else:
        info.size = len(entry.content)
    return info


def base_layer(busybox: Path = BUSYBOX) -> tuple[Blob, str]:
    """The bundled busybox rootfs as a gzip layer, and its diff ID.

    Its applets become hard links to /bin/busybox, as in upstream's busybox images, so a
    masked path such as /bin/ls masks that applet alone, not busybox itself.
    """
    with tempfile.TemporaryDirectory() as tmp:
        rootfs = write_rootfs(Path(tmp) / "rootfs.tar", busybox)
        out = io.BytesIO()
        with tarfile.open(rootfs) as src, \
                tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as dst:
            for info in src.getmembers():
                if info.issym() and info.linkname == "/bin/busybox":
                    info.type, info.linkname, info.mode = tarfile.LNKTYPE, "bin/busybox", 0o755
                dst.addfile(info, src.extractfile(info) if info.isreg() else None)
        raw = out.getvalue()
    return Blob(OCI_LAYER, _gzip(raw)), "sha256:" + hashlib.sha256(raw).hexdigest()


def build(stand_in: StandIn, base: tuple[Blob, str], busybox: Path = BUSYBOX) -> Image:
    """The image of one stand-in on top of ``base`` (from :func:`base_layer`)."""
    raw = _layer_tar(stand_in.files, stand_in.setuid_busybox, busybox)
    own = Blob(OCI_LAYER, _gzip(raw))
    diff_ids = [base[1], "sha256:" + hashlib.sha256(raw).hexdigest()]
    config: dict[str, Any] = {"Env": [PATH_ENV], "WorkingDir": "/"}
    if stand_in.cmd:
        config["Cmd"] = list(stand_in.cmd)
    if stand_in.entrypoint:
        config["Entrypoint"] = list(stand_in.entrypoint)
    if stand_in.user:
        config["User"] = stand_in.user
    doc = {
        "created": CREATED,
        "architecture": _architecture(),
        "os": "linux",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": CREATED, "created_by": "servin.devtools.busybox"},
                    {"created": CREATED, "created_by": f"servin.devtools.critest_images: "
                                                      f"{stand_in.purpose}"}],
    }
    config_blob = Blob(OCI_CONFIG, json.dumps(doc, sort_keys=True).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config_blob.descriptor(),
        "layers": [base[0].descriptor(), own.descriptor()],
    }
    return Image((base[0], own), config_blob,
                 Blob(OCI_MANIFEST, json.dumps(manifest, sort_keys=True).encode()))


def _architecture() -> str:
    import platform

    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


# -- pushing ---------------------------------------------------------------------------------


def push(registry: str, repo: str, tag: str, image: Image) -> None:
    """Push ``image`` as ``registry/repo:tag`` over plain HTTP (the distribution v2 API)."""
    import httpx

    with httpx.Client(base_url=f"http://{registry}", timeout=60) as http:
        for blob in (*image.layers, image.config):
            if http.head(f"/v2/{repo}/blobs/{blob.digest}").status_code == 200:
                continue
            start = http.post(f"/v2/{repo}/blobs/uploads/")
            start.raise_for_status()
            # The upload URL carries the registry's own state in its query: append to it.
            location = start.headers["Location"]
            sep = "&" if "?" in location else "?"
            done = http.put(f"{location}{sep}digest={blob.digest}", content=blob.data,
                            headers={"Content-Type": "application/octet-stream"})
            done.raise_for_status()
        reply = http.put(f"/v2/{repo}/manifests/{tag}", content=image.manifest.data,
                         headers={"Content-Type": OCI_MANIFEST})
        reply.raise_for_status()


def push_all(registry: str, busybox: Path = BUSYBOX,
             only: Iterable[str] | None = None) -> dict[str, str]:
    """Build and push every stand-in (or those with a reference in ``only``); returns
    reference -> manifest digest."""
    wanted = set(only) if only is not None else None
    base = base_layer(busybox)
    pushed: dict[str, str] = {}
    for stand_in in stand_ins():
        refs = [r for r in stand_in.references if wanted is None or r in wanted]
        if not refs:
            continue
        image = build(stand_in, base, busybox)
        for ref in refs:
            _, repo, tag = split_reference(ref)
            push(registry, repo, tag, image)
            pushed[ref] = image.manifest.digest
    return pushed


# -- configuration snippets ------------------------------------------------------------------


def servin_mirrors(registry: str) -> str:
    """The ``config.toml`` lines that send Servin's pulls of the mirrored registries to
    ``registry`` (plain HTTP)."""
    lines = ["[registries]", f'insecure = ["{registry}"]', "", "[registries.mirrors]"]
    lines += [f'"{domain}" = ["http://{registry}"]' for domain in MIRRORED]
    return "\n".join(lines) + "\n"


def containerd_mirrors(registry: str) -> str:
    """The same for containerd 1.6's CRI plugin (config version 2)."""
    lines = []
    for domain in MIRRORED:
        lines += [f'[plugins."io.containerd.grpc.v1.cri".registry.mirrors."{domain}"]',
                  f'  endpoint = ["http://{registry}"]']
    return "\n".join(lines) + "\n"


def registry_config(directory: Path, port: int) -> Path:
    """A docker-registry (distribution 2.x) config storing under ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "config.yml"
    config.write_text("\n".join([
        "version: 0.1",
        "log:",
        "  level: warn",
        "  accesslog:",
        "    disabled: true",
        "storage:",
        "  filesystem:",
        f"    rootdirectory: {directory / 'data'}",
        "  delete:",
        "    enabled: true",
        "http:",
        f"  addr: 127.0.0.1:{port}",
        "  secret: servin-critest-images",
    ]) + "\n")
    return config


def main(argv: list[str] | None = None) -> int:
    """CLI: list, serve-registry, push, mirrors."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="the references stood in for, and what each image does")
    serve = sub.add_parser("serve-registry", help="run Debian's docker-registry on 127.0.0.1")
    serve.add_argument("directory", type=Path)
    serve.add_argument("--port", type=int, default=5000)
    push_cmd = sub.add_parser("push", help="build every stand-in and push it")
    push_cmd.add_argument("--registry", required=True, help="HOST:PORT (plain HTTP)")
    push_cmd.add_argument("--busybox", type=Path, default=BUSYBOX)
    mirrors = sub.add_parser("mirrors", help="print the mirror configuration")
    mirrors.add_argument("--registry", required=True)
    mirrors.add_argument("--for", dest="target", choices=("servin", "containerd"),
                         default="servin")
    args = parser.parse_args(argv)
    if args.command == "list":
        for stand_in in stand_ins():
            print(f"{', '.join(stand_in.references)}\n    {stand_in.purpose}")
    elif args.command == "serve-registry":
        config = registry_config(args.directory, args.port)
        # Replaced by the registry itself: its pid is this command's, for a plain `kill`.
        os.execvp("docker-registry", ["docker-registry", "serve", str(config)])
    elif args.command == "push":
        for ref, digest in push_all(args.registry, args.busybox).items():
            print(f"{ref} {digest}")
    else:
        text = servin_mirrors if args.target == "servin" else containerd_mirrors
        print(text(args.registry), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
