"""``servin pull``, ``push``, ``login`` and ``logout`` (and ``image pull|push``)."""

from __future__ import annotations

import sys

import click

from servin.cli.session import get_client
from servin.errors import InvalidArgument

_PROGRESS = click.Choice(["auto", "plain", "tty"])


@click.command("pull")
@click.option("--platform", default="", help="Pull this platform (os/arch[/variant])")
@click.option("-q", "--quiet", is_flag=True, help="Suppress verbose output")
@click.option("--progress", "progress_mode", type=_PROGRESS, default="auto",
              help="Progress output: auto (bars on a terminal), plain or tty")
@click.argument("reference")
def pull(platform: str, quiet: bool, progress_mode: str, reference: str) -> None:
    """Download an image from a registry."""
    from servin.cli import progress
    from servin.reference import parse_reference

    ref = parse_reference(reference)
    progress.show(get_client().pull(reference, platform), "quiet" if quiet else progress_mode)
    click.echo(str(ref))  # as docker, the full reference last (alone with -q)


@click.command("push")
@click.option("-q", "--quiet", is_flag=True, help="Suppress verbose output (print the digest)")
@click.option("--progress", "progress_mode", type=_PROGRESS, default="auto",
              help="Progress output: auto (bars on a terminal), plain or tty")
@click.argument("reference")
def push(quiet: bool, progress_mode: str, reference: str) -> None:
    """Upload an image to a registry."""
    from servin.cli import progress
    from servin.reference import parse_reference

    parse_reference(reference)
    last = progress.show(get_client().push(reference), "quiet" if quiet else progress_mode)
    if quiet and last is not None:
        click.echo(last.digest)


def pull_for_run(reference: str, platform: str = "", *, quiet: bool = False) -> None:
    """Pull an image ``run``/``create`` found missing, with progress on stderr as docker
    (none with ``quiet``)."""
    from servin.cli import progress

    mode = "quiet" if quiet else "tty" if sys.stderr.isatty() else "plain"
    progress.show(get_client().pull(reference, platform), mode, out=sys.stderr)


@click.command("login")
@click.option("-u", "--username", default="", help="Username")
@click.option("-p", "--password", default=None, help="Password")
@click.option("--password-stdin", is_flag=True, help="Take the password from stdin")
@click.argument("server", required=False, default="")
def login(username: str, password: str | None, password_stdin: bool, server: str) -> None:
    """Log in to a registry (credentials are checked, then stored for this user)."""
    from servin.client import credentials

    if password is not None and password_stdin:
        raise InvalidArgument("--password and --password-stdin are mutually exclusive")
    if password_stdin:
        if not username:
            raise InvalidArgument("must provide --username with --password-stdin")
        password = sys.stdin.read().rstrip("\r\n")
    if not username:
        if not sys.stdin.isatty():
            raise InvalidArgument("cannot ask for a username: stdin is not a terminal (use -u)")
        username = click.prompt("Username").strip()
    if password is None:
        if not sys.stdin.isatty():
            raise InvalidArgument("cannot ask for a password: stdin is not a terminal "
                                  "(use --password-stdin)")
        password = click.prompt("Password", hide_input=True)
    elif not password_stdin:
        click.echo("WARNING! Using --password via the CLI is insecure. Use --password-stdin.",
                   err=True)
    if not username or not password:
        raise InvalidArgument("username and password are required")
    host = credentials.server_key(server)
    reply = get_client().login(host, username, password)
    path = credentials.store(host, username, password, reply.identity_token)
    click.echo(f"Credentials saved in {path}", err=True)
    click.echo(reply.status)


@click.command("logout")
@click.argument("server", required=False, default="")
def logout(server: str) -> None:
    """Log out from a registry (forget its stored credentials)."""
    from servin.client import credentials

    host = credentials.server_key(server)
    if credentials.remove(host):
        click.echo(f"Removing login credentials for {host}")
    else:
        click.echo(f"Not logged in to {host}")


@click.command("search")
@click.option("--limit", type=int, default=25, show_default=True, help="Max number of results")
@click.option("-f", "--filter", "filters", multiple=True, metavar="KEY=VALUE",
              help="Filter output: stars=N, is-official=true|false")
@click.option("--format", "fmt", metavar="FORMAT", help="Pretty-print search using a Go template")
@click.option("--no-trunc", is_flag=True, help="Don't truncate output")
@click.argument("term")
def search(limit: int, filters: tuple[str, ...], fmt: str | None, no_trunc: bool,
           term: str) -> None:
    """Search a registry for images (its v2 catalog: TERM is REGISTRY/TEXT)."""
    from servin.api.servin.v1 import images_pb2
    from servin.cli.output import print_rows
    from servin.client import credentials
    from servin.errors import InvalidArgument

    if not 0 < limit <= 100:
        raise InvalidArgument("limit must be between 1 and 100")
    min_stars, official = 0, None
    for item in filters:
        key, _, value = item.partition("=")
        if key == "stars" and value.isdigit():
            min_stars = int(value)
        elif key == "is-official" and value.lower() in ("true", "false"):
            official = value.lower() == "true"
        else:
            raise InvalidArgument(f"invalid filter {item!r} (stars=N, is-official=true|false)")
    host = term.partition("/")[0]
    stored = credentials.get(host)
    reply = get_client().images.Search(images_pb2.SearchImagesRequest(
        term=term, limit=limit, auth=images_pb2.RegistryAuth(
            username=stored.username, password=stored.password,
            identity_token=stored.identity_token)))
    rows = [{"Name": r.name, "Description": r.description if no_trunc else r.description[:45],
             "StarCount": r.star_count, "IsOfficial": "[OK]" if r.is_official else ""}
            for r in reply.results
            if r.star_count >= min_stars and (official is None or r.is_official == official)]
    print_rows([("NAME", "Name"), ("DESCRIPTION", "Description"), ("STARS", "StarCount"),
                ("OFFICIAL", "IsOfficial")], rows, fmt)
