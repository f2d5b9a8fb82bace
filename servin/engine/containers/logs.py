"""Reading a container's json-file log: tail, time windows, and follow across rotation.

Rotated files are ``<log>.1`` (newest) ... ``<log>.N``; entries are read oldest first. Tail
reads files backwards in blocks so ``--tail 100`` of a 1 GB log touches only its end.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

_BLOCK = 64 * 1024
FOLLOW_POLL = 0.05


@dataclass(frozen=True)
class LogLine:
    """One log entry."""

    stream: int  # 1 stdout, 2 stderr
    time_ns: int
    data: bytes
    attrs: dict[str, str] | None = None  # json-file's "attrs" (--log-opt labels=/env=)


def parse_time_ns(text: str) -> int:
    """Nanoseconds since the epoch from an RFC 3339 timestamp with up to 9 decimals."""
    main, _, frac = text.rstrip("Z").partition(".")
    seconds = int(datetime.fromisoformat(main + "+00:00").timestamp())
    return seconds * 1_000_000_000 + int((frac + "000000000")[:9] or 0)


def parse_line(raw: bytes) -> LogLine | None:
    """One json-file line, or None if it is damaged (a torn write)."""
    try:
        obj = json.loads(raw)
        return LogLine(
            2 if obj.get("stream") == "stderr" else 1,
            parse_time_ns(obj["time"]),
            obj["log"].encode(),
            obj.get("attrs") or None,
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def log_files(path: Path) -> list[Path]:
    """The log and its rotated files, oldest first."""
    rotated = []
    n = 1
    while (candidate := path.with_name(f"{path.name}.{n}")).exists():
        rotated.append(candidate)
        n += 1
    return [*reversed(rotated), *([path] if path.exists() else [])]


def _lines_backwards(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        pos = f.tell()
        rest = b""
        while pos > 0:
            step = min(_BLOCK, pos)
            pos -= step
            f.seek(pos)
            chunk = f.read(step) + rest
            lines = chunk.split(b"\n")
            rest = lines[0]
            for line in reversed(lines[1:]):
                if line:
                    yield line
        if rest:
            yield rest


def read_tail(path: Path, tail: int) -> list[bytes]:
    """The last ``tail`` raw lines across the log files (all when ``tail`` < 0)."""
    files = log_files(path)
    if tail < 0:
        out: list[bytes] = []
        for f in files:
            out += [line for line in f.read_bytes().split(b"\n") if line]
        return out
    collected: list[bytes] = []
    for f in reversed(files):
        for line in _lines_backwards(f):
            if len(collected) >= tail:
                break
            collected.append(line)
        if len(collected) >= tail:
            break
    return list(reversed(collected))


async def read_log(
    path: Path,
    *,
    tail: int = -1,
    since_ns: int | None = None,
    until_ns: int | None = None,
    follow: bool = False,
    still_running: Callable[[], bool] = lambda: False,
) -> AsyncIterator[LogLine]:
    """Entries of the log, then (with ``follow``) new ones until the container stops."""
    raw_lines = await asyncio.to_thread(read_tail, path, tail)
    # Remember where the current file ended so following continues from there.
    try:
        st = os.stat(path)
        inode, offset = st.st_ino, st.st_size
    except FileNotFoundError:
        inode, offset = 0, 0
    for raw in raw_lines:
        line = parse_line(raw)
        if line is None:
            continue
        if since_ns is not None and line.time_ns < since_ns:
            continue
        if until_ns is not None and line.time_ns > until_ns:
            return
        yield line
    if not follow:
        return
    pending = b""
    while True:
        running = still_running()
        try:
            st = os.stat(path)
        except FileNotFoundError:
            st = None
        if st is not None and (st.st_ino != inode or st.st_size < offset):
            inode, offset, pending = st.st_ino, 0, b""  # rotated: start the new file
        data = b""
        if st is not None and st.st_size > offset:
            data = await asyncio.to_thread(_read_range, path, offset, st.st_size)
            offset += len(data)
        if data:
            pending += data
            *complete, pending = pending.split(b"\n")
            for raw in complete:
                line = parse_line(raw) if raw else None
                if line is None:
                    continue
                if until_ns is not None and line.time_ns > until_ns:
                    return
                if since_ns is None or line.time_ns >= since_ns:
                    yield line
            continue
        if not running:
            return
        await asyncio.sleep(FOLLOW_POLL)


def _read_range(path: Path, start: int, end: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(start)
        return f.read(end - start)
