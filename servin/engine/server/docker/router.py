"""Routes Docker Engine API requests to handlers, as dockerd's mux does.

Every route is served both under ``/vX.Y`` and without a version. A versioned request is
checked against the versions served (400 with dockerd's wording when too old or too new);
an unknown path or method is 404 ``page not found``. A handler's typed error becomes
``{"message": ...}`` with the HTTP status of ``servin.errors.ERROR_TABLE``.

Patterns: ``/containers/{name}/json`` (``{x}`` is one path segment) and
``/images/{name:path}/json`` (``{x:path}`` may contain slashes, docker's ``{name:.*}``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from servin.engine.server.docker.http import ClientGone, Request, Response
from servin.engine.server.docker.responses import error_response, servin_error_response
from servin.engine.server.docker.versions import API_VERSION, MIN_API_VERSION, compare_versions
from servin.errors import ServinError

log = logging.getLogger(__name__)

Handler = Callable[[Request], Awaitable[Response | None]]

_VERSIONED = re.compile(r"/v([0-9.]+)(/.*)", re.DOTALL)
_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(:path)?\}")


@dataclass(frozen=True)
class Route:
    """One declared route."""

    method: str
    pattern: str
    handler: Handler


class ResponseAborted(ClientGone):
    """A handler failed after its response had started: the connection is cut short."""


class Router:
    """The route table and the dispatcher the HTTP server calls for every request."""

    def __init__(self, *, api_version: str = API_VERSION,
                 min_version: str = MIN_API_VERSION) -> None:
        self.api_version = api_version
        self.min_version = min_version
        self._static: dict[tuple[str, str], Handler] = {}
        self._dynamic: dict[str, list[tuple[re.Pattern[str], Handler]]] = {}
        self._routes: list[Route] = []

    @property
    def routes(self) -> list[Route]:
        """Every declared route, in declaration order."""
        return list(self._routes)

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        """Serve ``method pattern`` (unversioned form, starting with ``/``) with ``handler``."""
        if not pattern.startswith("/"):
            raise ValueError(f"route pattern {pattern!r} must start with /")
        method = method.upper()
        self._routes.append(Route(method, pattern, handler))
        if "{" not in pattern:
            self._static[(method, pattern)] = handler
            return
        regex, pos = [], 0
        for m in _PARAM.finditer(pattern):
            regex.append(re.escape(pattern[pos:m.start()]))
            body = ".+" if m.group(2) else "[^/]+"
            regex.append(f"(?P<{m.group(1)}>{body})")
            pos = m.end()
        regex.append(re.escape(pattern[pos:]))
        compiled = re.compile("".join(regex), re.DOTALL)
        self._dynamic.setdefault(method, []).append((compiled, handler))

    def _match(self, method: str, path: str) -> tuple[Handler, dict[str, str]] | None:
        handler = self._static.get((method, path))
        if handler is not None:
            return handler, {}
        for regex, handler in self._dynamic.get(method, ()):
            m = regex.fullmatch(path)
            if m is not None:
                return handler, m.groupdict()
        return None

    async def __call__(self, req: Request) -> Response | None:
        """Dispatch one request (the HTTP server's application)."""
        path = req.raw_path
        version = ""
        if path.startswith("/v"):
            m = _VERSIONED.fullmatch(path)
            if m is not None:
                version, path = m.group(1), m.group(2)
        if req.method == "OPTIONS":
            return Response(200)  # dockerd answers every OPTIONS (CORS preflight)
        found = self._match(req.method, path)
        if found is None:
            return error_response(404, "page not found")
        if version:
            if compare_versions(version, self.min_version) < 0:
                return error_response(
                    400,
                    f"client version {version} is too old. Minimum supported API version is "
                    f"{self.min_version}, please upgrade your client to a newer version",
                    plain=True,
                )
            if compare_versions(version, self.api_version) > 0:
                return error_response(
                    400,
                    f"client version {version} is too new. Maximum supported API version is "
                    f"{self.api_version}",
                )
        handler, req.params = found
        req.path = path
        req.api_version = version or self.api_version
        try:
            return await handler(req)
        except ServinError as exc:
            if req.responded:
                log.warning("docker api: error after the response started",
                            extra={"path": req.raw_path, "error": exc.message})
                raise ResponseAborted(exc.message) from None
            return servin_error_response(exc)
