"""Spec parsing, exit records on disk, and telling a live monitor from a recycled pid."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from servin.engine.runtime.monitor.protocol import (
    SpawnSpec,
    frame_header,
    monitor_alive,
    one_line,
    parse_frame_header,
    proc_start_ticks,
    read_exit_record,
    write_file_atomic,
)
from servin.errors import InvalidArgument


def test_spec_round_trip_and_rejects() -> None:
    obj = {"id": "abc", "bundle": "/b", "state_dir": "/s",
           "runtime": {"name": "runc", "binary": "/usr/sbin/runc", "root": "/r"},
           "log": {"path": "/l", "driver": "cri", "max_size": 10, "max_file": 2,
                   "attrs": {"tier": "web"}},
           "open_stdin": True, "tty": False, "start": True}
    spec = SpawnSpec.from_json(obj)
    assert SpawnSpec.from_json(spec.to_json()) == spec
    assert spec.to_json() == obj
    for bad in ({**obj, "id": "a/b"}, {**obj, "log": {"path": "/l", "driver": "syslog"}},
                {**obj, "runtime": {"name": "crun"}}, {k: v for k, v in obj.items() if k != "log"}):
        with pytest.raises(InvalidArgument):
            SpawnSpec.from_json(bad)


def test_frame_header() -> None:
    assert frame_header(2, 258) == b"\x02\x00\x00\x00\x00\x00\x01\x02"
    assert parse_frame_header(frame_header(1, 70000)) == (1, 70000)


def test_one_line() -> None:
    assert one_line("a\n\n  b  \n") == "a; b"


def test_exit_record_atomic(tmp_path: Path) -> None:
    assert read_exit_record(tmp_path) is None
    write_file_atomic(tmp_path / "exit.json", b'{"exit_code": 137, "signal": 9, '
                      b'"oom_killed": false, "finished_at": "x"}')
    rec = read_exit_record(tmp_path)
    assert rec is not None and rec.exit_code == 137 and rec.signal == 9
    assert [p.name for p in tmp_path.iterdir()] == ["exit.json"]
    (tmp_path / "exit.json").write_text("{")
    with pytest.raises(InvalidArgument):
        read_exit_record(tmp_path)


def test_monitor_alive_checks_identity(tmp_path: Path) -> None:
    assert not monitor_alive(tmp_path)
    proc = subprocess.Popen(["sleep", "30"])
    try:
        ticks = proc_start_ticks(proc.pid)
        assert ticks is not None
        # Right pid and start time but not a monitor (comm is "sleep").
        (tmp_path / "monitor.pid").write_text(f"{proc.pid}\n{ticks}\n")
        assert not monitor_alive(tmp_path)
        # Our own process renamed as a monitor, with a wrong start time: a recycled pid.
        (tmp_path / "monitor.pid").write_text(f"{os.getpid()}\n1\n")
        assert not monitor_alive(tmp_path)
    finally:
        proc.kill()
        proc.wait()
    (tmp_path / "monitor.pid").write_text(f"{proc.pid}\n{ticks}\n")
    assert not monitor_alive(tmp_path)
