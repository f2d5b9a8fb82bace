"""The distribution v2 API client: endpoints, schemes, authentication and retries.

``Registries`` is owned by the engine: it knows the daemon's registry settings (mirrors,
insecure hosts, the certs directory), keeps one connection pool per endpoint and caches
bearer tokens. ``RepositorySession`` talks to one repository with one set of credentials:
it authenticates on the first 401 and retries transient failures with back-off.

Schemes: a registry is reached over HTTPS with verified certificates. Only hosts configured
insecure and the local host (localhost, 127.0.0.0/8, ::1) may fall back to plain HTTP, and
only insecure hosts skip certificate verification.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from servin.engine.config import RegistryConfig
from servin.engine.images.registry import httplib, tls
from servin.engine.images.registry.auth import (
    Challenge,
    Credentials,
    TokenCache,
    fetch_token,
    parse_challenges,
)
from servin.errors import InvalidArgument, NotFound, PermissionDenied, ServinError, Unavailable
from servin.reference import DEFAULT_DOMAIN

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

DOCKER_HUB_API = "registry-1.docker.io"
USER_AGENT = "servin"
RETRIES = 3  # attempts of one request in all
BACKOFF = 0.5  # seconds before the first retry, doubling
_RETRY_STATUS = {408, 429, 500, 502, 503, 504}
_TIMEOUT = 30.0  # seconds for any step of a request
_CONNECT_TIMEOUT = 10.0


@dataclass(frozen=True)
class Endpoint:
    """One base URL serving a registry's API: the origin itself or a mirror of it."""

    base: str  # "https://host:port" (no trailing slash)
    mirror: bool = False

    @property
    def host(self) -> str:
        """``host[:port]`` of the URL (the certs.d directory name)."""
        return urlsplit(self.base).netloc


def is_local(host: str) -> bool:
    """Whether ``host`` (``name[:port]``) is this machine: plain HTTP is allowed there."""
    name = host
    if name.startswith("["):
        name = name[1:].split("]", 1)[0]
    elif name.count(":") == 1:
        name = name.split(":", 1)[0]
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class Registries:
    """Registry access for the whole engine: settings, pools, schemes and tokens."""

    def __init__(self, config: RegistryConfig) -> None:
        self.config = config
        self.tokens = TokenCache()
        self._clients: dict[tuple[str, bool], httpx.AsyncClient] = {}
        self._contexts: dict[str, ssl.SSLContext] = {}
        self._schemes: dict[str, str] = {}  # host -> "https" | "http", once probed

    def is_insecure(self, host: str) -> bool:
        """Whether the daemon's config names ``host`` (or its name without port) insecure."""
        bare = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
        return host in self.config.insecure or bare in self.config.insecure

    def api_host(self, domain: str) -> str:
        """The host serving ``domain``'s API (Docker Hub's lives elsewhere)."""
        return DOCKER_HUB_API if domain == DEFAULT_DOMAIN else domain

    def ssl_context(self, host: str) -> ssl.SSLContext:
        """The TLS settings for ``host``: certs.d's CAs and client certificates, and no
        verification for an insecure host (made once per host)."""
        ctx = self._contexts.get(host)
        if ctx is None:
            ctx = tls.ssl_context(self.config.certs_dir, host, verify=not self.is_insecure(host))
            self._contexts[host] = ctx
        return ctx

    def http(self, host: str) -> httpx.AsyncClient:
        """The connection pool for ``host`` (TLS settings from certs.d and the config)."""
        verify = not self.is_insecure(host)
        key = (host, verify)
        client = self._clients.get(key)
        if client is None:
            ctx = self.ssl_context(host)
            hx = httplib.load()
            client = hx.AsyncClient(
                verify=ctx,
                timeout=hx.Timeout(_TIMEOUT, connect=_CONNECT_TIMEOUT),
                follow_redirects=True,
                headers={"User-Agent": USER_AGENT},
                limits=hx.Limits(max_connections=16, max_keepalive_connections=8),
            )
            self._clients[key] = client
        return client

    async def origin(self, domain: str) -> Endpoint:
        """The origin endpoint of ``domain``, with its scheme probed once when HTTP is allowed."""
        host = self.api_host(domain)
        scheme = self._schemes.get(host)
        if scheme is None:
            scheme = "https"
            if self.is_insecure(host) or is_local(host):
                scheme = await self._probe(host)
            self._schemes[host] = scheme
        return Endpoint(f"{scheme}://{host}")

    async def _probe(self, host: str) -> str:
        """"https" when the host speaks TLS, else "http" (insecure and local hosts only)."""
        hx = httplib.load()
        try:
            await self.http(host).get(f"https://{host}/v2/")
            return "https"
        except hx.ConnectError as exc:
            cause = exc.__cause__ or exc.__context__
            if isinstance(cause, ssl.SSLCertVerificationError):
                # It does speak TLS: let the real request report the certificate problem.
                return "https"
            return "http"
        except hx.HTTPError:
            return "http"

    async def endpoints(self, domain: str, *, pull: bool) -> list[Endpoint]:
        """Where to send requests for ``domain``: its mirrors first when pulling, then itself."""
        out: list[Endpoint] = []
        if pull:
            for url in self.config.mirrors.get(domain, []):
                if not url.startswith(("http://", "https://")):
                    url = f"https://{url}"
                out.append(Endpoint(url.rstrip("/"), mirror=True))
        out.append(await self.origin(domain))
        return out

    def session(self, domain: str, path: str, creds: Credentials, endpoints: list[Endpoint],
                *, push: bool = False) -> RepositorySession:
        """A session on one repository (``path`` as in ``library/busybox``)."""
        return RepositorySession(self, domain, path, creds, endpoints, push=push)

    async def aclose(self) -> None:
        """Close every connection pool."""
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()


@dataclass
class RepositorySession:
    """Requests to one repository, authenticated and retried."""

    registries: Registries
    domain: str
    path: str
    creds: Credentials
    endpoints: list[Endpoint]
    push: bool = False
    extra_scopes: list[str] = field(default_factory=list)  # pull scopes of mount sources
    _auth: dict[str, str] = field(default_factory=dict)  # endpoint base -> Authorization
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one authentication at a time

    @property
    def scope(self) -> str:
        """The token scope this session needs."""
        return f"repository:{self.path}:{'pull,push' if self.push else 'pull'}"

    def url(self, endpoint: Endpoint, tail: str) -> str:
        """The full URL of ``/v2/<path>/<tail>`` (``tail`` may be an absolute URL)."""
        if tail.startswith(("http://", "https://")):
            return tail
        if tail.startswith("/"):
            return endpoint.base + tail
        return f"{endpoint.base}/v2/{self.path}/{tail}"

    def _creds_for(self, endpoint: Endpoint) -> Credentials:
        # The user's credentials belong to the origin: mirrors are asked anonymously.
        return Credentials() if endpoint.mirror else self.creds

    async def _authorize(self, endpoint: Endpoint, resp: httpx.Response,
                         sent: str | None) -> bool:
        """Handle a 401 to a request that carried ``sent``: prepare the Authorization header.

        Returns False when there is nothing more to try (then the 401 stands).
        """
        async with self._lock:
            current = self._auth.get(endpoint.base)
            if current is not None and current != sent:
                return True  # a concurrent request authenticated meanwhile: use its header
            return await self._authorize_locked(endpoint, resp, sent)

    async def _authorize_locked(self, endpoint: Endpoint, resp: httpx.Response,
                                previous: str | None) -> bool:
        creds = self._creds_for(endpoint)
        challenges = parse_challenges(resp.headers.get("www-authenticate", ""))
        bearer = next((c for c in challenges if c.scheme == "bearer"), None)
        basic = next((c for c in challenges if c.scheme == "basic"), None)
        if bearer is not None:
            if creds.registry_token:
                header = f"Bearer {creds.registry_token}"
            else:
                header = "Bearer " + await self._token(endpoint, bearer, creds)
        elif basic is not None and (creds.username or creds.password):
            header = creds.basic_header()
        else:
            return False
        if header == previous:
            return False  # the same credentials were refused already
        self._auth[endpoint.base] = header
        return True

    async def _token(self, endpoint: Endpoint, challenge: Challenge, creds: Credentials) -> str:
        scopes = [self.scope, *self.extra_scopes]
        key = (challenge.params.get("realm", ""), challenge.params.get("service", ""),
               " ".join(scopes) + "|" + creds.username)
        cached = self.registries.tokens.get(key)
        if cached:
            return cached
        token, expires, _ = await fetch_token(
            self.registries.http(urlsplit(challenge.params.get("realm", "")).netloc or
                                 endpoint.host),
            challenge, scopes, creds, self.domain)
        self.registries.tokens.put(key, token, expires)
        return token

    async def send(
        self,
        method: str,
        tail: str,
        *,
        endpoint: Endpoint | None = None,
        headers: dict[str, str] | None = None,
        params: Any = None,
        content: bytes | None = None,
        stream: bool = False,
        ok: tuple[int, ...] = (200,),
        what: str = "",
    ) -> httpx.Response:
        """One request with auth and retries; returns a response whose status is in ``ok``.

        With ``stream`` the body is not read yet: the caller must close the response.
        Raises NotFound on 404, PermissionDenied on 401/403, Unavailable otherwise.
        """
        endpoint = endpoint or self.endpoints[-1]
        http = self.registries.http(endpoint.host)
        hx = httplib.load()
        what = what or f"{method} {tail}"
        delay = BACKOFF
        authorized_once = False
        attempt = 0
        # A failing mirror is not worth waiting for: the next endpoint is tried at once.
        attempts = 1 if endpoint.mirror else RETRIES
        while True:
            attempt += 1
            hdrs = dict(headers or {})
            if endpoint.base in self._auth:
                hdrs["Authorization"] = self._auth[endpoint.base]
            request = http.build_request(method, self.url(endpoint, tail), headers=hdrs,
                                         params=params, content=content)
            try:
                resp = await http.send(request, stream=True)
            except hx.TransportError as exc:
                retry = isinstance(exc, hx.ConnectError | hx.ConnectTimeout) or \
                    method in ("GET", "HEAD")
                if retry and attempt < attempts:
                    log.debug("registry request failed, retrying",
                              extra={"url": str(request.url), "error": str(exc)})
                    await asyncio.sleep(delay)
                    delay *= 2
                    continue
                raise Unavailable(f"{what}: cannot reach {endpoint.host}: "
                                  f"{_describe(exc)}") from exc
            if resp.status_code in ok:
                if not stream:
                    await resp.aread()
                    await resp.aclose()
                return resp
            await resp.aread()
            await resp.aclose()
            if resp.status_code == 401 and not authorized_once:
                authorized_once = True
                if await self._authorize(endpoint, resp, hdrs.get("Authorization")):
                    attempt -= 1  # an auth round trip is not a failed attempt
                    continue
            if resp.status_code in _RETRY_STATUS and method in ("GET", "HEAD") \
                    and attempt < attempts:
                await asyncio.sleep(_retry_after(resp, delay))
                delay *= 2
                continue
            raise response_error(resp, what, self.domain)

    async def stream_bytes(self, resp: httpx.Response, chunk: int) -> AsyncIterator[bytes]:
        """The body of a streamed response in chunks of about ``chunk`` bytes (then closed)."""
        try:
            async for data in resp.aiter_bytes(chunk):
                yield data
        finally:
            await resp.aclose()


def _retry_after(resp: httpx.Response, default: float) -> float:
    value = resp.headers.get("retry-after", "")
    return min(float(value), 30.0) if value.isdigit() else default


def _describe(exc: BaseException) -> str:
    cause = exc.__cause__ or exc.__context__
    if isinstance(cause, ssl.SSLCertVerificationError):
        return f"certificate verify failed: {cause.verify_message}"
    text = str(exc) or type(exc).__name__
    return text


def registry_message(resp: httpx.Response) -> str:
    """The registry's own error text (``errors[].message``) or the HTTP reason."""
    try:
        body = resp.json()
        errors = body.get("errors") if isinstance(body, dict) else None
        if errors:
            parts = []
            for e in errors:
                code = str(e.get("code", "")).lower().replace("_", " ")
                msg = str(e.get("message", ""))
                parts.append(f"{code}: {msg}" if code and msg and code != msg else msg or code)
            return "; ".join(parts)
    except (ValueError, AttributeError):
        pass
    return resp.reason_phrase or f"HTTP {resp.status_code}"


def response_error(resp: httpx.Response, what: str, domain: str) -> ServinError:
    """The typed error for a failed registry response."""
    message = f"{what}: {registry_message(resp)}"
    if resp.status_code == 404:
        return NotFound(message)
    if resp.status_code == 401:
        return PermissionDenied(f"{what}: unauthorized: authentication required "
                                f"(servin login {domain})")
    if resp.status_code == 403:
        return PermissionDenied(f"{what}: denied: {registry_message(resp)}")
    if resp.status_code in (400, 405, 413, 415):
        return InvalidArgument(message)
    return Unavailable(f"{message} (HTTP {resp.status_code})")
