"""End to end: ``servin tui`` in a real terminal (tmux) against a real daemon and containers.

Keys are sent with ``tmux send-keys`` and the screen is read with ``tmux capture-pane``; the
effect of an action is checked through the CLI, not through the console itself.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.daemon import REPO, DaemonProcess

if shutil.which("tmux") is None:  # pragma: no cover - the CI image installs tmux
    raise RuntimeError("the console's end-to-end test needs tmux (apt-get install tmux)")


class Tmux:
    """One tmux server on a private socket, running one session."""

    def __init__(self, name: str) -> None:
        self.socket = name
        self.session = "tui"

    def run(self, *args: str) -> str:
        out = subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=20
        )
        if out.returncode != 0:
            raise AssertionError(f"tmux {' '.join(args)} failed: {out.stderr}")
        return out.stdout

    def start(self, command: list[str], env: dict[str, str], before: str = "") -> None:
        exports = " ".join(f"{k}={v}" for k, v in env.items())
        # Without COLUMNS/LINES (a test run may have them): the size is the pane's.
        line = f"cd {REPO} && {before}env -u COLUMNS -u LINES {exports} " + " ".join(command)
        self.run("new-session", "-d", "-s", self.session, "-x", "120", "-y", "36", line)
        # Let applications set tmux's paste buffer with OSC 52 (the console's copy).
        self.run("set-option", "-s", "set-clipboard", "on")

    def keys(self, *keys: str, literal: bool = False) -> None:
        self.run("send-keys", "-t", self.session, *(["-l"] if literal else []), *keys)

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", self.session)

    def wait_for(self, check: Callable[[str], bool], what: str, timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            try:
                text = self.screen()
            except AssertionError:
                text = "(no session)"
            if check(text):
                return text
            time.sleep(0.2)
        raise AssertionError(f"the console never showed {what}; the screen was:\n{text}")

    def kill(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=20)


@pytest.fixture
def tmux() -> Iterator[Tmux]:
    t = Tmux(f"servin-tui-{os.getpid()}")
    try:
        yield t
    finally:
        t.kill()


def state_of(daemon: DaemonProcess, name: str) -> str:
    """The container's state, asked through the client (not through the console)."""
    from servin.api.servin.v1 import containers_pb2
    from servin.client.sync import Client

    with Client(daemon.host) as c:
        detail = c.containers.Inspect(containers_pb2.InspectContainerRequest(id=name))
    return str(detail.state.status)


# Prints a word to search, then sleeps; exits at once on SIGTERM (a stop takes no 10 s).
TALKS_THEN_SLEEPS = (
    'trap "exit 0" TERM; echo "ready banana"; echo "idle"; while :; do sleep 1; done'
)


def test_console_stops_a_container_and_searches_its_logs(
    daemon: DaemonProcess, busybox_image: str, tmux: Tmux, tmp_path: Path
) -> None:
    daemon.cli(
        "run", "-d", "--name", "victim", "busybox", "sh", "-c", TALKS_THEN_SLEEPS, check=True
    )
    daemon.cli("run", "-d", "--name", "bystander", "busybox", "sleep", "1000", check=True)
    assert state_of(daemon, "victim") == "running"

    env = {"SERVIN_TUI_CONFIG": str(tmp_path / "none.toml"), "TERM": "xterm-256color"}
    tmux.start([sys.executable, "-m", "servin", "-H", daemon.host, "tui"], env)
    screen = tmux.wait_for(
        lambda s: "victim" in s and "bystander" in s and "2/2 running" in s, "both containers"
    )
    assert daemon.host in screen  # the title names the host

    # Filter down to the victim, stop it, confirm.
    tmux.keys("/")
    tmux.wait_for(lambda s: "filter (as you type):" in s, "the filter prompt")
    tmux.keys("victim", literal=True)
    tmux.keys("Enter")
    tmux.wait_for(lambda s: "1/2 shown" in s, "the filtered table")
    tmux.keys("s")
    tmux.wait_for(lambda s: "Stop victim?" in s, "the confirm dialog")
    tmux.keys("y")

    deadline = time.monotonic() + 30
    while state_of(daemon, "victim") != "exited" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert state_of(daemon, "victim") == "exited"  # really stopped, says the daemon
    tmux.wait_for(lambda s: "exited(" in s, "the stopped state")
    assert state_of(daemon, "bystander") == "running"  # the filter kept it out of the action

    # Open the stopped container's logs and search a word.
    tmux.keys("l")
    tmux.wait_for(lambda s: "ready banana" in s and "logs victim" in s, "the victim's logs")
    tmux.keys("/")
    tmux.wait_for(lambda s: "search:" in s, "the search prompt")
    tmux.keys("banana", literal=True)
    tmux.keys("Enter")
    screen = tmux.wait_for(lambda s: "match 1/1" in s, "a search match")
    assert "ready banana" in screen

    # Copy the matching line: OSC 52, which tmux (set-clipboard on) turns into a paste buffer.
    tmux.keys("y")
    deadline = time.monotonic() + 10
    copied = ""
    while time.monotonic() < deadline and "ready banana" not in copied:
        copied = subprocess.run(
            ["tmux", "-L", tmux.socket, "show-buffer"], capture_output=True, text=True
        ).stdout
        time.sleep(0.2)
    assert copied == "ready banana\n"

    tmux.keys("q")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if (
            "no server running"
            in subprocess.run(
                ["tmux", "-L", tmux.socket, "ls"], capture_output=True, text=True
            ).stderr
        ):
            break
        time.sleep(0.2)
    else:
        raise AssertionError(f"the console did not quit:\n{tmux.screen()}")


# Ignores SIGTERM (PID 1's default for an unhandled TERM is to ignore it, and the trap makes
# sure): a stop waits out --stop-timeout, then SIGKILL.
IGNORES_TERM = 'trap "" TERM; echo "stubborn up"; while :; do sleep 1; done'
BEFORE = "echo BEFORE-THE-CONSOLE; "  # what the terminal shows under the console


def test_console_first_minutes_against_a_real_daemon(
    daemon: DaemonProcess, busybox_image: str, tmux: Tmux, tmp_path: Path
) -> None:
    daemon.cli(
        "run", "-d", "--name", "stubborn", "--stop-timeout", "4", "busybox",
        "sh", "-c", IGNORES_TERM, check=True,
    )  # fmt: skip
    daemon.cli("tag", "busybox", "127.0.0.1:5000/team/busybox", check=True)
    networks = daemon.cli("network", "ls", "-q", check=True).stdout.split()
    env = {"SERVIN_TUI_CONFIG": str(tmp_path / "none.toml"), "TERM": "xterm-256color"}
    tmux.start([sys.executable, "-m", "servin", "-H", daemon.host, "tui"], env, before=BEFORE)
    screen = tmux.wait_for(lambda s: "stubborn" in s and "1/1 running" in s, "the container")
    assert "1 Containers" in screen and "servin " in screen  # the tab bar, the version
    header = tmux.wait_for(lambda s: " CPU " in s.splitlines()[1], "the host figures")
    assert "mem " in header.splitlines()[1]  # System.Info's host CPU and memory
    # 120x36: the split view shows the selected container's log tail.
    tmux.wait_for(lambda s: "logs of stubborn" in s and "stubborn up" in s, "the log tail")

    # e: the shell starts on a cleared screen, not over what was there before the console.
    tmux.keys("e")
    tmux.wait_for(lambda s: "#" in s and "Containers" not in s, "the container's shell")
    assert "BEFORE-THE-CONSOLE" not in tmux.screen()
    tmux.keys("exit", literal=True)
    tmux.keys("Enter")
    tmux.wait_for(lambda s: "1 Containers" in s, "the console again")

    # Stop a container that ignores SIGTERM: the row counts down to the SIGKILL.
    tmux.keys("s")
    tmux.wait_for(lambda s: "Stop stubborn?" in s, "the confirm dialog")
    tmux.keys("y")
    tmux.wait_for(lambda s: "SIGKILL in" in s, "the stop's countdown")
    tmux.wait_for(lambda s: "exited(137)" in s, "the SIGKILLed container", timeout=30)
    assert state_of(daemon, "stubborn") == "exited"

    # Images: every tag, as `servin images` lists them.
    tmux.keys("2")
    screen = tmux.wait_for(lambda s: "127.0.0.1:5000/team/busybox:latest" in s, "the new tag")
    assert "busybox:latest" in screen.replace("127.0.0.1:5000/team/busybox:latest", "")

    # System: the networks the daemon has, as the Networks screen and the CLI count them.
    tmux.keys("9")
    tmux.wait_for(lambda s: f"networks {len(networks)}" in s, "the network count")
    tmux.keys("4")
    tmux.wait_for(lambda s: f"{len(networks)}/{len(networks)} networks" in s, "the networks")
    tmux.keys("q")
