"""Files in and out of containers on the Docker API: archive GET/HEAD/PUT (``docker cp``),
export and changes (``docker diff``)."""

from __future__ import annotations

import base64
import json
import stat

from servin.engine.containers.files import PathStat
from servin.engine.engine import CoreAPI
from servin.engine.server.docker import params
from servin.engine.server.docker.http import Request, Response
from servin.engine.server.docker.responses import json_response
from servin.engine.server.docker.router import Router
from servin.engine.timefmt import format_ns
from servin.errors import InvalidArgument

TAR = "application/x-tar"
STAT_HEADER = "X-Docker-Container-Path-Stat"

# Go's os.FileMode type bits (what docker's PathStat.mode carries).
_GO_DIR = 1 << 31
_GO_SYMLINK = 1 << 27
_GO_DEVICE = 1 << 26
_GO_PIPE = 1 << 25
_GO_SOCKET = 1 << 24
_GO_SETUID = 1 << 23
_GO_SETGID = 1 << 22
_GO_CHARDEV = 1 << 21
_GO_STICKY = 1 << 20

# docker diff's kinds.
_KINDS = {"C": 0, "A": 1, "D": 2}


def go_file_mode(mode: int) -> int:
    """A Unix ``st_mode`` as Go's ``os.FileMode`` (type bits high, permissions low)."""
    out = stat.S_IMODE(mode) & 0o777
    kind = stat.S_IFMT(mode)
    out |= {stat.S_IFDIR: _GO_DIR, stat.S_IFLNK: _GO_SYMLINK, stat.S_IFIFO: _GO_PIPE,
            stat.S_IFSOCK: _GO_SOCKET, stat.S_IFBLK: _GO_DEVICE,
            stat.S_IFCHR: _GO_DEVICE | _GO_CHARDEV}.get(kind, 0)
    if mode & stat.S_ISUID:
        out |= _GO_SETUID
    if mode & stat.S_ISGID:
        out |= _GO_SETGID
    if mode & stat.S_ISVTX:
        out |= _GO_STICKY
    return out


def stat_header(s: PathStat) -> tuple[str, str]:
    """``X-Docker-Container-Path-Stat``: base64 of docker's ContainerPathStat JSON."""
    doc = {"name": s.name, "size": s.size, "mode": go_file_mode(s.mode),
           "mtime": format_ns(s.mtime_ns), "linkTarget": s.link_target}
    raw = json.dumps(doc, separators=(",", ":")).encode()
    return STAT_HEADER, base64.b64encode(raw).decode("ascii")


def _path(req: Request) -> str:
    path = req.query_value("path")
    if not path:
        raise InvalidArgument("path is required")
    return path


class ArchiveRoutes:
    """/containers/{name}/archive, /export, /changes."""

    def __init__(self, core: CoreAPI) -> None:
        self.core = core

    def register(self, router: Router) -> None:
        """Declare the routes."""
        router.add("HEAD", "/containers/{name}/archive", self.head)
        router.add("GET", "/containers/{name}/archive", self.get)
        router.add("PUT", "/containers/{name}/archive", self.put)
        router.add("GET", "/containers/{name}/export", self.export)
        router.add("GET", "/containers/{name}/changes", self.changes)

    async def head(self, req: Request) -> Response:
        """HEAD /containers/{name}/archive?path=: the stat header only."""
        found = await self.core.files.stat(req.params["name"], _path(req))
        return Response(200, content_type=TAR, headers=(stat_header(found),))

    async def get(self, req: Request) -> Response | None:
        """GET /containers/{name}/archive?path=: a tar of the path, its stat in a header."""
        stream = self.core.files.copy_from(req.params["name"], _path(req))
        try:
            first = await anext(stream)
            assert isinstance(first, PathStat)
            out = await req.stream(200, TAR, headers=(stat_header(first),))
            async for chunk in stream:
                assert isinstance(chunk, bytes)
                await out.write(chunk)
        finally:
            await stream.aclose()
        return None

    async def put(self, req: Request) -> Response:
        """PUT /containers/{name}/archive?path=&copyUIDGID=: extract the body's tar into the
        directory ``path``."""
        await self.core.files.copy_to(req.params["name"], _path(req), req.chunks(),
                                      preserve_owner=params.bool_value(req, "copyUIDGID"))
        return Response(200)

    async def export(self, req: Request) -> Response | None:
        """GET /containers/{name}/export: the root filesystem as a tar."""
        chunks = self.core.files.export(req.params["name"])
        first = await anext(chunks, b"")  # errors (no such container) before the status
        out = await req.stream(200, TAR)
        try:
            await out.write(first)
            async for chunk in chunks:
                await out.write(chunk)
        finally:
            await chunks.aclose()  # type: ignore[attr-defined]  # an async generator
        return None

    async def changes(self, req: Request) -> Response:
        """GET /containers/{name}/changes: docker diff's [{"Path", "Kind"}]."""
        found = await self.core.files.changes(req.params["name"])
        return json_response([{"Path": path, "Kind": _KINDS.get(kind, 0)}
                              for kind, path in found] or None)
