"""Which argv the quick ``logs``/``stats``/``exec`` take, and which go to the click CLI."""

from __future__ import annotations

import pytest

from servin.cli.quick.flags import Spec, parse
from servin.cli.quick.iocmds import exec_command, logs_command, stats_command


@pytest.mark.parametrize("argv", [
    ["web"], ["--tail", "100", "web"], ["-n", "5", "web"], ["-n5", "web"], ["--tail=all", "web"],
    ["web", "-t"], ["--since", "10m", "--until", "2024-01-02T03:04:05Z", "web"],
    ["--details", "--timestamps", "--", "web"],
])
def test_logs_taken(argv: list[str]) -> None:
    assert logs_command(argv) is not None


@pytest.mark.parametrize("argv", [
    [], ["-f", "web"], ["--follow", "web"], ["-tf", "web"], ["--tail", "x", "web"],
    ["--since", "yesterday", "web"], ["a", "b"], ["--tail"], ["--bogus", "web"],
    ["-t=1", "web"],
])
def test_logs_falls_back(argv: list[str]) -> None:
    assert logs_command(argv) is None


@pytest.mark.parametrize("argv", [
    ["--no-stream"], ["--no-stream", "--no-trunc", "a", "b"], ["a", "--no-stream"],
])
def test_stats_taken(argv: list[str]) -> None:
    assert stats_command(argv) is not None


@pytest.mark.parametrize("argv", [
    [], ["a"], ["--no-stream", "--format", "{{.Name}}"], ["--no-stream", "-a"],
    ["--no-stream", "--all"],
])
def test_stats_falls_back(argv: list[str]) -> None:
    assert stats_command(argv) is None


@pytest.mark.parametrize("argv", [
    ["web", "true"], ["-e", "A=1", "-eB=2", "--env", "C", "-u", "0", "-w", "/", "web", "ls"],
    ["--privileged", "-d", "web", "sleep", "1"], ["web", "sh", "-c", "echo -i -t"],
    ["--", "web", "true"],
])
def test_exec_taken(argv: list[str]) -> None:
    assert exec_command(argv) is not None


@pytest.mark.parametrize("argv", [
    ["web"], [], ["-i", "web", "sh"], ["-t", "web", "sh"], ["-it", "web", "sh"],
    ["--detach-keys", "ctrl-x", "web", "sh"], ["-u"], ["--interactive", "web", "sh"],
])
def test_exec_falls_back(argv: list[str]) -> None:
    assert exec_command(argv) is None


def test_parse_reads_as_click_does() -> None:
    spec = Spec(names={"-e": "env", "--env": "env", "-d": "detach"},
                values=frozenset({"env"}), multiple=frozenset({"env"}), interspersed=False)
    got = parse(["-e", "A=1", "--env=B=2", "-eC", "c", "-e", "x"], spec)
    assert got is not None
    assert got.flags == {"env": ["A=1", "B=2", "C"]}
    assert got.args == ["c", "-e", "x"]
    assert parse(["-d=1"], spec) is None
