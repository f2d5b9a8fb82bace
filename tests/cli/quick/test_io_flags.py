"""Which argv the quick ``logs``/``stats``/``exec`` take, and which go to the click CLI."""

from __future__ import annotations

import pytest

from servin.cli.quick import exec_, logs, stats


@pytest.mark.parametrize("argv", [
    ["web"], ["--tail", "100", "web"], ["-n", "5", "web"], ["-n5", "web"], ["--tail=all", "web"],
    ["web", "-t"], ["--since", "10m", "--until", "2024-01-02T03:04:05Z", "web"],
    ["--details", "--timestamps", "--", "web"], ["-f", "web"], ["-tf", "web"],
])
def test_logs_taken(argv: list[str]) -> None:
    assert logs.parse(argv) is not None


def test_logs_options() -> None:
    got = logs.parse(["-tn", "7", "--since", "1700000000.5", "web"])
    assert got == logs.LogsOptions("web", tail=7, since=1_700_000_000_500_000_000,
                                   timestamps=True)
    got = logs.parse(["--until=2024-01-02T03:04:05Z", "web"])
    assert got is not None and got.until == 1_704_164_645 * 10**9 and got.tail == -1


@pytest.mark.parametrize("argv", [
    [], ["--follow=1", "web"], ["-tx", "web"], ["--tail", "x", "web"],
    ["--since", "yesterday", "web"], ["a", "b"], ["--tail"], ["--bogus", "web"],
    ["-t=1", "web"], ["--help"],
])
def test_logs_falls_back(argv: list[str]) -> None:
    assert logs.parse(argv) is None


@pytest.mark.parametrize("argv", [
    ["--no-stream"], ["--no-stream", "--no-trunc", "a", "b"], ["a", "--no-stream"],
    ["--no-stream", "-a"], ["-a", "--no-stream", "--all"],
])
def test_stats_taken(argv: list[str]) -> None:
    assert stats.parse(argv) is not None


@pytest.mark.parametrize("argv", [
    [], ["a"], ["--no-stream", "--format", "{{.Name}}"], ["-a"], ["--no-stream", "-x"],
])
def test_stats_falls_back(argv: list[str]) -> None:
    assert stats.parse(argv) is None


@pytest.mark.parametrize("argv", [
    ["web", "true"], ["-e", "A=1", "-eB=2", "--env", "C", "-u", "0", "-w", "/", "web", "ls"],
    ["--privileged", "-d", "web", "sleep", "1"], ["web", "sh", "-c", "echo -i -t"],
    ["--", "web", "true"],
])
def test_exec_taken(argv: list[str]) -> None:
    assert exec_.parse(argv) is not None


def test_exec_options() -> None:
    got = exec_.parse(["-e", "A=1", "--env=B=2", "-eC", "--env-file", "f", "-d", "web", "sh",
                       "-e", "x"])
    assert got == exec_.ExecOptions("web", ["sh", "-e", "x"], detach=True,
                                    env=("A=1", "B=2", "C"), env_files=("f",))


@pytest.mark.parametrize("argv", [
    ["web"], [], ["-i", "web", "sh"], ["-t", "web", "sh"], ["-it", "web", "sh"],
    ["--detach-keys", "ctrl-x", "web", "sh"], ["-u"], ["--interactive", "web", "sh"],
])
def test_exec_falls_back(argv: list[str]) -> None:
    assert exec_.parse(argv) is None
