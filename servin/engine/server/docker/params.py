"""Reading a Docker API request's parameters as dockerd reads them.

Query values (``bool_value`` is docker's ``BoolValue``: anything but "", 0, no, false, none
is true), ``filters`` in both JSON forms, ``since``/``until`` timestamps, the
``X-Registry-Auth`` header and JSON request bodies with a size limit.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from servin.engine.images.registry.auth import Credentials
from servin.engine.server.docker.http import Request
from servin.errors import InvalidArgument

# The largest JSON body read whole (a container create with every option is a few KB).
JSON_BODY_LIMIT = 4 * 1024 * 1024

_FALSE = frozenset({"", "0", "no", "false", "none"})


def bool_value(req: Request, key: str, default: bool = False) -> bool:
    """docker's ``BoolValueOrDefault``: ``default`` when absent, else false only for
    "", "0", "no", "false", "none" (any case, surrounding spaces ignored)."""
    values = req.query.get(key)
    if values is None:
        return default
    return values[0].strip().lower() not in _FALSE


def int_value(req: Request, key: str, default: int) -> int:
    """An integer query value (``default`` when absent or empty); 400 when not a number."""
    value = req.query_value(key)
    if value == "":
        return default
    try:
        return int(value, 10)
    except ValueError:
        raise InvalidArgument(f"invalid value for {key!r}: {value!r} is not an integer") \
            from None


def string_map(body: dict[str, Any], key: str, what: str) -> dict[str, str]:
    """A body field mapping strings to strings (labels, options); absent or null: empty."""
    value = body.get(key) or {}
    if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise InvalidArgument(f"invalid {what}: {key} must map strings to strings")
    return dict(value)


def terminal_size(req: Request) -> tuple[int, int]:
    """``h`` and ``w`` of a resize request as (rows, cols); 0 where absent."""
    rows = int_value(req, "h", 0)
    cols = int_value(req, "w", 0)
    if rows < 0 or cols < 0:
        raise InvalidArgument("invalid terminal size")
    return rows, cols


def parse_filters(text: str) -> dict[str, list[str]]:
    """docker's ``filters`` query value: ``{"label":{"a=b":true}}`` (the CLI's map form) or
    ``{"label":["a=b"]}`` (docker-py's and old clients' list form); "" is no filter."""
    if text == "":
        return {}
    try:
        raw = json.loads(text)
    except ValueError:
        raise InvalidArgument("invalid filter") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise InvalidArgument("invalid filter")
    out: dict[str, list[str]] = {}
    for key, values in raw.items():
        if isinstance(values, dict) and all(isinstance(v, bool) for v in values.values()):
            out[key] = list(values)
        elif isinstance(values, list) and all(isinstance(v, str) for v in values):
            out[key] = list(dict.fromkeys(values))
        elif values is None:
            out[key] = []
        else:
            raise InvalidArgument("invalid filter")
    return out


def filters(req: Request, accepted: frozenset[str] | set[str] | None = None
            ) -> dict[str, list[str]]:
    """The request's ``filters``; with ``accepted``, an unknown key is docker's
    ``invalid filter 'key'`` (400)."""
    out = parse_filters(req.query_value("filters"))
    if accepted is not None:
        for key in out:
            if key not in accepted:
                raise InvalidArgument(f"invalid filter '{key}'")
    return out


def parse_timestamp(key: str, value: str) -> int | None:
    """A ``since``/``until`` value (Unix seconds, optionally ``.nanoseconds``, as the docker
    client sends it) as nanoseconds since the epoch; None when empty."""
    if value == "":
        return None
    seconds, dot, fraction = value.partition(".")
    try:
        sec = int(seconds, 10)
        nanos = int(fraction, 10) if dot else 0
    except ValueError:
        raise InvalidArgument(f"invalid value for '{key}': {value!r} is not a Unix timestamp") \
            from None
    if dot:
        if not 0 < len(fraction) <= 9 or nanos < 0:
            raise InvalidArgument(f"invalid value for '{key}': {value!r}")
        nanos *= 10 ** (9 - len(fraction))
    return sec * 1_000_000_000 + (nanos if sec >= 0 else -nanos)


def timestamp(req: Request, key: str) -> int | None:
    """The request's ``key`` query value as a timestamp (see ``parse_timestamp``)."""
    return parse_timestamp(key, req.query_value(key))


@dataclass(frozen=True)
class RegistryAuth:
    """docker's AuthConfig, as sent in ``X-Registry-Auth`` or to ``POST /auth``."""

    username: str = ""
    password: str = ""
    auth: str = ""  # base64 of "username:password" (what config.json stores)
    email: str = ""
    server_address: str = ""
    identity_token: str = ""
    registry_token: str = ""

    @classmethod
    def from_json(cls, data: Any, what: str = "X-Registry-Auth header") -> RegistryAuth:
        """From the decoded JSON object; InvalidArgument naming ``what`` when malformed."""
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise InvalidArgument(f"invalid {what}: expected a JSON object")
        fields = {"username": "username", "password": "password", "auth": "auth",
                  "email": "email", "serveraddress": "server_address",
                  "identitytoken": "identity_token", "registrytoken": "registry_token"}
        kwargs: dict[str, str] = {}
        for key, value in data.items():
            name = fields.get(key.lower())
            if name is None or value is None:
                continue
            if not isinstance(value, str):
                raise InvalidArgument(f"invalid {what}: {key} must be a string")
            kwargs[name] = value
        auth = cls(**kwargs)
        if auth.auth and not auth.username:
            # config.json's "auth" field: base64("user:password").
            try:
                user, _, password = base64.b64decode(auth.auth).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                raise InvalidArgument(f"invalid {what}: bad auth field") from None
            auth = cls(**{**kwargs, "username": user, "password": password})
        return auth

    @property
    def empty(self) -> bool:
        """True when it carries no credentials at all."""
        return not (self.username or self.password or self.identity_token
                    or self.registry_token)

    def credentials(self) -> Credentials:
        """The engine's registry credentials (for login, pull and push)."""
        return Credentials(username=self.username, password=self.password,
                           identity_token=self.identity_token,
                           registry_token=self.registry_token)


def decode_registry_auth(value: str) -> RegistryAuth:
    """``X-Registry-Auth``: base64url (padding optional; standard base64 accepted too) of a
    JSON AuthConfig; "" is anonymous. 400 ``invalid X-Registry-Auth header`` otherwise."""
    value = value.strip()
    if not value:
        return RegistryAuth()
    text = value.replace("+", "-").replace("/", "_")
    text += "=" * (-len(text) % 4)
    try:
        raw = base64.urlsafe_b64decode(text)
        data = json.loads(raw)
    except (binascii.Error, ValueError):
        raise InvalidArgument("invalid X-Registry-Auth header: not base64-encoded JSON") \
            from None
    return RegistryAuth.from_json(data)


def registry_auth(req: Request) -> RegistryAuth:
    """The request's ``X-Registry-Auth`` credentials (anonymous when absent)."""
    return decode_registry_auth(req.header("x-registry-auth"))


def check_json_content_type(req: Request, has_body: bool) -> None:
    """docker's CheckForJSON: a body must be ``application/json`` (no type is fine when
    there is no body)."""
    content_type = req.header("content-type")
    if not content_type and not has_body:
        return
    mime = content_type.split(";", 1)[0].strip().lower()
    if not mime:
        raise InvalidArgument(f"malformed Content-Type header ({content_type})")
    if mime != "application/json":
        raise InvalidArgument(
            f"unsupported Content-Type header ({content_type}): must be 'application/json'")


async def read_json(req: Request, *, limit: int = JSON_BODY_LIMIT, default: Any = None,
                    check_type: bool = True) -> Any:
    """The request body as JSON (docker's ReadJSON): ``default`` when the body is empty, 400
    with a clear message when it is not JSON, has trailing content or exceeds ``limit``."""
    body = await req.body(limit)
    if check_type:
        check_json_content_type(req, bool(body))
    if not body.strip():
        return default
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidArgument("invalid JSON: the request body is not UTF-8") from None
    decoder = json.JSONDecoder()
    try:
        value, end = decoder.raw_decode(text, _skip_space(text, 0))
    except json.JSONDecodeError as exc:
        raise InvalidArgument(f"invalid JSON: {exc.msg} at line {exc.lineno} column "
                              f"{exc.colno}") from None
    if _skip_space(text, end) != len(text):
        raise InvalidArgument("unexpected content after JSON")
    return value


async def read_json_object(req: Request, *, limit: int = JSON_BODY_LIMIT) -> dict[str, Any]:
    """The body as a JSON object ({} when empty); 400 when it is another JSON type."""
    value = await read_json(req, limit=limit, default={})
    if not isinstance(value, dict):
        raise InvalidArgument(f"invalid JSON: expected an object, got {_json_type(value)}")
    return value


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array"


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos
