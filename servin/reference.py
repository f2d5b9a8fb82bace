"""Image references parsed and normalised as docker does (shared by the engine and the CLI).

``busybox`` is ``docker.io/library/busybox:latest``; ``localhost:5000/app@sha256:...`` keeps its
registry and digest. The grammar is the distribution project's reference grammar.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from servin.errors import InvalidArgument

DEFAULT_DOMAIN = "docker.io"
LEGACY_DOMAIN = "index.docker.io"
OFFICIAL_PREFIX = "library/"
DEFAULT_TAG = "latest"

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"

_PATH_RE = re.compile(rf"^{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*$")
_DOMAIN_RE = re.compile(rf"^{_DOMAIN}$")
_TAG_RE = re.compile(rf"^{_TAG}$")
_DIGEST_RE = re.compile(rf"^{_DIGEST}$")
_HEX64_RE = re.compile(r"^[0-9a-f]{64}$")
NAME_MAX = 255


@dataclass(frozen=True)
class Reference:
    """A normalised image reference."""

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def repository(self) -> str:
        """``domain/path``: the repository name without tag or digest."""
        return f"{self.domain}/{self.path}"

    @property
    def familiar_repository(self) -> str:
        """The repository as docker prints it: ``busybox`` rather than docker.io/library/busybox."""
        if self.domain == DEFAULT_DOMAIN:
            return self.path.removeprefix(OFFICIAL_PREFIX)
        return self.repository

    def __str__(self) -> str:
        out = self.repository
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out

    def familiar(self) -> str:
        """The short form docker shows: ``busybox:latest``, ``localhost:5000/app:1``."""
        out = self.familiar_repository
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out

    def with_tag(self, tag: str) -> Reference:
        """The same repository with another tag and no digest."""
        return Reference(self.domain, self.path, tag, None)


def parse_reference(text: str, *, default_tag: bool = True) -> Reference:
    """Parse and normalise ``text``; raise InvalidArgument with docker's wording when invalid.

    With ``default_tag`` a reference without tag or digest gets ``latest``.
    """
    if not text or text != text.strip():
        raise InvalidArgument(f"invalid reference format: {text!r}")
    if _HEX64_RE.match(text):
        raise InvalidArgument(
            f"invalid repository name ({text}), cannot specify 64-byte hexadecimal strings"
        )
    remainder = text
    digest = None
    if "@" in remainder:
        remainder, digest = remainder.split("@", 1)
        if not _DIGEST_RE.match(digest):
            raise InvalidArgument(f"invalid reference format: bad digest in {text!r}")
    tag = None
    # A tag follows the last ':' only when that ':' comes after the last '/'.
    colon = remainder.rfind(":")
    if colon > remainder.rfind("/"):
        remainder, tag = remainder[:colon], remainder[colon + 1 :]
        if not _TAG_RE.match(tag):
            raise InvalidArgument(f"invalid reference format: bad tag in {text!r}")
    domain, path = _split_domain(remainder)
    if not _DOMAIN_RE.match(domain):
        raise InvalidArgument(f"invalid reference format: bad registry in {text!r}")
    if not _PATH_RE.match(path):
        if path.lower() != path and _PATH_RE.match(path.lower()):
            raise InvalidArgument(
                f"invalid reference format: repository name ({path}) must be lowercase"
            )
        raise InvalidArgument(f"invalid reference format: {text!r}")
    if len(f"{domain}/{path}") > NAME_MAX:
        raise InvalidArgument(f"invalid reference format: repository name longer than {NAME_MAX}")
    if tag is None and digest is None and default_tag:
        tag = DEFAULT_TAG
    return Reference(domain, path, tag, digest)


def _split_domain(name: str) -> tuple[str, str]:
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first.lower() != first):
        domain, path = first, rest
    else:
        domain, path = DEFAULT_DOMAIN, name
    if domain == LEGACY_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = OFFICIAL_PREFIX + path
    return domain, path


def is_domain(text: str) -> bool:
    """Whether ``text`` is a registry host as references spell it (``host[:port]``, an
    IPv6 address in brackets), with a port that exists."""
    if not _DOMAIN_RE.match(text):
        return False
    _, colon, port = text.rpartition(":")
    return not colon or "]" in port or int(port) <= 65535


def looks_like_id(text: str) -> bool:
    """Whether ``text`` could be an image ID or ID prefix (``sha256:...`` or bare hex)."""
    hexpart = text.removeprefix("sha256:")
    return bool(hexpart) and len(hexpart) <= 64 and all(c in "0123456789abcdef" for c in hexpart)


def familiar(name: str) -> str:
    """The short form of a stored normalised name (``busybox:latest``); unparsable stays as is."""
    try:
        return parse_reference(name, default_tag=False).familiar()
    except InvalidArgument:
        return name
