"""``servin completion bash|zsh|fish``, and the live names shells complete from the daemon.

The scripts are click's: the shell calls ``servin`` back with ``_SERVIN_COMPLETE`` set and
the words typed so far. Commands and flags complete from the command tree; arguments that name
containers, images, volumes, networks or contexts complete from the daemon (or the contexts
file). ``LazyGroup`` hands every command it loads during completion to ``attach_completers``,
which picks the completer from the argument's name, so commands added later get completion
by naming their arguments as the others do. A daemon that cannot be reached, or does not
implement a list call, completes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import click
from click.shell_completion import CompletionItem

if TYPE_CHECKING:
    from servin.client.sync import Client

COMPLETE_VAR = "_SERVIN_COMPLETE"
SHELLS = ("bash", "zsh", "fish")
CALL_TIMEOUT = 3.0  # seconds: a shell must not hang on a slow or far daemon

Completer = Callable[[click.Context, click.Parameter, str], list[CompletionItem]]


def _names(ctx: click.Context, fetch: Callable[[Client], list[str]]) -> list[str]:
    from servin.cli.session import target
    from servin.client.sync import Client
    from servin.errors import ServinError

    try:
        with Client(target(ctx)) as client:
            return fetch(client)
    except ServinError:
        return []


def _containers(client: Client) -> list[str]:
    from servin.api.servin.v1 import containers_pb2

    reply = client.containers.List(
        containers_pb2.ListContainersRequest(all=True), timeout=CALL_TIMEOUT
    )
    return [c.name for c in reply.containers]


def _images(client: Client) -> list[str]:
    from servin.api.servin.v1 import images_pb2
    from servin.reference import familiar

    reply = client.images.List(images_pb2.ListImagesRequest(), timeout=CALL_TIMEOUT)
    return sorted({familiar(t) for i in reply.images for t in i.repo_tags})


def _volumes(client: Client) -> list[str]:
    from servin.api.servin.v1 import volumes_pb2

    reply = client.volumes.List(volumes_pb2.ListVolumesRequest(), timeout=CALL_TIMEOUT)
    return [v.name for v in reply.volumes]


def _networks(client: Client) -> list[str]:
    from servin.api.servin.v1 import networks_pb2

    reply = client.networks.List(networks_pb2.ListNetworksRequest(), timeout=CALL_TIMEOUT)
    return [n.name for n in reply.networks]


def _from_daemon(*fetchers: Callable[[Client], list[str]]) -> Completer:
    def complete(
        ctx: click.Context, param: click.Parameter, incomplete: str
    ) -> list[CompletionItem]:
        def fetch(client: Client) -> list[str]:
            from servin.errors import ServinError

            out: list[str] = []
            for fetcher in fetchers:
                try:
                    out += fetcher(client)
                except ServinError:  # unreachable, or UNIMPLEMENTED: nothing from this one
                    continue
            return out

        given = ctx.params.get(param.name or "") if param.nargs != 1 else None
        already = set(given or ())  # rm a b <TAB> does not offer a and b again
        return [
            CompletionItem(n) for n in dict.fromkeys(_names(ctx, fetch))
            if n.startswith(incomplete) and n not in already
        ]

    return complete


def _contexts(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    from servin.cli.session import apply_config_dir
    from servin.client.contexts import ContextStore
    from servin.errors import ServinError

    apply_config_dir(ctx)
    try:
        names = [c.name for c in ContextStore().list()]
    except ServinError:
        return []
    return [CompletionItem(n) for n in names if n.startswith(incomplete)]


containers = _from_daemon(_containers)
images = _from_daemon(_images)
volumes = _from_daemon(_volumes)
networks = _from_daemon(_networks)
objects = _from_daemon(_containers, _images, _volumes, _networks)

# Argument names -> what they name, by the group the command sits in ("" = top level or any).
_BY_NAME: dict[str, Completer] = {
    "container": containers,
    "containers": containers,
    "container_name": containers,
    "image": images,
    "images": images,
    "source": images,  # tag SOURCE TARGET
    "target": images,
    "volume": volumes,
    "volumes": volumes,
    "network": networks,
    "networks": networks,
}
_BY_GROUP: dict[str, Completer] = {
    "volume": volumes,
    "network": networks,
    "context": _contexts,
    "image": images,
    "container": containers,
}
# Commands whose NAME argument is a new name, not an existing object.
_CREATES = {"create", "rename"}


# --filter keys (and fixed values) by command: docker's, as the daemon accepts them.
_PS_FILTERS = ("id", "name", "label", "status", "exited", "ancestor", "before", "since",
               "volume", "network", "health", "is-task")
_FILTER_KEYS: dict[tuple[str, str], tuple[str, ...]] = {
    ("", "ps"): _PS_FILTERS,
    ("container", "ls"): _PS_FILTERS,
    ("container", "ps"): _PS_FILTERS,
    ("container", "list"): _PS_FILTERS,
    ("", "ls"): ("dangling", "reference", "label", "before", "since"),  # images is image ls
    ("image", "ls"): ("dangling", "reference", "label", "before", "since"),
    ("", "events"): ("type", "event", "container", "image", "volume", "network", "pod",
                     "label"),
    ("system", "events"): ("type", "event", "container", "image", "volume", "network", "pod",
                           "label"),
}
_FILTER_VALUES = {
    "status": ("created", "restarting", "running", "removing", "paused", "exited", "dead"),
    "health": ("starting", "healthy", "unhealthy", "none"),
    "is-task": ("true", "false"),
    "dangling": ("true", "false"),
    "type": ("container", "image", "volume", "network", "daemon", "pod"),
}


def _filters(keys: tuple[str, ...]) -> Completer:
    def complete(
        ctx: click.Context, param: click.Parameter, incomplete: str
    ) -> list[CompletionItem]:
        key, sep, value = incomplete.partition("=")
        if not sep:
            return [CompletionItem(f"{k}=") for k in keys if k.startswith(key)]
        return [CompletionItem(f"{key}={v}") for v in _FILTER_VALUES.get(key, ())
                if v.startswith(value)]

    return complete


def completer_for(group: str, command: str, param: str) -> Completer | None:
    """The completer of argument ``param`` of ``group command`` (None: no live names)."""
    if command in _CREATES and param in ("name", "new_name"):
        return None
    if command == "create" and group in _BY_GROUP and group not in ("container",):
        return None
    if param in ("name", "names") and group in _BY_GROUP:
        return _BY_GROUP[group]
    if param in ("names",) and command == "inspect":
        return objects
    if group == "context" and param in ("name", "names"):
        return _contexts
    return _BY_NAME.get(param)


def attach_completers(command: click.Command, group: str = "") -> None:
    """Give ``command``'s arguments (and its subcommands', for plain groups) live completion."""
    keys = _FILTER_KEYS.get((group, command.name or ""))
    for param in command.params:
        if keys and param.name == "filters" and param._custom_shell_complete is None:
            param._custom_shell_complete = _filters(keys)
        if isinstance(param, click.Argument) and param._custom_shell_complete is None:
            # click keeps a parameter's shell_complete callback here; set once per parameter
            completer = completer_for(group, command.name or "", param.name or "")
            if completer is not None:
                param._custom_shell_complete = completer
    if isinstance(command, click.Group):  # a LazyGroup's lazy entries arrive via its hook
        for sub in command.commands.values():
            attach_completers(sub, command.name or "")


@click.command()
@click.argument("shell", type=click.Choice(SHELLS))
@click.pass_context
def completion(ctx: click.Context, shell: str) -> None:
    """Print the shell completion script for bash, zsh or fish.

    \b
    bash:  servin completion bash > /etc/bash_completion.d/servin
    zsh:   servin completion zsh > "${fpath[1]}/_servin"
    fish:  servin completion fish > ~/.config/fish/completions/servin.fish
    """
    from click.shell_completion import get_completion_class

    cls = get_completion_class(shell)
    if cls is None:  # not reachable: click.Choice checked the name
        raise click.BadParameter(shell)
    root = ctx.find_root()
    script = cls(root.command, {}, root.info_name or "servin", COMPLETE_VAR).source()
    click.echo(script)
