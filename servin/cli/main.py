"""The ``servin`` command: docker's command tree over the servin.v1 API."""

from __future__ import annotations

import sys

import click

from servin.cli.lazy import LazyGroup, describe
from servin.errors import ServinError

_IMAGE = "servin.cli.commands.images"
_SYSTEM = "servin.cli.commands.system"
_DAEMON = "servin.engine.server.command"  # lives with the server: the CLI never imports it
_CONTAINER = "servin.cli.commands.containers"
_RUN = "servin.cli.commands.run"
_INTERACTIVE = "servin.cli.commands.interactive"
_STATS = "servin.cli.commands.stats"
_VOLUME = "servin.cli.commands.volumes"
_FILES = "servin.cli.commands.files"
_REGISTRY = "servin.cli.commands.registry"
_BUILD = "servin.cli.commands.build"

TOP_LEVEL = {
    "daemon": describe(f"{_DAEMON}:daemon", "Run the Servin engine daemon"),
    "version": describe(f"{_SYSTEM}:version", "Show the Servin version information"),
    "info": describe(f"{_SYSTEM}:info", "Display system-wide information"),
    "system": describe(f"{_SYSTEM}:system", "Manage Servin (info, df, events, prune)"),
    "events": describe(f"{_SYSTEM}:events", "Get real time events from the daemon"),
    "image": describe(f"{_IMAGE}:image", "Manage images"),
    "build": describe(f"{_BUILD}:build", "Build an image from a Dockerfile"),
    "builder": describe(f"{_BUILD}:builder", "Manage builds"),
    "images": describe(f"{_IMAGE}:image_ls", "List images"),
    "rmi": describe(f"{_IMAGE}:image_rm", "Remove one or more images"),
    "import": describe(f"{_IMAGE}:image_import", "Import a root filesystem tarball as an image"),
    "tag": describe(f"{_IMAGE}:image_tag", "Create a tag TARGET that refers to SOURCE"),
    "history": describe(f"{_IMAGE}:image_history", "Show the history of an image"),
    "save": describe(f"{_IMAGE}:image_save", "Save one or more images to a tar archive"),
    "load": describe(f"{_IMAGE}:image_load", "Load images from a tar archive or STDIN"),
    "pull": describe(f"{_REGISTRY}:pull", "Download an image from a registry"),
    "push": describe(f"{_REGISTRY}:push", "Upload an image to a registry"),
    "login": describe(f"{_REGISTRY}:login", "Log in to a registry"),
    "search": describe(f"{_REGISTRY}:search", "Search a registry for images"),
    "logout": describe(f"{_REGISTRY}:logout", "Log out from a registry"),
    "container": describe(f"{_CONTAINER}:container", "Manage containers"),
    "run": describe(f"{_RUN}:run", "Create and run a new container from an image"),
    "create": describe(f"{_RUN}:create", "Create a new container"),
    "start": describe(f"{_CONTAINER}:start", "Start one or more stopped containers"),
    "stop": describe(f"{_CONTAINER}:stop", "Stop one or more running containers"),
    "restart": describe(f"{_CONTAINER}:restart", "Restart one or more containers"),
    "kill": describe(f"{_CONTAINER}:kill", "Kill one or more running containers"),
    "rm": describe(f"{_CONTAINER}:rm", "Remove one or more containers"),
    "ps": describe(f"{_CONTAINER}:ps", "List containers"),
    "logs": describe(f"{_CONTAINER}:logs", "Fetch the logs of a container"),
    "wait": describe(f"{_CONTAINER}:wait", "Block until containers stop, print their exit codes"),
    "inspect": describe(f"{_CONTAINER}:inspect", "Return low-level information on objects"),
    "exec": describe(f"{_INTERACTIVE}:exec_", "Execute a command in a running container"),
    "attach": describe(f"{_INTERACTIVE}:attach", "Attach to a running container's streams"),
    "stats": describe(f"{_STATS}:stats", "Display a live stream of container resource usage"),
    "top": describe(f"{_STATS}:top", "Display the running processes of a container"),
    "pause": describe(f"{_CONTAINER}:pause", "Pause all processes within containers"),
    "unpause": describe(f"{_CONTAINER}:unpause", "Unpause all processes within containers"),
    "rename": describe(f"{_CONTAINER}:rename", "Rename a container"),
    "update": describe(f"{_CONTAINER}:update", "Update configuration of containers"),
    "volume": describe(f"{_VOLUME}:volume", "Manage volumes"),
    "cp": describe(f"{_FILES}:cp", "Copy files/folders between a container and the host"),
    "diff": describe(f"{_FILES}:diff", "Inspect changes to files on a container's filesystem"),
    "commit": describe(f"{_FILES}:commit", "Create a new image from a container's changes"),
    "export": describe(f"{_FILES}:export", "Export a container's filesystem as a tar archive"),
    "network": describe("servin.cli.commands.networks:network", "Manage networks"),
    "pod": describe("servin.cli.commands.pods:pod", "Manage pods"),
    "port": describe("servin.cli.commands.networks:port",
                     "List port mappings or a specific mapping for the container"),
    "tui": describe("servin.cli.commands.tui:tui", "Open the live console (containers, logs)"),
    "context": describe("servin.cli.commands.context:context", "Manage contexts"),
    "completion": describe(
        "servin.cli.commands.completion:completion", "Print the shell completion script"
    ),
}


@click.group(
    cls=LazyGroup, lazy=TOP_LEVEL, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.option(
    "-H",
    "--host",
    metavar="URL",
    help="Daemon socket to connect to: unix:///path, tcp://host:port, ssh://user@host "
    "($SERVIN_HOST)",
)
@click.option(
    "-c",
    "--context",
    metavar="NAME",
    help="Context to use (overrides $SERVIN_HOST, $SERVIN_CONTEXT and 'context use')",
)
@click.option("--config", "config_dir", metavar="DIR",
              help="Location of client config files ($SERVIN_CONFIG, ~/.config/servin)")
@click.option("--tls", is_flag=True, help="Use TLS (tcp:// hosts); implied by --tlsverify")
@click.option("--tlsverify", is_flag=True, help="Use TLS and verify the daemon's certificate")
@click.option("--tlscacert", metavar="FILE", help="Trust certs signed only by this CA")
@click.option("--tlscert", metavar="FILE", help="Path to the TLS client certificate file")
@click.option("--tlskey", metavar="FILE", help="Path to the TLS client key file")
@click.option("-D", "--debug", is_flag=True, help="Show full error traces")
@click.version_option(
    package_name="servin", prog_name="servin", message="Servin version %(version)s"
)
@click.pass_context
def cli(
    ctx: click.Context,
    host: str | None,
    context: str | None,
    config_dir: str | None,
    tls: bool,
    tlsverify: bool,
    tlscacert: str | None,
    tlscert: str | None,
    tlskey: str | None,
    debug: bool,
) -> None:
    """Servin: run and manage Linux containers."""
    if config_dir:
        import os

        os.environ["SERVIN_CONFIG"] = config_dir
    # servin.cli.session.target reads the connection options from ctx.params.
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    _STATE["debug"] = debug


_STATE = {"debug": False}
USAGE_EXIT_CODE = 125  # docker's code for a command line it cannot run


class _Interrupted(BaseException):
    """ctrl-c. Not a KeyboardInterrupt, which Click turns into a blank line and ``Aborted.``:
    the CLI ends as docker's does, killed by the signal and quietly."""


def _on_sigint(signum: int, frame: object) -> None:
    raise _Interrupted


def _die_by_sigint() -> None:
    from servin.cli.quick.entry import die_by_sigint  # the one copy, shared with the quick front

    die_by_sigint()


def _describe(exc: BaseException) -> str:
    """One line for an error no command expected."""
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror.lower()
        return f"{exc.filename}: {text}" if exc.filename else text
    return f"{type(exc).__name__}: {exc}"


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``servin``: one clear error line and docker's exit code on failure, never
    a traceback (``--debug`` shows one)."""
    import signal

    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _on_sigint)
    try:
        cli.main(args=argv, prog_name="servin", standalone_mode=False)
    except _Interrupted:
        _die_by_sigint()
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.UsageError as exc:  # bad flags or arguments: docker's 125
        exc.show()
        sys.exit(USAGE_EXIT_CODE)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except ServinError as exc:
        _trace()
        click.echo(f"Error: {exc.message}", err=True)
        sys.exit(getattr(exc, "exit_code", 1))
    except KeyboardInterrupt:
        _die_by_sigint()
    except BrokenPipeError:
        sys.exit(0)
    except Exception as exc:  # a failure no command foresaw: still one line, docker's 1
        _trace()
        click.echo(f"Error: {_describe(exc)}", err=True)
        sys.exit(1)


def _trace() -> None:
    if _STATE["debug"]:
        import traceback

        traceback.print_exc()


def daemon_main() -> None:
    """Entry point of ``servind``: the same as ``servin daemon``."""
    main(["daemon", *sys.argv[1:]])
