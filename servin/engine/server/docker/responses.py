"""Docker-shaped responses: JSON bodies as dockerd writes them, and errors from the one table."""

from __future__ import annotations

import json
from typing import Any

from servin.engine.server.docker.http import Response
from servin.errors import ServinError, mapping_for

JSON = "application/json"

# Compact, UTF-8, no HTML escaping: what Go's json.Encoder with SetEscapeHTML(false) writes.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False)


def dump_json(value: Any) -> bytes:
    """``value`` as one line of JSON ending in a newline (Go's ``Encoder.Encode``)."""
    return (_ENCODER.encode(value) + "\n").encode("utf-8", "replace")


def json_response(value: Any, status: int = 200) -> Response:
    """A JSON document as the whole response."""
    return Response(status, dump_json(value), content_type=JSON)


def no_content() -> Response:
    """204, docker's answer to a successful action with nothing to say."""
    return Response(204)


def error_response(status: int, message: str, *, plain: bool = False) -> Response:
    """``{"message": ...}`` with ``status``; ``plain`` = text, as dockerd answers clients
    older than API 1.24 (they would print JSON as it is)."""
    if plain:
        return Response(status, message.encode("utf-8", "replace") + b"\n",
                        content_type="text/plain; charset=utf-8",
                        headers=(("X-Content-Type-Options", "nosniff"),))
    return json_response({"message": message}, status)


def servin_error_response(error: ServinError, *, plain: bool = False) -> Response:
    """A typed error with the HTTP status ``ERROR_TABLE`` gives its kind."""
    return error_response(mapping_for(error).http_status, error.message, plain=plain)
