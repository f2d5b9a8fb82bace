"""The log writer alone: Docker's json-file and kubelet's CRI formats, splitting, rotation."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

from servin.engine.runtime.monitor.logfile import MAX_LINE, LogWriter
from servin.engine.runtime.monitor.protocol import STDERR, STDOUT, LogConfig

T0 = 1_700_000_000_123_456_789
RFC3339_NANO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$")


def entries(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_json_file_lines_in_order_with_streams_and_times(tmp_path: Path) -> None:
    log = tmp_path / "c-json.log"
    w = LogWriter.from_config(LogConfig(path=log))
    w.write(STDOUT, b"one\ntw")
    w.write(STDERR, b"oops\n")
    w.write(STDOUT, b"o\nthree\n")
    w.write(STDOUT, b"no newline at end")
    w.finish()
    w.close()
    got = entries(log)
    assert [(e["stream"], e["log"]) for e in got] == [
        ("stdout", "one\n"), ("stderr", "oops\n"), ("stdout", "two\n"), ("stdout", "three\n"),
        ("stdout", "no newline at end"),
    ]
    assert all(RFC3339_NANO.match(e["time"]) for e in got)
    assert [e["time"] for e in got] == sorted(e["time"] for e in got)
    assert set(got[0]) == {"log", "stream", "time"}


def test_json_file_splits_long_lines_at_16k_and_escapes(tmp_path: Path) -> None:
    log = tmp_path / "c-json.log"
    w = LogWriter.from_config(LogConfig(path=log))
    line = b"a" * (MAX_LINE * 2 + 10) + b"\n"
    w.write(STDOUT, line[:5000])
    w.write(STDOUT, line[5000:] + b'q"\\\t\x01\xff\n')
    w.finish()
    w.close()
    got = [e["log"] for e in entries(log)]
    assert got[:3] == ["a" * MAX_LINE, "a" * MAX_LINE, "a" * 10 + "\n"]
    assert got[3] == 'q"\\\t\x01\ufffd\n'  # invalid UTF-8 becomes U+FFFD, as in Go
    assert len(got) == 4


def test_cri_format_full_and_partial(tmp_path: Path) -> None:
    log = tmp_path / "c.log"
    w = LogWriter.from_config(LogConfig(path=log, driver="cri"))
    w.write(STDOUT, b"hello world\n" + b"b" * (MAX_LINE + 3) + b"\n")
    w.write(STDERR, b"E1\n")
    w.write(STDOUT, b"tail")
    w.finish()
    w.close()
    rows = log.read_bytes().split(b"\n")
    assert rows[-1] == b""
    parsed = [r.split(b" ", 3) for r in rows[:-1]]
    assert all(RFC3339_NANO.match(p[0].decode()) for p in parsed)
    assert [(p[1], p[2], p[3]) for p in parsed] == [
        (b"stdout", b"F", b"hello world"),
        (b"stdout", b"P", b"b" * MAX_LINE),
        (b"stdout", b"F", b"bbb"),
        (b"stderr", b"F", b"E1"),
        (b"stdout", b"F", b"tail"),
    ]


def test_rotation_keeps_max_file_files_and_every_recent_line(tmp_path: Path) -> None:
    log = tmp_path / "c-json.log"
    w = LogWriter.from_config(LogConfig(path=log, max_size=1000, max_file=3))
    for i in range(200):
        w.write(STDOUT, b"line %05d\n" % i)
    w.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["c-json.log", "c-json.log.1", "c-json.log.2"]
    for p in tmp_path.iterdir():
        assert 0 < p.stat().st_size <= 1000
    # Oldest first: .2, .1, then the live file; the lines must be consecutive up to the last.
    numbers = [int(e["log"].split()[1]) for name in ("c-json.log.2", "c-json.log.1", "c-json.log")
               for e in entries(tmp_path / name)]
    assert numbers == list(range(numbers[0], 200))
    assert numbers[0] > 0  # older ones were rotated away


def test_rotation_with_one_file_truncates(tmp_path: Path) -> None:
    log = tmp_path / "c-json.log"
    w = LogWriter.from_config(LogConfig(path=log, max_size=500, max_file=1))
    for i in range(100):
        w.write(STDOUT, b"n %03d\n" % i)
    w.close()
    assert [p.name for p in tmp_path.iterdir()] == ["c-json.log"]
    assert log.stat().st_size <= 500
    assert entries(log)[-1]["log"] == "n 099\n"


def test_appends_to_an_existing_log(tmp_path: Path) -> None:
    log = tmp_path / "c-json.log"
    for word in (b"first\n", b"second\n"):
        w = LogWriter.from_config(LogConfig(path=log))
        w.write(STDOUT, word)
        w.close()
    assert [e["log"] for e in entries(log)] == ["first\n", "second\n"]


def _one_by_one(path: Path, driver: str, writes: list[tuple[int, bytes, int]],
                attrs: dict[str, str]) -> bytes:  # fmt: skip
    """What the writer logs for ``writes`` when every line goes through ``_entry`` alone."""
    w = LogWriter(str(path), driver, attrs=attrs)
    out = []
    pending = {STDOUT: b"", STDERR: b""}
    for stream, data, ns in writes:
        ts = w._timestamp(ns)
        buf = pending[stream] + data
        *lines, pending[stream] = buf.split(b"\n")
        out += [w._entry(stream, line + b"\n", True, ts) for line in lines]
    w.close()
    return b"".join(out)


@pytest.mark.parametrize(("driver", "attrs"), [("json-file", {}), ("cri", {}),
                                                ("json-file", {"tier": 'w"eb', "é": "x"})])
def test_whole_chunks_are_logged_byte_for_byte_as_line_by_line(
    tmp_path: Path, driver: str, attrs: dict[str, str]
) -> None:
    rng = random.Random(7)
    alphabet = [b"a", b"Z", b"0", b" ", b'"', b"\\", b"\t", b"\x01", b"\x1f", b"\x7f", b"<>&",
                "é".encode(), "☃".encode(), "\u2028".encode(), "😀".encode(), b"\xff", b"\xc3",
                b"\r", b"/", b"\n", b"\n", b"\n"]  # fmt: skip
    plain = [b"a", b"Z", b"0", b" ", b"/", b"<>&", b"\x7f", b"\n"]  # no escapes needed
    writes = []
    for i in range(400):
        chars = plain if i % 2 else alphabet
        data = b"".join(rng.choice(chars) for _ in range(rng.randrange(0, 300)))
        writes.append((rng.choice((STDOUT, STDERR)), data, T0 + i * 1_000_003))
    log = tmp_path / "bulk.log"
    w = LogWriter(str(log), driver, attrs=attrs)
    for stream, data, ns in writes:
        w.write(stream, data, ns)
    w.close()
    assert log.read_bytes() == _one_by_one(tmp_path / "single.log", driver, writes, attrs)


def test_json_file_attributes_on_every_entry(tmp_path: Path) -> None:
    """--log-opt labels=/env=: docker's "attrs" member, between "stream" and "time"."""
    log = tmp_path / "c-json.log"
    w = LogWriter.from_config(LogConfig(path=log, attrs={"tier": 'w"eb', "MODE": "prod"}))
    w.write(STDOUT, b"a\n")
    w.write(STDERR, b"b\n")
    w.close()
    got = entries(log)
    assert [e["attrs"] for e in got] == [{"MODE": "prod", "tier": 'w"eb'}] * 2
    assert list(got[0]) == ["log", "stream", "attrs", "time"]
