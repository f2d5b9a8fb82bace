"""The quick front's ``logs``, ``stats --no-stream`` and ``exec`` against a real daemon: the
same stdout, stderr and exit code as the click path (``SERVIN_QUICK=0``) for each argv,
errors included, with the quick runs loading none of the heavy stack (``both_ways``, shared
with the ``ps`` tests); what they leave to click."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from servin.devtools.daemonproc import REPO, DaemonProcess
from tests.cli.quick.test_ps import both_ways, heavy, servin

Result = tuple[int, str, str]  # exit code, stdout, stderr

UNREACHABLE = "unix:///nonexistent/servin-quick.sock"


@pytest.fixture(scope="module")
def boxes(engine: DaemonProcess) -> DaemonProcess:
    """``done``: exited after 300 lines on each stream (and a label for --details);
    ``live``: running; ``stopped``: created, never started."""
    engine.cli("run", "--name", "done", "--log-opt", "labels=team", "--label", "team=ops",
               "busybox", "sh", "-c",
               "for i in $(seq 1 300); do echo out$i; echo err$i >&2; done; printf tail",
               check=True)
    engine.cli("run", "-d", "--name", "live", "busybox", "sleep", "1000", check=True)
    engine.cli("create", "--name", "stopped", "busybox", "true", check=True)
    return engine


def same(tmp: Path, d: DaemonProcess | None, *args: str, start_up: bool = True) -> Result:
    """``servin -H <d> ARGS`` run on the quick path (which must load nothing heavy) and with
    SERVIN_QUICK=0: the same exit code, stdout and stderr; that result."""
    quick, full = both_ways(tmp, "-H", d.host if d else UNREACHABLE, *args, start_up=start_up)
    assert quick == full, args
    return quick


def left_to_click(tmp: Path, d: DaemonProcess, *args: str) -> Result:
    """``servin -H <d> ARGS``, which the quick front hands to click: the result both ways."""
    result, modules = servin(tmp, "-H", d.host, *args, quick=True)
    assert "servin.cli.main" in modules, args
    assert result == servin(tmp, "-H", d.host, *args, quick=False)[0], args
    return result


@pytest.mark.parametrize("args", [
    (), ("--tail", "100"), ("-n", "3", "-t"), ("--tail=7", "--details"), ("-n", "0"),
    ("--since", "1h"), ("--until", "1h"), ("--since", "2000-01-01T00:00:00Z", "-n", "2"),
    ("-f",), ("-f", "-n", "5", "-t"), ("-tn2",), ("container", "logs", "-n", "1"),
])
def test_logs_same_both_ways(boxes: DaemonProcess, tmp_path: Path,
                             args: tuple[str, ...]) -> None:
    start_up = "--since" not in args and "--until" not in args  # (these parse with re)
    if args[:1] == ("container",):
        same(tmp_path, boxes, *args, "done", start_up=start_up)
    else:
        same(tmp_path, boxes, "logs", *args, "done", start_up=start_up)


@pytest.mark.parametrize("args", [("--tail", "x"), ("--bogus",), ("--since", "someday")])
def test_logs_left_to_click(boxes: DaemonProcess, tmp_path: Path,
                            args: tuple[str, ...]) -> None:
    assert left_to_click(tmp_path, boxes, "logs", *args, "done")[0] != 0


def test_logs_content(boxes: DaemonProcess, tmp_path: Path) -> None:
    code, out, err = same(tmp_path, boxes, "logs", "--tail", "1000", "done")
    assert code == 0
    assert out == "".join(f"out{i}\n" for i in range(1, 301)) + "tail"
    assert err == "".join(f"err{i}\n" for i in range(1, 301))
    stamped = same(tmp_path, boxes, "logs", "-n", "1", "-t", "done")[1]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z tail", stamped)


@pytest.mark.parametrize("args", [("logs", "nosuch"), ("logs", "-n", "1", "nosuch")])
def test_logs_errors_same(boxes: DaemonProcess, tmp_path: Path, args: tuple[str, ...]) -> None:
    code, _, err = same(tmp_path, boxes, *args)
    assert code == 1 and err.startswith("Error: ")


def _cells(text: str) -> list[list[str]]:
    return [re.split(r" {3,}", line) for line in text.splitlines()]


@pytest.mark.parametrize("args", [
    ("live",), ("--no-trunc", "live"), ("live", "done"), (), ("-a",), ("-a", "live"),
])
def test_stats_same_table(boxes: DaemonProcess, tmp_path: Path,
                          args: tuple[str, ...]) -> None:
    (code, out, err), modules = servin(tmp_path, "-H", boxes.host, "stats", "--no-stream",
                                       *args, quick=True)
    assert heavy(modules) == []
    (full_code, full_out, full_err), _ = servin(tmp_path, "-H", boxes.host, "stats",
                                                 "--no-stream", *args, quick=False)
    assert (code, err) == (full_code, full_err) == (0, "")
    got, want = _cells(out), _cells(full_out)
    assert got[0] == want[0] == ["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %",
                                 "NET I/O", "BLOCK I/O", "PIDS"]
    # The usage figures move between two samples; which containers and how they read do not.
    assert sorted(r[:2] for r in got[1:]) == sorted(r[:2] for r in want[1:])
    assert all(re.fullmatch(r"\d+\.\d\d%", r[2]) and " / " in r[3] for r in got[1:])
    assert any(r[1] == "live" for r in got[1:])
    if "-a" in args and len(args) == 1:
        assert {"done", "stopped"} <= {r[1] for r in got[1:]}


@pytest.mark.parametrize("args", [("--no-stream", "nosuch"), ("--no-stream", "live", "nosuch")])
def test_stats_errors_same(boxes: DaemonProcess, tmp_path: Path,
                           args: tuple[str, ...]) -> None:
    code, _, err = same(tmp_path, boxes, "stats", *args)
    assert code == 1 and err.startswith("Error: ")


@pytest.mark.parametrize("args", [("--format", "{{.Name}}", "live"), ("-x",)])
def test_stats_left_to_click(boxes: DaemonProcess, tmp_path: Path,
                             args: tuple[str, ...]) -> None:
    left_to_click(tmp_path, boxes, "stats", "--no-stream", *args)


@pytest.mark.parametrize("args", [
    ("live", "true"), ("live", "false"), ("live", "sh", "-c", "echo out; echo err >&2; exit 7"),
    ("-e", "A=1", "--env=B=two", "-w", "/tmp", "live", "sh", "-c", "echo $A $B; pwd"),
    ("-u", "1:2", "live", "id"), ("--privileged", "live", "true"),
    ("live", "nosuchcommand"), ("live", "/etc"), ("nosuch", "true"), ("stopped", "true"),
    ("-d", "live", "true"), ("--", "live", "echo", "-i"), ("-e", "=x", "live", "true"),
    ("live", "-e", "A=1", "true"), ("live", "sh", "-c", "echo $0 $1", "-e", "-u"),
    ("-de", "A=1", "live", "true"),
])
def test_exec_same_both_ways(boxes: DaemonProcess, tmp_path: Path,
                             args: tuple[str, ...]) -> None:
    same(tmp_path, boxes, "exec", *args)


@pytest.mark.parametrize("args", [("live",), ("-i", "live", "true"), ("-t", "live", "true"),
                                  ("--detach-keys", "ctrl-x", "live", "true")])
def test_exec_left_to_click(boxes: DaemonProcess, tmp_path: Path,
                            args: tuple[str, ...]) -> None:
    left_to_click(tmp_path, boxes, "exec", *args)


def test_exec_output_and_code(boxes: DaemonProcess, tmp_path: Path) -> None:
    result = same(tmp_path, boxes, "exec", "live", "sh", "-c", "echo out; echo err >&2; exit 7")
    assert result == (7, "out\n", "err\n")
    assert same(tmp_path, boxes, "container", "exec", "live", "true") == (0, "", "")
    assert same(tmp_path, boxes, "exec", "live", "nosuchcommand")[0] == 127


@pytest.mark.parametrize("args", [
    ("logs", "-n", "1", "x"), ("stats", "--no-stream"), ("exec", "x", "true"),
])
def test_unreachable_same(tmp_path: Path, args: tuple[str, ...]) -> None:
    code, _, err = same(tmp_path, None, *args)
    assert code == 1 and err.startswith("Error: Cannot connect to the Servin daemon")


def test_logs_follow_streams_and_ends_on_ctrl_c(boxes: DaemonProcess) -> None:
    import os
    import signal

    boxes.cli("run", "-d", "--name", "chatty", "busybox", "sh", "-c",
              "echo ready; sleep 1000", check=True)
    env = {k: v for k, v in os.environ.items() if k not in ("SERVIN_HOST", "SERVIN_QUICK")}
    proc = subprocess.Popen([sys.executable, "-m", "servin", "-H", boxes.host, "logs", "-f",
                             "chatty"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            cwd=REPO, env=env)
    try:
        assert proc.stdout is not None and proc.stderr is not None
        assert proc.stdout.readline() == b"ready\n"  # flushed while the call is still open
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == -signal.SIGINT
        assert proc.stderr.read() == b""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_exec_env_file_same_both_ways(boxes: DaemonProcess, tmp_path: Path) -> None:
    env_file = tmp_path / "env"
    env_file.write_text("# a comment\nFROM_FILE=1\n\nSHARED=file\n")
    result = same(tmp_path, boxes, "exec", "--env-file", str(env_file), "-e", "SHARED=flag",
                  "live", "sh", "-c", "echo $FROM_FILE $SHARED")
    assert result == (0, "1 flag\n", "")
    code, _, err = same(tmp_path, boxes, "exec", "--env-file", f"{env_file}.nope", "live", "true")
    assert code == 1 and "no such file" in err
