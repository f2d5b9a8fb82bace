"""TLS settings per registry: system CAs plus the files in ``<certs_dir>/HOST[:PORT]/``.

As docker does: every ``*.crt`` there is an extra CA; each ``NAME.cert`` with its ``NAME.key``
is a client certificate offered to the registry. A ``.cert`` without its ``.key`` (or the
reverse) is an error, so a half-configured directory is noticed rather than ignored.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from servin.errors import InvalidArgument


def host_dir(certs_dir: Path, host: str) -> Path | None:
    """The directory holding ``host``'s certificates, or None when there is none."""
    candidate = certs_dir / host
    return candidate if candidate.is_dir() else None


def ssl_context(certs_dir: Path, host: str, *, verify: bool = True) -> ssl.SSLContext:
    """An SSL context for ``host`` (``name[:port]``).

    ``verify=False`` (insecure registries only) accepts any server certificate but still
    offers the client certificates found for the host.
    """
    ctx = ssl.create_default_context()
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    directory = host_dir(certs_dir, host)
    if directory is None:
        return ctx
    try:
        entries = sorted(directory.iterdir())
        for entry in entries:
            if entry.suffix == ".crt" and verify:
                ctx.load_verify_locations(cafile=str(entry))
        for entry in entries:
            if entry.suffix == ".cert":
                key = entry.with_suffix(".key")
                if not key.exists():
                    raise InvalidArgument(f"client certificate {entry} has no key {key.name}")
                ctx.load_cert_chain(str(entry), str(key))
            elif entry.suffix == ".key" and not entry.with_suffix(".cert").exists():
                raise InvalidArgument(f"client key {entry} has no certificate "
                                      f"{entry.with_suffix('.cert').name}")
    except ssl.SSLError as exc:
        raise InvalidArgument(f"bad certificate in {directory}: {exc}") from exc
    except OSError as exc:
        raise InvalidArgument(f"cannot read {directory}: {exc}") from exc
    return ctx
