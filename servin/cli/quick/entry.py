"""``servin``'s entry point: a quick path for the incident commands, click for the rest.

Starting the full CLI costs tens of milliseconds of imports (click, h2, protobuf) before a
byte goes to the daemon; the commands an operator types in a hurry (``ps``, ``logs``,
``stats``, ``exec``) are run here on the quick client instead, when every flag given is one
the quick command implements exactly as the click command does. Anything else (another
command, an unknown flag, ``--format``, ``--help``, TLS or ssh hosts, ``-D``) runs the click
CLI as before, so behaviour never depends on which path ran. ``SERVIN_QUICK=0`` forces the
click path, and so does naming a transport (``SERVIN_CLIENT_TRANSPORT``).

A quick command is a module with two functions (registered in ``COMMANDS``):

- ``parse(args: list[str]) -> object | None``: the command's own arguments (after the command
  word) as the command's options, or None when anything is not implemented (click runs);
- ``run(options, session: QuickSession) -> int``: do it, return the exit code. Failures
  are raised: ``servin.errors.ServinError`` (``exit_code`` attribute if not 1) or
  ``servin.client.errors.StatusError`` from the channel; both print as the click path does.
"""

from __future__ import annotations

import os
import sys
from importlib import import_module

TYPE_CHECKING = False  # typing and contextlib stay out of the quick path's start-up
if TYPE_CHECKING:
    from typing import Any

    from servin.client.quick.wire import QuickChannel

QUICK_ENV = "SERVIN_QUICK"

# command word -> module implementing it (parse/run)
COMMANDS: dict[str, str] = {
    "ps": "servin.cli.quick.ps",
    "logs": "servin.cli.quick.logs",
    "stats": "servin.cli.quick.stats",
    "exec": "servin.cli.quick.exec_",
}
# ``servin container WORD`` -> the top-level command it is an alias of
CONTAINER_ALIASES: dict[str, str] = {
    "ps": "ps", "ls": "ps", "list": "ps", "logs": "logs", "stats": "stats", "exec": "exec",
}


class QuickSession:
    """The daemon a quick command talks to; the channel is opened on first use."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._channel: QuickChannel | None = None

    def channel(self) -> QuickChannel:
        """The connection to the daemon (``StatusError`` UNAVAILABLE if it cannot be made)."""
        if self._channel is None:
            from servin.client.channel import open_endpoint
            from servin.client.quick.wire import QuickChannel

            endpoint, _, _ = open_endpoint(self.url)  # unix or plain tcp here: no tunnel
            self._channel = QuickChannel.connect(endpoint)
        return self._channel

    def close(self) -> None:
        """Close the connection if one was opened."""
        if self._channel is not None:
            self._channel.close()
            self._channel = None


def _global_options(argv: list[str]) -> tuple[dict[str, str], list[str]] | None:
    """The global options this front understands (-H, -c, --config) and the rest of argv,
    or None if argv holds any other global option (click handles it)."""
    options: dict[str, str] = {}
    names = {"-H": "host", "--host": "host", "-c": "context", "--context": "context",
             "--config": "config"}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("-") or arg == "-":
            return options, argv[i:]
        name, eq, value = arg.partition("=")
        if name in names and name.startswith("--") and eq:
            options[names[name]] = value
        elif name in names and not eq:
            if i + 1 >= len(argv):
                return None
            options[names[name]] = argv[i + 1]
            i += 1
        elif arg[:2] in ("-H", "-c") and len(arg) > 2 and not arg.startswith("--"):
            options[names[arg[:2]]] = arg[2:]
        else:
            return None
        i += 1
    return None  # no command: click prints the help


def _plan(argv: list[str]) -> tuple[Any, Any, str] | None:
    """(command module, its parsed options, daemon url) when the quick path can run argv."""
    if os.environ.get(QUICK_ENV, "") in ("0", "false", "no"):
        return None
    if os.environ.get("SERVIN_CLIENT_TRANSPORT"):  # a transport chosen by name: the full client
        return None
    parsed = _global_options(argv)
    if parsed is None:
        return None
    options, rest = parsed
    word, args = rest[0], rest[1:]
    if word == "container" and args:
        alias = CONTAINER_ALIASES.get(args[0])
        if alias is None:
            return None
        word, args = alias, args[1:]
    module_name = COMMANDS.get(word)
    if module_name is None:
        return None
    module = import_module(module_name)
    command_options = module.parse(args)
    if command_options is None:
        return None
    if "config" in options:
        os.environ["SERVIN_CONFIG"] = options["config"]
    try:
        from servin.client.hosts import resolve_target

        target = resolve_target(options.get("host"), options.get("context"), None)
    except Exception:  # a bad -H, an unknown context...: click reports it as usual
        return None
    if target.tls is not None or not target.url.startswith(("unix://", "tcp://")):
        return None  # TLS and ssh hosts: the full client
    return module, command_options, target.url


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``servin``."""
    args = sys.argv[1:] if argv is None else list(argv)
    plan = _plan(args)
    if plan is None:
        from servin.cli.main import main as click_main

        click_main(argv)
        return
    module, options, url = plan
    sys.exit(_run(module, options, url))


def _run(module: Any, options: Any, url: str) -> int:
    """Run a planned quick command: its exit code, errors printed as the click path does."""
    from servin.client.errors import StatusError
    from servin.client.quick.lite import DecodeError
    from servin.errors import ServinError

    session = QuickSession(url)
    try:
        code: int = module.run(options, session)
        return code
    except (StatusError, DecodeError) as exc:
        from servin.client.errors import translate

        if isinstance(exc, DecodeError):  # as the full client reports a reply it cannot read
            exc = StatusError("INTERNAL", f"cannot decode the daemon's reply: {exc}")
        error = translate(exc, url)
        _error_line(error.message)
        return getattr(error, "exit_code", 1)
    except ServinError as exc:
        _error_line(exc.message)
        return getattr(exc, "exit_code", 1)
    except KeyboardInterrupt:
        die_by_sigint()
    except BrokenPipeError:
        _quiet_stdout()
        return 0
    finally:
        session.close()
    return 1


def _error_line(message: str) -> None:
    sys.stdout.flush()
    sys.stderr.write(f"Error: {message}\n")
    sys.stderr.flush()


def _quiet_stdout() -> None:
    """After a broken pipe: nothing more may reach stdout (not even at exit's flush)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except OSError:
        pass


def die_by_sigint() -> None:
    """End as a process killed by ctrl-c does (docker's way): quietly, by the signal."""
    import signal

    try:  # noqa: SIM105 - contextlib costs the quick path its import
        sys.stdout.flush()
    except Exception:  # a closed or broken stdout must not stop the exit
        pass
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGINT)
    sys.exit(130)  # only if the signal is blocked
