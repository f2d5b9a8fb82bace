"""``servin context ...``: named daemon endpoints (unix, tcp with TLS, ssh), as docker's."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from servin.cli.flagsyntax import DockerGroup
from servin.cli.options import add_commands, format_option
from servin.errors import InvalidArgument

if TYPE_CHECKING:
    from servin.client.addresses import TLSConfig
    from servin.client.contexts import Context


def _tls_options(f: Any) -> Any:
    for decorator in reversed(
        [
            click.option("--tls", is_flag=True, default=None,
                         help="Use TLS without verifying the daemon (tcp:// hosts)"),
            click.option("--tlsverify", is_flag=True, default=None,
                         help="Use TLS and verify the daemon's certificate"),
            click.option("--tlscacert", metavar="FILE", help="CA to verify the daemon with"),
            click.option("--tlscert", metavar="FILE", help="TLS client certificate"),
            click.option("--tlskey", metavar="FILE", help="TLS client key"),
            click.option("--docker", "docker_spec", metavar="SPEC",
                         help="docker's form: host=URL,ca=FILE,cert=FILE,key=FILE,"
                         "skip-tls-verify=BOOL"),
        ]
    ):
        f = decorator(f)
    return f


def _docker_spec(spec: str) -> dict[str, str]:
    """docker's ``--docker "host=...,ca=..."`` endpoint spec as a dict."""
    out: dict[str, str] = {}
    for item in filter(None, (p.strip() for p in spec.split(","))):
        key, sep, value = item.partition("=")
        if not sep or key not in ("host", "ca", "cert", "key", "skip-tls-verify"):
            raise InvalidArgument(
                f"--docker: unknown or malformed field {item!r} "
                "(host, ca, cert, key, skip-tls-verify)"
            )
        out[key] = value
    return out


def _tls(
    base: TLSConfig | None,
    tls: bool | None,
    tlsverify: bool | None,
    ca: str | None,
    cert: str | None,
    key: str | None,
) -> TLSConfig | None:
    """The context's TLS settings: ``base`` (update) changed by the flags given."""
    from servin.client.addresses import TLSConfig

    if base is None and not (tls or tlsverify or ca or cert or key):
        return None
    current = base or TLSConfig(verify=False)

    def absolute(path: str | None, old: str) -> str:
        return str(Path(path).absolute()) if path else old

    verify = current.verify
    if tlsverify or ca:
        verify = True
    if tls and not tlsverify and not ca:
        verify = False
    return TLSConfig(
        ca=absolute(ca, current.ca),
        cert=absolute(cert, current.cert),
        key=absolute(key, current.key),
        verify=verify,
    ).check()


def _merge_spec(
    spec: str | None, host: str | None, values: dict[str, Any]
) -> tuple[str | None, dict[str, Any]]:
    if not spec:
        return host, values
    parsed = _docker_spec(spec)
    if host and parsed.get("host"):
        raise InvalidArgument("give the host either with --host or inside --docker, not both")
    values = dict(values)
    for name, flag in (("ca", "tlscacert"), ("cert", "tlscert"), ("key", "tlskey")):
        if parsed.get(name):
            values[flag] = parsed[name]
    if parsed.get("skip-tls-verify", "").lower() in ("true", "1"):
        values["tls"] = True  # encrypted, the daemon unverified
    elif any(parsed.get(n) for n in ("ca", "cert", "key")):
        values["tlsverify"] = True  # verified (against the system CAs when no ca= is given)
    return host or parsed.get("host"), values


@click.command("create")
@click.option("--host", "-H", "host", metavar="URL",
              help="Daemon address: unix:///path, tcp://host:port, ssh://user@host[:port]")
@click.option("--description", default="", help="Description of the context")
@click.option("--from", "from_", metavar="NAME", help="Copy the endpoint of this context")
@_tls_options
@click.argument("name")
def context_create(
    host: str | None, description: str, from_: str | None, name: str, docker_spec: str | None,
    **flags: Any,
) -> None:
    """Create a context."""
    from servin.client.contexts import Context, ContextStore, check_name

    check_name(name)
    store = ContextStore()
    host, flags = _merge_spec(docker_spec, host, flags)
    base_tls = None
    if from_:
        if host:
            raise InvalidArgument("--from and --host cannot be used together")
        source = store.get(from_)
        host, base_tls = source.host, source.tls
    if not host:
        raise InvalidArgument("a context needs --host URL (or --from NAME)")
    tls = _tls(base_tls, flags.get("tls"), flags.get("tlsverify"), flags.get("tlscacert"),
               flags.get("tlscert"), flags.get("tlskey"))
    store.create(Context(name, _host(host), description, tls))
    click.echo(name)
    click.echo(f"Successfully created context {name!r}", err=True)


@click.command("update")
@click.option("--host", "-H", "host", metavar="URL", help="New daemon address")
@click.option("--description", default=None, help="New description")
@_tls_options
@click.argument("name")
def context_update(
    host: str | None, description: str | None, name: str, docker_spec: str | None, **flags: Any
) -> None:
    """Update a context."""
    from servin.client.contexts import Context, ContextStore

    store = ContextStore()
    old = store.get(name)
    host, flags = _merge_spec(docker_spec, host, flags)
    tls = _tls(old.tls, flags.get("tls"), flags.get("tlsverify"), flags.get("tlscacert"),
               flags.get("tlscert"), flags.get("tlskey"))
    store.update(Context(
        name,
        _host(host) if host else old.host,
        old.description if description is None else description,
        tls,
    ))
    click.echo(name)
    click.echo(f"Successfully updated context {name!r}", err=True)


def _host(url: str) -> str:
    from servin.client.addresses import parse_host

    parse_host(url)
    return f"unix://{url}" if url.startswith("/") else url


def _row(ctx: Context, current: str) -> dict[str, Any]:
    return {
        "Name": ctx.name,
        "Description": ctx.description,
        "ServinEndpoint": ctx.host,
        "TLS": "verify" if ctx.tls and ctx.tls.verify else ("yes" if ctx.tls else ""),
        "Current": ctx.name == current,
    }


@click.command("ls")
@click.option("-q", "--quiet", is_flag=True, help="Only show context names")
@format_option
def context_ls(quiet: bool, fmt: str | None) -> None:
    """List contexts (the one in use is marked with *)."""
    import os

    from servin.cli.output import print_rows
    from servin.client.contexts import ContextStore
    from servin.client.hosts import CONTEXT_ENV

    store = ContextStore()
    current = click.get_current_context().find_root().params.get("context") or os.environ.get(
        CONTEXT_ENV) or store.current()
    rows = [_row(c, current) for c in store.list()]
    if not fmt and not quiet:
        for row in rows:
            if row["Current"]:
                row["Name"] += " *"
    print_rows(
        [("NAME", "Name"), ("DESCRIPTION", "Description"), ("SERVIN ENDPOINT", "ServinEndpoint"),
         ("TLS", "TLS")],
        rows, fmt, quiet_key="Name", quiet=quiet,
    )


@click.command("use")
@click.argument("name")
def context_use(name: str) -> None:
    """Set the current context."""
    import os

    from servin.client.contexts import ContextStore
    from servin.client.hosts import HOST_ENV

    ContextStore().use(name)
    click.echo(name)
    click.echo(f'Current context is now "{name}"', err=True)
    if os.environ.get(HOST_ENV):
        click.echo(f"Warning: ${HOST_ENV} is set and overrides the current context", err=True)


@click.command("rm")
@click.option("-f", "--force", is_flag=True, help="Remove the context even if it is in use")
@click.argument("names", nargs=-1, required=True)
def context_rm(force: bool, names: tuple[str, ...]) -> None:
    """Remove one or more contexts."""
    from servin.client.contexts import ContextStore
    from servin.errors import ServinError

    store = ContextStore()
    failed: ServinError | None = None
    for name in names:
        try:
            store.remove(name, force=force)
        except ServinError as exc:
            if failed is not None:
                click.echo(f"Error: {failed.message}", err=True)
            failed = exc
            continue
        click.echo(name)
    if failed is not None:
        raise failed


@click.command("inspect")
@click.option(
    "-f", "--format", "fmt", metavar="FORMAT", help="Format the output using a Go template"
)
@click.argument("names", nargs=-1)
def context_inspect(fmt: str | None, names: tuple[str, ...]) -> None:
    """Display detailed information on one or more contexts (default: the current one)."""
    from servin.cli.output import print_objects
    from servin.client.contexts import ContextStore

    store = ContextStore()
    current = _current_name(store)
    print_objects([store.get(n).to_dict(n == current) for n in (names or (current,))], fmt)


@click.command("show")
def context_show() -> None:
    """Print the name of the context in use."""
    from servin.client.contexts import ContextStore

    click.echo(_current_name(ContextStore()))


def _current_name(store: Any) -> str:
    """The context the invocation uses (``--context``, $SERVIN_CONTEXT, or the current one)."""
    import os

    from servin.client.hosts import CONTEXT_ENV

    params = click.get_current_context().find_root().params
    return params.get("context") or os.environ.get(CONTEXT_ENV) or store.current()


@click.group(cls=DockerGroup)
def context() -> None:
    """Manage contexts (named daemon endpoints)."""


add_commands(
    context,
    (
        (context_create, ("create",)),
        (context_ls, ("ls", "list")),
        (context_use, ("use",)),
        (context_rm, ("rm", "remove")),
        (context_inspect, ("inspect",)),
        (context_show, ("show",)),
        (context_update, ("update",)),
    ),
)
