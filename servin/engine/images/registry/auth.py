"""Registry authentication: credentials, ``WWW-Authenticate`` challenges and bearer tokens.

A registry answers an unauthenticated request with 401 and a challenge. ``Basic`` means the
credentials go on every request; ``Bearer realm=...,service=...,scope=...`` means a token
server hands out a short-lived token for the scope (anonymously, or with the credentials as
basic auth, or with an identity token as an OAuth2 refresh token).
"""

from __future__ import annotations

import base64
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from servin.engine.images.registry import httplib
from servin.errors import PermissionDenied, Unavailable

if TYPE_CHECKING:
    import httpx

_PARAM_RE = re.compile(r'([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))')
CLIENT_ID = "servin"


@dataclass(frozen=True)
class Credentials:
    """What the user gave for one registry (any field may be empty)."""

    username: str = ""
    password: str = ""
    identity_token: str = ""
    registry_token: str = ""

    @property
    def empty(self) -> bool:
        """True when there is nothing to authenticate with."""
        return not (self.username or self.password or self.identity_token or self.registry_token)

    def basic_header(self) -> str:
        """The ``Authorization: Basic`` value for username and password."""
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode()


@dataclass(frozen=True)
class Challenge:
    """One parsed ``WWW-Authenticate`` header."""

    scheme: str  # "bearer" or "basic" (lower case)
    params: dict[str, str]


def parse_challenges(header: str) -> list[Challenge]:
    """Parse a ``WWW-Authenticate`` value (one or more challenges) into its parts."""
    out: list[Challenge] = []
    pos = 0
    text = header.strip()
    while pos < len(text):
        m = re.match(r"\s*,?\s*([A-Za-z][A-Za-z0-9_-]*)\s*", text[pos:])
        if not m:
            break
        scheme = m.group(1).lower()
        pos += m.end()
        params: dict[str, str] = {}
        while pos < len(text):
            pm = _PARAM_RE.match(text, pos)
            if not pm:
                break
            params[pm.group(1).lower()] = (
                re.sub(r"\\(.)", r"\1", pm.group(2)) if pm.group(2) is not None else pm.group(3)
            )
            pos = pm.end()
            sep = re.match(r"\s*,\s*", text[pos:])
            if not sep:
                break
            # A comma followed by "word " (no '=') starts the next challenge.
            nxt = re.match(r"\s*,\s*[A-Za-z][A-Za-z0-9_-]*\s*(=?)", text[pos:])
            if nxt and not nxt.group(1):
                break
            pos += sep.end()
        out.append(Challenge(scheme, params))
    return out


@dataclass
class _Token:
    value: str
    expires: float


class TokenCache:
    """Bearer tokens by (realm, service, scope), reused until shortly before they expire."""

    def __init__(self) -> None:
        self._tokens: dict[tuple[str, str, str], _Token] = {}

    def get(self, key: tuple[str, str, str]) -> str | None:
        """A cached token still valid for at least 10 seconds."""
        token = self._tokens.get(key)
        if token is None or token.expires - 10 < time.monotonic():
            return None
        return token.value

    def put(self, key: tuple[str, str, str], value: str, expires_in: float) -> None:
        """Remember a token."""
        self._tokens[key] = _Token(value, time.monotonic() + max(expires_in, 30))


async def fetch_token(
    http: httpx.AsyncClient,
    challenge: Challenge,
    scopes: list[str],
    creds: Credentials,
    registry: str,
) -> tuple[str, float, str]:
    """Ask the challenge's token server for a token; return (token, expires_in, refresh).

    Raises PermissionDenied when the server refuses the credentials, Unavailable when it
    cannot be reached or answers nonsense.
    """
    hx = httplib.load()
    realm = challenge.params.get("realm", "")
    if not realm.startswith(("https://", "http://")):
        raise Unavailable(f"registry {registry} sent an invalid token realm {realm!r}")
    service = challenge.params.get("service", "")
    try:
        if creds.identity_token:
            # OAuth2 refresh-token grant, as docker does with an identity token.
            form = {"grant_type": "refresh_token", "refresh_token": creds.identity_token,
                    "client_id": CLIENT_ID, "service": service, "scope": " ".join(scopes)}
            resp = await http.post(realm, data=form)
        else:
            params: list[tuple[str, str | int | float | bool | None]] = (
                [("service", service)] if service else [])
            params += [("scope", s) for s in scopes]
            headers = {}
            if creds.username or creds.password:
                params.append(("account", creds.username))
                headers["Authorization"] = creds.basic_header()
            resp = await http.get(realm, params=params, headers=headers)
    except hx.HTTPError as exc:
        raise Unavailable(f"cannot reach the token server of {registry} ({realm}): {exc}") \
            from exc
    if resp.status_code in (401, 403):
        raise PermissionDenied(f"unauthorized: {registry}: incorrect username or password")
    if resp.status_code != 200:
        raise Unavailable(f"token server of {registry} answered {resp.status_code}")
    try:
        body = resp.json()
    except ValueError as exc:
        raise Unavailable(f"token server of {registry} sent an invalid answer") from exc
    token = body.get("token") or body.get("access_token")
    if not isinstance(token, str) or not token:
        raise Unavailable(f"token server of {registry} sent no token")
    expires = body.get("expires_in")
    return token, float(expires) if isinstance(expires, int | float) else 60.0, \
        str(body.get("refresh_token") or "")
