"""Reading a container's json-file log as a stream of chunks: tail, time windows, follow.

The reader is an async iterator of ``LogChunk``s, each many entries decoded from a block of
whole lines of the file (``CHUNK`` bytes), so a door sends one message per chunk and frames
the entries as it likes (servin.v1 sends them as they are; docker's API would put its 8-byte
stream headers on them). Memory stays bounded whatever the log's size: files are read
forward block by block from where the output begins, and ``--tail N`` finds that place by
counting newlines backwards from the end. A block is decoded with one ``json.loads`` of all
its lines (about 4x faster than a call per line); a block holding a damaged line (a torn
write) is decoded line by line, skipping the damaged one.

Rotated files are ``<log>.1`` (newest) ... ``<log>.N``; entries are read oldest first. Every
file is opened before reading starts, so a rotation meanwhile renames nothing under the
reader. Following waits on inotify (the log's directory: writes, and the new file a rotation
creates) and on the container's exit, never on a timer. ``LogService`` is the door-facing
API.
"""

from __future__ import annotations

import asyncio
import calendar
import contextlib
import json
import logging
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from itertools import groupby
from pathlib import Path

from servin.engine.containers.locks import ContainerLocks
from servin.engine.containers.model import PAUSED, RUNNING
from servin.engine.containers.monitors import Monitors
from servin.engine.containers.store import ContainerStore
from servin.errors import InvalidArgument

log = logging.getLogger(__name__)

CHUNK = 256 * 1024  # file bytes decoded into one chunk
_BLOCK = 64 * 1024  # backwards steps of the tail search
FOLLOW_POLL = 0.05  # only when inotify cannot be had (no instances left)
STDOUT = 1
STDERR = 2


@dataclass
class LogChunk:
    """Consecutive log records in file order.

    Record ``i`` is stream ``streams[i]`` (1 stdout, 2 stderr), the next ``sizes[i]`` bytes of
    ``data``, and (when times were asked for) ``times[i]`` nanoseconds since the epoch.
    Without times (or details), consecutive entries of one stream may be merged into one
    record. With details, ``attrs`` are the json-file attributes of every entry in the chunk.
    """

    data: bytes
    sizes: list[int]
    streams: bytes
    times: list[int] = field(default_factory=list)
    attrs: dict[str, str] = field(default_factory=dict)  # with details: every entry's attrs

    def records(self) -> Iterator[tuple[int, int, memoryview]]:
        """(stream, time ns or 0, bytes) of each record."""
        view = memoryview(self.data)
        times = self.times
        pos = 0
        for i, size in enumerate(self.sizes):
            yield self.streams[i], times[i] if times else 0, view[pos : pos + size]
            pos += size


def parse_time_ns(text: str) -> int:
    """Nanoseconds since the epoch from an RFC 3339 timestamp with up to 9 decimals."""
    main, _, frac = text.rstrip("Z").partition(".")
    seconds = int(datetime.fromisoformat(main + "+00:00").timestamp())
    return seconds * 1_000_000_000 + int((frac + "000000000")[:9] or 0)


class _Clock:
    """RFC 3339 UTC texts to nanoseconds; the date part is parsed once per second seen."""

    def __init__(self) -> None:
        self._seconds: dict[str, int] = {}

    def ns(self, text: str) -> int:
        if len(text) < 20 or text[-1] != "Z" or text[19] not in ".Z":
            return parse_time_ns(text)
        head = text[:19]
        base = self._seconds.get(head)
        if base is None:
            if len(self._seconds) > 4096:
                self._seconds.clear()
            parsed = datetime.strptime(head, "%Y-%m-%dT%H:%M:%S").timetuple()
            base = self._seconds[head] = calendar.timegm(parsed) * 1_000_000_000
        frac = text[20:-1]
        return base + int((frac + "00000000")[:9]) if frac else base


def log_files(path: Path) -> list[Path]:
    """The log and its rotated files, oldest first."""
    rotated = []
    n = 1
    while (candidate := path.with_name(f"{path.name}.{n}")).exists():
        rotated.append(candidate)
        n += 1
    return [*reversed(rotated), *([path] if path.exists() else [])]


@dataclass
class Entries:
    """Decoded entries of a block, as parallel lists (attrs only when asked for)."""

    texts: list[str]
    names: list[str | None]  # "stdout", "stderr" (None: stdout)
    times: list[str]
    attrs: list[dict[str, str]] | None = None

    def take(self, keep: list[int]) -> Entries:
        """The entries at the indexes ``keep``."""
        return Entries([self.texts[i] for i in keep], [self.names[i] for i in keep],
                       [self.times[i] for i in keep],
                       None if self.attrs is None else [self.attrs[i] for i in keep])  # fmt: skip


def decode_lines(block: bytes, attrs: bool = False) -> Entries:
    """The entries of a block of whole json-file lines (damaged lines are skipped); with
    ``attrs``, each entry's json-file attributes too."""
    try:
        objs = json.loads(b"[" + block.rstrip(b"\n").replace(b"\n", b",") + b"]")
        texts = [o["log"] for o in objs]
        names = [o.get("stream") for o in objs]
        times = [o["time"] for o in objs]
        "".join(texts)  # every log is a string
        "".join(times)
        if not attrs:
            return Entries(texts, names, times)
        found = [o.get("attrs") or {} for o in objs]
        if all(isinstance(a, dict) for a in found):
            return Entries(texts, names, times, found)
    except (ValueError, KeyError, TypeError, AttributeError):
        pass
    out = Entries([], [], [], [] if attrs else None)
    for raw in block.split(b"\n"):
        if not raw:
            continue
        try:
            obj = json.loads(raw)
            text, name, when = obj["log"], obj.get("stream"), obj["time"]
            extra = obj.get("attrs") or {}
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
        if isinstance(text, str) and isinstance(when, str) and isinstance(extra, dict):
            out.texts.append(text)
            out.names.append(name)
            out.times.append(when)
            if out.attrs is not None:
                out.attrs.append(extra)
    return out


class _Decoder:
    """Turns decoded entries into chunks: stream choice, time window, records."""

    def __init__(self, *, stdout: bool, stderr: bool, since_ns: int | None,
                 until_ns: int | None, timestamps: bool,
                 details: bool = False) -> None:  # fmt: skip
        self.want = (stdout, stderr)
        self.since_ns = since_ns
        self.until_ns = until_ns
        self.timestamps = timestamps
        self.details = details
        self.clock = _Clock()
        self.done = False  # an entry past ``until`` was seen: nothing more is wanted

    def chunks(self, block: bytes) -> list[LogChunk]:
        """The chunks for a block of whole lines (none if nothing in it is wanted)."""
        entries = decode_lines(block, self.details)
        ns: list[int] = []
        if self.timestamps or self.since_ns is not None or self.until_ns is not None:
            try:
                ns = [self.clock.ns(t) for t in entries.times]
            except ValueError:  # a damaged time: keep the entries whose time reads
                entries = entries.take([i for i, t in enumerate(entries.times)
                                        if _readable_time(t)])  # fmt: skip
                ns = [self.clock.ns(t) for t in entries.times]
        keep: list[int] | None = None
        if self.until_ns is not None and ns and max(ns) > self.until_ns:
            until = self.until_ns
            keep = list(range(next(i for i, t in enumerate(ns) if t > until)))
            self.done = True
        if self.since_ns is not None and ns and min(ns) < self.since_ns:
            since = self.since_ns
            keep = [i for i in (keep if keep is not None else range(len(ns))) if ns[i] >= since]
        if self.want != (True, True) and (self.want[1] or "stderr" in entries.names):
            want_err = self.want[1]  # one stream only: stderr, or else stdout
            keep = [i for i in (keep if keep is not None else range(len(entries.texts)))
                    if (entries.names[i] == "stderr") == want_err]  # fmt: skip
        if keep is not None:
            entries = entries.take(keep)
            ns = [ns[i] for i in keep] if ns else ns
        if not entries.texts:
            return []
        codes = None if "stderr" not in entries.names else [
            STDERR if n == "stderr" else STDOUT for n in entries.names]  # fmt: skip
        if not (self.timestamps or self.details):
            return [self._runs(entries.texts, codes)]
        if entries.attrs is None or all(a == entries.attrs[0] for a in entries.attrs):
            attrs = entries.attrs[0] if entries.attrs else {}
            return [self._each(entries.texts, codes, ns, attrs)]
        out = []  # the attributes change within the block (rare): one chunk per run
        pos = 0
        for items, run in groupby(entries.attrs, key=lambda a: sorted(a.items())):
            n = sum(1 for _ in run)
            end = pos + n
            out.append(self._each(entries.texts[pos:end], codes and codes[pos:end],
                                  ns[pos:end], dict(items)))  # fmt: skip
            pos = end
        return out

    def _each(self, texts: list[str], codes: list[int] | None, ns: list[int],
              attrs: dict[str, str]) -> LogChunk:  # fmt: skip
        """One record per entry."""
        data = "".join(texts).encode("utf-8", "replace")
        if len(data) == sum(map(len, texts)):  # all ASCII: characters are bytes
            sizes = list(map(len, texts))
        else:
            sizes = [len(t.encode("utf-8", "replace")) for t in texts]
        streams = bytes(codes) if codes is not None else b"\x01" * len(texts)
        return LogChunk(data, sizes, streams, ns if self.timestamps else [], attrs)

    @staticmethod
    def _runs(texts: list[str], codes: list[int] | None) -> LogChunk:
        """One record per run of entries of one stream."""
        if codes is None or len(set(codes)) == 1:
            data = "".join(texts).encode("utf-8", "replace")
            return LogChunk(data, [len(data)], bytes((codes[0] if codes else STDOUT,)))
        pieces: list[bytes] = []
        streams_out = bytearray()
        pos = 0
        for code, run in groupby(codes):
            n = sum(1 for _ in run)
            pieces.append("".join(texts[pos : pos + n]).encode("utf-8", "replace"))
            streams_out.append(code)
            pos += n
        return LogChunk(b"".join(pieces), [len(p) for p in pieces], bytes(streams_out))


def _readable_time(text: str) -> bool:
    try:
        _Clock().ns(text)
    except ValueError:
        return False
    return True


@dataclass
class _Segment:
    """One open log file and how far it has been read."""

    fd: int
    ino: int
    offset: int
    limit: int | None  # stop here (a snapshot of a live file's size); None: read to EOF


class _Files:
    """The log's files from where the output begins, read forward in blocks of whole lines.

    Blocking: every method runs in a worker thread.
    """

    def __init__(self, path: Path, tail: int, follow: bool) -> None:
        self.path = path
        self.follow = follow
        self.segments: list[_Segment] = []
        self.pending = b""  # the start of a line whose end is not read yet
        for name in log_files(path):
            try:
                fd = os.open(name, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:  # rotated away meanwhile
                continue
            st = os.fstat(fd)
            self.segments.append(_Segment(fd, st.st_ino, 0, st.st_size))
        if self.segments and follow:
            self.segments[-1].limit = None
        if tail >= 0:
            self._seek_tail(tail)

    def _seek_tail(self, tail: int) -> None:
        """Skip to the start of the last ``tail`` lines."""
        need = tail
        for index in range(len(self.segments) - 1, -1, -1):
            seg = self.segments[index]
            size = seg.limit if seg.limit is not None else os.fstat(seg.fd).st_size
            start, found = _tail_start(seg.fd, size, need)
            seg.offset = start
            need -= found
            if need <= 0:
                for old in self.segments[:index]:
                    os.close(old.fd)
                del self.segments[:index]
                return

    def close(self) -> None:
        for seg in self.segments:
            with contextlib.suppress(OSError):
                os.close(seg.fd)
        self.segments.clear()

    def read(self) -> bytes:
        """The next block of whole lines; b"" when nothing more can be read now."""
        if not self.segments and self.follow:
            self._open_live()  # no file yet: the writer may create it
        while self.segments:
            seg = self.segments[0]
            last = len(self.segments) == 1
            size = CHUNK
            if seg.limit is not None and seg.offset >= seg.limit:
                # Past the snapshot: only the rest of a line cut by it is still read.
                size = 4096 if last and self.pending else 0
            data = os.pread(seg.fd, size, seg.offset) if size else b""
            if data:
                seg.offset += len(data)
                buf = self.pending + data if self.pending else data
                cut = buf.rfind(b"\n") + 1
                if cut:
                    self.pending = buf[cut:]
                    return buf[:cut]
                self.pending = buf  # a line longer than what was read: read on
                continue
            if last and self.follow:
                if self._reopen_rotated(seg):
                    continue
                return b""
            if last:
                return b""
            # An older file is over: what is left of it is its (damaged) last line.
            os.close(seg.fd)
            del self.segments[0]
            rest, self.pending = self.pending, b""
            if rest:
                return rest + b"\n"
        return b""

    def _open_live(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return
        self.segments.append(_Segment(fd, os.fstat(fd).st_ino, 0, None))

    def _reopen_rotated(self, seg: _Segment) -> bool:
        """At the end of the live file: follow a rotation or truncation; True if it did."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return False  # between a rotation's rename and its new file
        if st.st_ino == seg.ino:
            if os.fstat(seg.fd).st_size < seg.offset:  # truncated (max-file 1)
                seg.offset, self.pending = 0, b""
                return True
            return False
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return False
        # The old file was fully read above (its writer had moved on before renaming it).
        os.close(seg.fd)
        self.segments[0] = _Segment(fd, os.fstat(fd).st_ino, 0, None)
        self.pending = b""
        return True

    def rest(self) -> bytes:
        """At the very end: an unterminated last line, for a last try at decoding it."""
        rest, self.pending = self.pending, b""
        return rest + b"\n" if rest else b""

    def step(self, decoder: _Decoder) -> tuple[list[LogChunk], bool]:
        """The next chunks, and whether anything was read (False: nothing more now)."""
        block = self.read()
        if not block:
            return [], False
        return decoder.chunks(block), True

    def final(self, decoder: _Decoder) -> list[LogChunk]:
        block = self.rest()
        return decoder.chunks(block) if block else []


def _tail_start(fd: int, size: int, n: int) -> tuple[int, int]:
    """Where the last ``n`` lines of a file begin, and how many lines that is (<= n)."""
    if n <= 0 or size <= 0:
        return size, 0
    limit = size - 1 if os.pread(fd, 1, size - 1) == b"\n" else size
    found = 0
    pos = limit
    while pos > 0:
        step = min(_BLOCK, pos)
        pos -= step
        block = os.pread(fd, step, pos)
        count = block.count(b"\n")
        if found + count >= n:
            at = len(block)
            for _ in range(n - found):
                at = block.rfind(b"\n", 0, at)
            return pos + at + 1, n
        found += count
    return 0, found + 1


class _Waker:
    """Wakes a follower when the log's directory changes or the container exits."""

    def __init__(self, directory: str, exited: asyncio.Event | None) -> None:
        self.exited = exited
        self._exit_task: asyncio.Task[bool] | None = None
        self.inotify = None
        try:
            from servin.engine.linux.inotify import (
                IN_CREATE,
                IN_MODIFY,
                IN_MOVED_TO,
                Inotify,
            )

            inotify = Inotify()
            try:
                inotify.add_watch(directory, IN_MODIFY | IN_CREATE | IN_MOVED_TO)
            except OSError:
                inotify.close()
                raise
            self.inotify = inotify
        except OSError as exc:
            log.warning("following a log without inotify (%s): checking it every %s s",
                        exc, FOLLOW_POLL)  # fmt: skip

    async def wait(self) -> None:
        """Return on a change in the directory, the container's exit, or (no inotify) soon."""
        if self.exited is not None and self._exit_task is None:
            self._exit_task = asyncio.ensure_future(self.exited.wait())
        if self.inotify is not None:
            await self.inotify.wait(also=self._exit_task)
            self.inotify.drain()
        elif self._exit_task is None:
            await asyncio.sleep(FOLLOW_POLL)
        else:
            await asyncio.wait({self._exit_task}, timeout=FOLLOW_POLL)

    def close(self) -> None:
        if self._exit_task is not None:
            self._exit_task.cancel()
        if self.inotify is not None:
            self.inotify.close()


async def read_log(
    path: Path,
    *,
    tail: int = -1,
    since_ns: int | None = None,
    until_ns: int | None = None,
    follow: bool = False,
    running: bool = False,
    exited: asyncio.Event | None = None,
    stdout: bool = True,
    stderr: bool = True,
    timestamps: bool = False,
    details: bool = False,
) -> AsyncIterator[LogChunk]:
    """The log's entries as chunks, then (``follow`` while ``running`` and ``exited`` is not
    set) new ones as they are written, until the container stops.

    ``timestamps``: one record per entry with its time; ``details``: one record per entry, the
    chunk carrying the entries' json-file attributes; otherwise runs of one stream are merged.
    ``since_ns``/``until_ns`` bound entry times; ``tail`` >= 0 starts that many lines before
    the end (before the time window applies), as docker does.
    """
    decoder = _Decoder(stdout=stdout, stderr=stderr, since_ns=since_ns, until_ns=until_ns,
                       timestamps=timestamps, details=details)  # fmt: skip

    def alive() -> bool:
        return running and (exited is None or not exited.is_set())

    files = await asyncio.to_thread(_Files, path, tail, follow and alive())
    waker: _Waker | None = None
    try:
        while True:
            ended = not (follow and alive())
            if not ended and waker is None:
                # Watching starts before the end is read, so no write can slip between.
                waker = _Waker(str(path.parent), exited)
            chunks, progressed = await asyncio.to_thread(files.step, decoder)
            for chunk in chunks:
                yield chunk
            if decoder.done:
                return
            if progressed:
                continue
            if ended:
                for chunk in files.final(decoder):
                    yield chunk
                return
            await waker.wait()  # type: ignore[union-attr]  # made above unless ended
    finally:
        if waker is not None:
            waker.close()
        files.close()


class LogService:
    """Containers' logs for every door."""

    def __init__(self, store: ContainerStore, monitors: Monitors, locks: ContainerLocks) -> None:
        self.store = store
        self.monitors = monitors
        self.locks = locks

    async def read(
        self, ref: str, *, follow: bool = False, tail: int = -1, since_ns: int | None = None,
        until_ns: int | None = None, stdout: bool = True, stderr: bool = True,
        timestamps: bool = False, details: bool = False,
    ) -> AsyncIterator[LogChunk]:
        """The container's log as chunks of entries of the streams asked for (and new ones
        with ``follow``, until the container stops): see ``read_log``."""
        c = await asyncio.to_thread(self.store.resolve, ref)
        if c.host_config.log_config.type == "none":
            raise InvalidArgument('configured logging driver does not support reading ("none")')
        async for chunk in read_log(
            self.monitors.paths(c.id).log_path,
            tail=tail,
            since_ns=since_ns,
            until_ns=until_ns,
            follow=follow,
            running=c.state.status in (RUNNING, PAUSED),
            exited=self.locks.exit_event(c.id),
            stdout=stdout,
            stderr=stderr,
            timestamps=timestamps,
            details=details,
        ):
            yield chunk
