"""docker's exit codes, the same plain tables in a pipe and on a terminal (a bold header there
unless NO_COLOR), system prune."""

from __future__ import annotations

import os
import re
import sys

import pytest

from tests.cli.conftest import Fleet, on_a_pty
from tests.daemon import REPO

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["run", "--rm", "busybox", "sh", "-c", "exit 7"], 7, None),
        (["run", "--rm", "busybox", "true"], 0, None),
        (["run", "--rm", "busybox", "nosuchcommand"], 127, "executable file not found"),
        (["run", "--rm", "busybox", "/etc/passwd"], 126, "permission denied"),
        (["run", "--rm", "nosuchimage"], 125, "Unable to find image 'nosuchimage' locally"),
        (["run", "--rm", "--user", "nosuchuser", "busybox", "true"], 125, "nosuchuser"),
        (["run", "--bogus-flag", "busybox"], 125, "No such option"),
        (["ps", "--bogus-flag"], 125, "No such option"),
        (["ps", "-n", "notanumber"], 125, "notanumber"),
        (["start", "-a", "three"], 3, None),
        (["exec", "runner", "sh", "-c", "exit 5"], 5, None),
        (["exec", "runner", "nosuchcommand"], 127, "executable file not found"),
        (["exec", "runner", "/etc/passwd"], 126, "permission denied"),
        (["rm", "nosuchcontainer"], 1, "No such container: nosuchcontainer"),
        (["nosuchcommand"], 1, "unknown command: servin nosuchcommand"),
    ],
)
def test_exit_codes(fleet: Fleet, args: list[str], code: int, message: str | None) -> None:
    out = fleet.daemon.cli(*args)
    assert out.returncode == code, (args, out.stdout, out.stderr)
    if message is not None:
        assert message in out.stderr
        assert not out.stderr.startswith("Traceback")


def _on_a_pty(args: list[str], env: dict[str, str]) -> str:
    """Run the CLI with stdout and stderr on a pseudo-terminal; return what it drew."""
    full = {**{k: v for k, v in os.environ.items() if k != "NO_COLOR"},
            "TERM": "xterm-256color", "COLUMNS": "200", **env}
    return on_a_pty([sys.executable, "-m", "servin", *args], full, REPO).decode(
        errors="replace")


def test_piped_is_plain_terminal_is_bold_header(fleet: Fleet) -> None:
    env = {"SERVIN_HOST": fleet.daemon.host}
    for args in (["ps", "-a"], ["images"], ["context", "ls"]):
        piped = fleet.daemon.cli(*args, check=True).stdout
        assert not ANSI.search(piped), (args, piped)
        drawn = _on_a_pty(args, env).replace("\r\n", "\n")
        header, _, _ = drawn.partition("\n")
        assert header.startswith("\x1b[1m") and header.endswith("\x1b[0m"), (args, drawn)
        assert len(ANSI.findall(drawn)) == 2, (args, drawn)  # the header's bold, nothing else
        # docker's layout: the piped text, column for column (the header line is identical)
        assert ANSI.sub("", header) == piped.split("\n")[0], (args, drawn, piped)
        assert not ANSI.search(_on_a_pty(args, {**env, "NO_COLOR": "1"})), args
    assert "runner" in ANSI.sub("", _on_a_pty(["ps"], env))
    assert not ANSI.search(_on_a_pty(["ps"], {**env, "TERM": "dumb"}))


def test_system_prune_removes_stopped_containers(fleet: Fleet) -> None:
    d = fleet.daemon
    made = d.cli("create", "--name", "pruneme", "busybox", "true", check=True).stdout.strip()
    out = d.cli("system", "prune", input=b"n\n")  # the prompt, answered no: nothing removed
    assert out.returncode == 0 and "Are you sure you want to continue?" in out.stdout
    assert made in d.cli("ps", "-aq", "--no-trunc").stdout
    out = d.cli("system", "prune", "-f", "--filter", "label=nosuch")  # filters narrow it
    assert out.returncode == 0, out.stderr
    assert made in d.cli("ps", "-aq", "--no-trunc").stdout
    out = d.cli("system", "prune", "-f")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("Deleted Containers:\n")
    for name in ("ok", "three"):
        assert fleet.ids[name] in out.stdout
    assert made in out.stdout
    assert "Total reclaimed space:" in out.stdout
    # What the daemon cannot prune yet is named, not silently skipped.
    if "Not pruned" in out.stderr:
        assert re.search(r"Not pruned \((networks|images)(, \w+)*\): the daemon does not "
                         r"support pruning them", out.stderr)
    assert d.cli("ps", "-a", "--format", "{{.Names}}").stdout.split() == ["runner"]
    fleet.ids.pop("ok")
    fleet.ids.pop("three")
