"""Exec on the Docker API: create, start (hijacked or detached), resize, inspect."""

from __future__ import annotations

from typing import Any

from servin.engine.containers.execs import ExecRecord
from servin.engine.engine import CoreAPI
from servin.engine.semantics import create as docker_create
from servin.engine.semantics.create import bool_field
from servin.engine.server.docker import params
from servin.engine.server.docker.attach import relay_hijacked
from servin.engine.server.docker.http import Request, Response
from servin.engine.server.docker.responses import json_response
from servin.engine.server.docker.router import Router
from servin.engine.server.docker.streams import STDOUT, encode_frame
from servin.errors import Conflict, InvalidArgument, ServinError


def console_size(body: dict[str, Any]) -> tuple[int, int]:
    """``ConsoleSize`` [height, width] (API >= 1.42), (0, 0) when absent."""
    size = body.get("ConsoleSize")
    if size is None:
        return 0, 0
    if (not isinstance(size, list) or len(size) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0
                       for v in size)):
        raise InvalidArgument("invalid ConsoleSize: expected [height, width]")
    return size[0], size[1]


def exec_document(record: ExecRecord) -> dict[str, Any]:
    """docker's ExecInspectResponse."""
    return {
        "CanRemove": False,
        "ContainerID": record.container_id,
        "DetachKeys": record.detach_keys,
        "ExitCode": record.exit_code if record.started and not record.running else None,
        "ID": record.id,
        "OpenStderr": record.attach_stderr,
        "OpenStdin": record.attach_stdin,
        "OpenStdout": record.attach_stdout,
        "ProcessConfig": {
            "arguments": list(record.cmd[1:]),
            "entrypoint": record.cmd[0] if record.cmd else "",
            "privileged": record.privileged,
            "tty": record.tty,
            "user": record.user,
        },
        "Running": record.running,
        "Pid": record.pid,
    }


class ExecRoutes:
    """POST /containers/{name}/exec, /exec/{id}/start, /exec/{id}/resize, GET /exec/{id}/json."""

    def __init__(self, core: CoreAPI) -> None:
        self.core = core

    def register(self, router: Router) -> None:
        """Declare the routes."""
        router.add("POST", "/containers/{name}/exec", self.create)
        router.add("POST", "/exec/{id}/start", self.start)
        router.add("POST", "/exec/{id}/resize", self.resize)
        router.add("GET", "/exec/{id}/json", self.inspect)

    async def create(self, req: Request) -> Response:
        """POST /containers/{name}/exec with docker's ExecConfig."""
        body = await params.read_json_object(req)
        cmd = docker_create.string_list(body.get("Cmd"), "Cmd")
        if not cmd:
            raise InvalidArgument("No exec command specified")
        env = docker_create.string_list(body.get("Env"), "Env")
        for key in ("User", "WorkingDir", "DetachKeys"):
            if not isinstance(body.get(key) or "", str):
                raise InvalidArgument(f"invalid {key}: expected a string")
        stdin = bool_field(body, "AttachStdin")
        record = await self.core.execs.create(
            req.params["name"], cmd, env=env, user=body.get("User") or "",
            working_dir=body.get("WorkingDir") or "", tty=bool_field(body, "Tty"),
            attach_stdin=stdin, attach_stdout=bool_field(body, "AttachStdout"),
            attach_stderr=bool_field(body, "AttachStderr"),
            privileged=bool_field(body, "Privileged"),
            detach_keys=body.get("DetachKeys") or "")
        return json_response({"Id": record.id}, 201)

    async def start(self, req: Request) -> Response | None:
        """POST /exec/{id}/start {"Detach", "Tty", "ConsoleSize"}: hijacked unless Detach."""
        body = await params.read_json_object(req)
        detach = bool_field(body, "Detach")
        rows, cols = console_size(body)
        record = await self.core.execs.inspect(req.params["id"])
        if detach:
            await self.core.execs.start(record.id, detach=True, rows=rows, cols=cols)
            return Response(200)
        if record.started:
            raise Conflict(f"exec {record.id} has already been started")
        conn = await req.hijack(multiplexed=not record.tty)
        try:
            session = await self.core.execs.start(record.id, rows=rows, cols=cols)
        except ServinError as exc:
            # As dockerd: a start that fails after the upgrade is told on stdout; the exit
            # code (127 not found, 126 cannot invoke) is the exec's, for inspect.
            message = exc.message.encode("utf-8", "replace") + b"\r\n"
            await conn.writer.write(message if record.tty else encode_frame(STDOUT, message))
            return None
        assert session is not None
        try:
            detached = await relay_hijacked(session, conn, record.tty)
            if not detached:
                # As dockerd: the stream ends once the process has, so the client's inspect
                # right after it finds the exit code.
                await session.exit_code()
            session = None
        finally:
            if session is not None:
                await session.close()
        return None

    async def resize(self, req: Request) -> Response:
        """POST /exec/{id}/resize?h=&w="""
        rows, cols = params.terminal_size(req)
        await self.core.execs.resize(req.params["id"], rows, cols)
        return Response(200, content_type="text/plain; charset=utf-8")

    async def inspect(self, req: Request) -> Response:
        """GET /exec/{id}/json"""
        record = await self.core.execs.inspect(req.params["id"])
        return json_response(exec_document(record))
