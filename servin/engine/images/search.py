"""``search``: repositories of a registry whose name contains a term, from its v2 catalog.

Registries that offer ``GET /v2/_catalog`` (the distribution registry, harbor, zot, ...) are
searched through it, page by page (``Link: <...>; rel="next"``), with the same credentials,
TLS and token flow as pulls (scope ``registry:catalog:*``). Docker Hub offers no catalog (its
search is a separate, Hub-only API): searching it is refused with a clear message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from servin.engine.images.registry.auth import Credentials
from servin.engine.images.registry.client import Registries, RepositorySession
from servin.errors import InvalidArgument, NotFound, ServinError, Unavailable
from servin.reference import DEFAULT_DOMAIN, is_domain

PAGE = 1000
MAX_PAGES = 100  # 100 000 repositories: far more than a search is useful for
_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')


@dataclass(frozen=True)
class SearchResult:
    """One repository found: its full name (``host/path``)."""

    name: str
    description: str = ""
    stars: int = 0
    official: bool = False


class _CatalogSession(RepositorySession):
    @property
    def scope(self) -> str:
        return "registry:catalog:*"


def split_term(term: str) -> tuple[str, str]:
    """``127.0.0.1:5000/busy`` -> ("127.0.0.1:5000", "busy"); a bare term is Docker Hub's."""
    first, sep, rest = term.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first, rest
    return DEFAULT_DOMAIN, term


async def search(registries: Registries, term: str, creds: Credentials,
                 limit: int = 25) -> list[SearchResult]:
    """Up to ``limit`` repositories of the term's registry whose name contains the term."""
    if not term:
        raise InvalidArgument("search: no search term given")
    domain, needle = split_term(term)
    if not is_domain(domain):
        raise InvalidArgument(f"search: invalid registry host {domain!r}")
    if domain == DEFAULT_DOMAIN:
        raise Unavailable(
            "Docker Hub offers no registry catalog, and Servin searches registries through "
            "their catalog: name the registry, e.g. `servin search 127.0.0.1:5000/busybox`")
    session = _CatalogSession(registries, domain, "", creds, [await registries.origin(domain)])
    found: list[SearchResult] = []
    url: str | None = f"/v2/_catalog?n={PAGE}"
    for _ in range(MAX_PAGES):
        if url is None:
            break
        try:
            resp = await session.send("GET", url, what="search")
        except NotFound:
            raise Unavailable(f"registry {domain} does not offer a catalog (GET /v2/_catalog "
                              "answered 404): it cannot be searched") from None
        except ServinError as exc:
            raise type(exc)(f"search {domain}: {exc.message}") from None
        try:
            names = resp.json().get("repositories") or []
        except ValueError:
            raise Unavailable(f"registry {domain} answered the catalog with no JSON") from None
        for name in names:
            if needle.lower() in str(name).lower():
                found.append(SearchResult(f"{domain}/{name}"))
                if len(found) >= limit:
                    return found
        match = _NEXT.search(resp.headers.get("link", ""))
        url = match.group(1) if match else None
    return found
