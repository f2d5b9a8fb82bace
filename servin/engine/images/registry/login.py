"""``login``: check credentials against a registry (the client stores them, not the daemon)."""

from __future__ import annotations

from servin.engine.images.registry import httplib
from servin.engine.images.registry.auth import Credentials, fetch_token, parse_challenges
from servin.engine.images.registry.client import Registries, registry_message
from servin.errors import InvalidArgument, PermissionDenied, Unavailable
from servin.reference import DEFAULT_DOMAIN, LEGACY_DOMAIN


def registry_host(server: str) -> str:
    """The registry a login names: ``https://index.docker.io/v1/`` and ``""`` are docker.io."""
    host = server.strip()
    for prefix in ("https://", "http://"):
        host = host.removeprefix(prefix)
    host = host.split("/", 1)[0]
    if host in ("", LEGACY_DOMAIN, "registry-1.docker.io"):
        return DEFAULT_DOMAIN
    if any(c in host for c in " @?#"):
        raise InvalidArgument(f"invalid registry address {server!r}")
    return host


async def login(registries: Registries, server: str, creds: Credentials) -> str:
    """Verify ``creds`` with the registry; return its refresh token when it gave one.

    Raises PermissionDenied with one clear line when the registry refuses them.
    """
    domain = registry_host(server)
    if not creds.username and not creds.identity_token:
        raise InvalidArgument("login: a username is required")
    endpoint = await registries.origin(domain)
    http = registries.http(endpoint.host)
    hx = httplib.load()
    try:
        resp = await http.get(f"{endpoint.base}/v2/")
    except hx.HTTPError as exc:
        raise Unavailable(f"login to {domain}: cannot reach {endpoint.host}: {exc}") from exc
    if resp.status_code == 200:
        return ""  # the registry needs no credentials at all
    if resp.status_code != 401:
        raise Unavailable(f"login to {domain}: {registry_message(resp)} "
                          f"(HTTP {resp.status_code})")
    challenges = parse_challenges(resp.headers.get("www-authenticate", ""))
    bearer = next((c for c in challenges if c.scheme == "bearer"), None)
    if bearer is not None:
        realm_host = hx.URL(bearer.params.get("realm", "")).netloc.decode() or endpoint.host
        _, _, refresh = await fetch_token(registries.http(realm_host), bearer, [], creds, domain)
        return refresh
    if any(c.scheme == "basic" for c in challenges):
        try:
            resp = await http.get(f"{endpoint.base}/v2/",
                                  headers={"Authorization": creds.basic_header()})
        except hx.HTTPError as exc:
            raise Unavailable(f"login to {domain}: cannot reach {endpoint.host}: {exc}") \
                from exc
        if resp.status_code in (401, 403):
            raise PermissionDenied(f"login to {domain} failed: unauthorized: incorrect "
                                   "username or password")
        if resp.status_code != 200:
            raise Unavailable(f"login to {domain}: {registry_message(resp)} "
                              f"(HTTP {resp.status_code})")
        return ""
    raise Unavailable(f"login to {domain}: the registry asks for an unsupported "
                      "authentication scheme")
