"""Which daemon to talk to, how its address is spelled, and how TLS reaches it.

``resolve_target`` is the one place the CLI and the console decide where to connect, in
docker's order: ``-H/--host``, then ``--context``, then ``$SERVIN_HOST``, then
``$SERVIN_CONTEXT``, then the current context (``servin context use``), then the default
socket. (``-H`` and ``--context`` together are an error.) Addresses themselves are parsed in
``servin.client.addresses``; contexts are read (lazily: ``ps -H`` does not pay for them) from
``servin.client.contexts``, which depends on addresses only, so no module imports back.
"""

from __future__ import annotations

import os
from typing import NamedTuple

from servin.client.addresses import DEFAULT_HOST, TLSConfig, parse_host
from servin.errors import InvalidArgument

HOST_ENV = "SERVIN_HOST"
CONTEXT_ENV = "SERVIN_CONTEXT"
TLS_VERIFY_ENV = "SERVIN_TLS_VERIFY"
CERT_PATH_ENV = "SERVIN_CERT_PATH"


class Target(NamedTuple):
    """Where a client connects: the address, TLS settings, and where that choice came from."""

    url: str
    tls: TLSConfig | None = None
    context: str = ""  # the context it came from, "" when -H/$SERVIN_HOST/the default
    source: str = "default"  # flag, env, context, default


def resolve_host(flag: str | None = None) -> str:
    """The address to use for ``flag`` (or the environment/contexts): see ``resolve_target``."""
    return resolve_target(flag).url


def resolve_target(
    host: str | None = None,
    context: str | None = None,
    tls: TLSConfig | None = None,
) -> Target:
    """The daemon to use given the global flags (``-H``, ``--context``, the ``--tls*`` flags).

    ``tls`` (from the flags) applies to whichever host is chosen; without it, a context's own
    TLS settings apply to that context's host, and ``$SERVIN_TLS_VERIFY`` turns TLS on with
    the files in ``$SERVIN_CERT_PATH``.
    """
    if host and context:
        raise InvalidArgument("conflicting options: either specify --host or --context, not both")
    target: Target
    if host:
        target = Target(_normalise(host), source="flag")
    elif context:
        target = _from_context(context, "flag")
    elif env_host := os.environ.get(HOST_ENV):
        target = Target(_normalise(env_host), source="env")
    elif env_context := os.environ.get(CONTEXT_ENV):
        target = _from_context(env_context, "env")
    else:
        from servin.client.contexts import ContextStore

        current = ContextStore().current()
        target = _from_context(current, "context") if current != "default" else Target(DEFAULT_HOST)
    if tls is None and target.tls is None:
        tls = tls_from_env()
    if tls is not None:
        target = Target(target.url, tls.check(), target.context, target.source)
    if target.tls is not None and not target.url.startswith("tcp://"):
        raise InvalidArgument(f"TLS applies to tcp:// hosts only, not {target.url}")
    return target


def tls_from_env() -> TLSConfig | None:
    """TLS settings from ``$SERVIN_TLS_VERIFY`` and ``$SERVIN_CERT_PATH`` (None if unset)."""
    if os.environ.get(TLS_VERIFY_ENV, "") in ("", "0", "false"):
        return None
    return default_tls(verify=True)


def default_tls(verify: bool, ca: str = "", cert: str = "", key: str = "") -> TLSConfig:
    """A TLSConfig whose unset files default to ``ca.pem``, ``cert.pem``, ``key.pem`` in
    ``$SERVIN_CERT_PATH`` (else the config directory), where those files exist."""
    from servin.client.contexts import config_dir

    base = str(os.environ.get(CERT_PATH_ENV) or config_dir())

    def pick(given: str, name: str) -> str:
        if given:
            return given
        candidate = os.path.join(base, name)
        return candidate if os.path.isfile(candidate) else ""

    ca = pick(ca, "ca.pem")
    if not cert and not key:  # the default pair, only when both files are there
        cert, key = pick("", "cert.pem"), pick("", "key.pem")
        if not (cert and key):
            cert = key = ""
    return TLSConfig(ca=ca, cert=cert, key=key, verify=verify)


def _from_context(name: str, source: str) -> Target:
    from servin.client.contexts import ContextStore

    ctx = ContextStore().get(name)
    return Target(ctx.host, ctx.tls, ctx.name, source)


def _normalise(url: str) -> str:
    parse_host(url)  # validate early: a bad -H is a usage error, not a connect failure
    return f"unix://{url}" if url.startswith("/") else url
