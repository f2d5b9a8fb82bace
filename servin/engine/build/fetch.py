"""``ADD <url>``: a file downloaded over HTTP(S) into the build's scratch directory.

The file is named after the URL's last path component; its modification time is the
``Last-Modified`` header's (when given). A daemon that cannot reach the server says so in
one line ("no network"), and ``--checksum`` is verified before the file is used.
"""

from __future__ import annotations

import email.utils
import hashlib
import os
import posixpath
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import httpx

from servin.engine.build.events import StepError

_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
_CHUNK = 1 << 20


def is_url(source: str) -> bool:
    """Whether an ADD source is a URL (rather than a context path)."""
    return source.startswith(("http://", "https://"))


def is_git(source: str) -> bool:
    """Whether an ADD source names a git repository (not supported)."""
    return source.startswith("git@") or (source.endswith(".git") and "://" in source)


@dataclass(frozen=True)
class Download:
    """A downloaded file."""

    path: Path
    name: str  # the file name the URL gives
    digest: str  # sha256 of the content
    mtime: float | None


def file_name(url: str) -> str:
    """The name ``ADD url dir/`` gives the file (the URL path's last component)."""
    path = urllib.parse.urlsplit(url).path
    name = posixpath.basename(path.rstrip("/"))
    return urllib.parse.unquote(name)


async def download(url: str, dest: Path, checksum: str = "") -> Download:
    """Fetch ``url`` into the file ``dest``; StepError when it cannot be had."""
    name = file_name(url)
    h = hashlib.sha256()
    try:
        async with httpx.AsyncClient(timeout=_TIMEOUT, follow_redirects=True) as client, \
                client.stream("GET", url) as response:
            if response.status_code >= 400:
                raise StepError(f"ADD {url}: the server answered {response.status_code} "
                                f"{response.reason_phrase}")
            fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            with os.fdopen(fd, "wb") as out:
                async for chunk in response.aiter_bytes(_CHUNK):
                    h.update(chunk)
                    out.write(chunk)
            modified = response.headers.get("last-modified", "")
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        raise StepError(f"ADD {url}: cannot reach the server (no network?): {exc}") from None
    except httpx.HTTPError as exc:
        raise StepError(f"ADD {url}: download failed: {exc}") from None
    mtime = None
    if modified:
        try:
            mtime = email.utils.parsedate_to_datetime(modified).timestamp()
        except (TypeError, ValueError):
            mtime = None
    digest = "sha256:" + h.hexdigest()
    if checksum and checksum != digest:
        raise StepError(f"ADD {url}: checksum mismatch: expected {checksum}, got {digest}")
    if mtime is not None:
        os.utime(dest, (mtime, mtime))
    return Download(dest, name, digest, mtime)
