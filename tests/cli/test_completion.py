"""Shell completion, driven as the shells drive it: servin run with _SERVIN_COMPLETE set."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.cli.conftest import Fleet
from tests.daemon import run_cli


def complete(words: str, *, shell: str = "bash", env: dict[str, str] | None = None) -> list[str]:
    """What the shell would offer for the command line ``words`` (cursor at its end)."""
    if shell == "fish":  # fish passes the token being completed, not its index
        cword = "" if words.endswith(" ") else words.split()[-1]
    else:
        cword = str(len(words.split()) - (0 if words.endswith(" ") else 1))
    full = {"_SERVIN_COMPLETE": f"{shell}_complete", "COMP_WORDS": words,
            "COMP_CWORD": cword, **(env or {})}
    out = run_cli(env=full)
    assert out.returncode == 0, out.stderr
    if shell in ("bash", "fish"):  # lines of "type,value"
        return [line.split(",", 1)[1] for line in out.stdout.splitlines() if line]
    lines = out.stdout.splitlines()  # zsh: type, value, help for each item
    return [lines[i + 1] for i in range(0, len(lines) - 2, 3)]


def test_commands_and_flags(fleet: Fleet) -> None:
    assert complete("servin sto") == ["stop"]
    assert {"context", "container", "completion"} <= set(complete("servin co"))
    assert complete("servin container l") == ["list", "logs", "ls"]
    flags = complete("servin ps --")
    assert {"--all", "--quiet", "--filter", "--format", "--no-trunc", "--last"} <= set(flags)
    assert "--tlsverify" in complete("servin --tls")
    assert complete("servin ps --filter st") == ["status="]
    assert complete("servin container ls -f status=ex") == ["status=exited"]
    assert complete("servin images --filter dang") == ["dangling="]
    assert "event=" in complete("servin events --filter ")


def test_live_names_from_the_daemon(fleet: Fleet) -> None:
    h = f"servin -H {fleet.daemon.host}"
    assert complete(f"{h} stop ") == ["runner", "three", "ok"]
    assert complete(f"{h} logs t") == ["three"]
    assert complete(f"{h} container rm o") == ["ok"]
    assert complete(f"{h} rm ok ") == ["runner", "three"]  # not offered twice
    assert complete(f"{h} rmi ") == ["busybox:latest"]
    assert complete(f"{h} run ") == ["busybox:latest"]
    assert complete(f"{h} image inspect b") == ["busybox:latest"]
    # inspect takes any object: containers, images, then volumes and networks
    assert complete(f"{h} inspect ")[:4] == ["runner", "three", "ok", "busybox:latest"]
    assert {"bridge", "host", "none"} <= set(complete(f"{h} inspect "))
    # fish and zsh get the same names
    assert complete(f"{h} exec ", shell="fish") == ["runner", "three", "ok"]
    assert complete(f"{h} exec ", shell="zsh") == ["runner", "three", "ok"]
    # $SERVIN_HOST is honoured like -H
    assert complete("servin kill r", env={"SERVIN_HOST": fleet.daemon.host}) == ["runner"]


def test_volumes_and_networks_complete_what_the_daemon_has(fleet: Fleet) -> None:
    """Volume and network names come from the daemon's list calls; a daemon that does not
    implement them (UNIMPLEMENTED) completes nothing, without an error."""
    import click

    from servin.cli.commands import completion
    from servin.cli.main import cli

    ctx = click.Context(cli, info_name="servin")
    ctx.params = {"host": fleet.daemon.host}
    param = click.Argument(["names"], nargs=-1)
    for completer in (completion.volumes, completion.networks):
        names = [item.value for item in completer(ctx, param, "")]
        assert all(isinstance(n, str) and n for n in names)
    ctx.params = {"host": "unix:///nonexistent.sock"}
    assert completion.containers(ctx, param, "") == []  # unreachable: nothing, no error


def test_unreachable_daemon_completes_nothing(tmp_path: Path) -> None:
    assert complete("servin -H unix:///nonexistent.sock stop ") == []


def test_context_names(tmp_path: Path) -> None:
    env = {"SERVIN_CONFIG": str(tmp_path)}
    run_cli("context", "create", "prod", "--host", "ssh://root@example.invalid", env=env)
    assert complete("servin context use ", env=env) == ["default", "prod"]
    assert complete("servin context rm p", env=env) == ["prod"]
    assert complete("servin --context ", env=env) == []  # a flag value: no guessing
    assert complete("servin context create ", env=env) == []  # a new name
    assert complete(f"servin --config {tmp_path} context use p") == ["prod"]


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_scripts(shell: str) -> None:
    out = run_cli("completion", shell)
    assert out.returncode == 0, out.stderr
    assert "_SERVIN_COMPLETE" in out.stdout
    if shell == "bash":  # the script at least parses
        subprocess.run(["bash", "-n"], input=out.stdout.encode(), check=True)
    assert run_cli("completion", "powershell").returncode == 125
