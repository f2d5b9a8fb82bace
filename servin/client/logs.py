"""``Containers.Logs`` answers: ``LogChunk`` messages, each many log records.

``records`` walks a chunk's records, ``entries`` turns them into ``LogEntry`` messages (one
per entry, as the console handles them), ``chunk_of`` does the reverse (test doubles), and
``Stamper`` prints times as docker's ``logs -t`` does.
"""

from __future__ import annotations

import time

TYPE_CHECKING = False  # typing and collections stay out of the quick CLI's start-up
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping, Sequence
    from typing import Protocol

    from servin.api.servin.v1.containers_pb2 import LogChunk, LogEntry


if TYPE_CHECKING:  # a Protocol for mypy; creating it at run time costs typing

    class LogChunkLike(Protocol):
        """What reading a ``LogChunk`` needs: the generated message and the quick front's lite
        one both have it."""

        @property
        def data(self) -> bytes: ...
        @property
        def sizes(self) -> Sequence[int]: ...
        @property
        def streams(self) -> bytes: ...
        @property
        def times(self) -> Sequence[int]: ...
        @property
        def container_id(self) -> str: ...
        @property
        def attrs(self) -> Mapping[str, str]: ...


def records(chunk: LogChunkLike) -> Iterator[tuple[int, int, bytes]]:
    """(stream, time in ns or 0, bytes) of each record of a ``LogChunk``."""
    data = chunk.data
    times = chunk.times
    streams = chunk.streams
    pos = 0
    for i, size in enumerate(chunk.sizes):
        yield streams[i], times[i] if times else 0, data[pos : pos + size]
        pos += size


def entries(chunk: LogChunk, container_id: str = "") -> Iterator[LogEntry]:
    """The records of a ``LogChunk`` as ``LogEntry`` messages (``container_id`` and the
    chunk's attrs set on each)."""
    from servin.api.servin.v1 import containers_pb2

    cid = chunk.container_id or container_id
    attrs = dict(chunk.attrs)
    for stream, ns, data in records(chunk):
        entry = containers_pb2.LogEntry(stream=stream, data=data, container_id=cid, attrs=attrs)
        if ns:
            entry.time.FromNanoseconds(ns)
        yield entry


def chunk_of(log_entries: Iterable[LogEntry]) -> LogChunk:
    """One ``LogChunk`` holding ``LogEntry`` messages (with their times)."""
    from servin.api.servin.v1 import containers_pb2

    chunk = containers_pb2.LogChunk()
    data = []
    streams = bytearray()
    for e in log_entries:
        data.append(e.data)
        chunk.sizes.append(len(e.data))
        chunk.times.append(e.time.ToNanoseconds())
        streams.append(e.stream)
        chunk.container_id = e.container_id
        chunk.attrs.update(e.attrs)  # the same on every entry of a chunk
    chunk.data = b"".join(data)
    chunk.streams = bytes(streams)
    return chunk


class Stamper:
    """Times as ``2006-01-02T15:04:05.000000000Z`` (docker's ``logs -t``), the date part
    formatted once per second."""

    def __init__(self) -> None:
        self._second = -1
        self._text = b""

    def __call__(self, ns: int) -> bytes:
        second, frac = divmod(ns, 1_000_000_000)
        if second != self._second:
            self._second = second
            self._text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)).encode()
        return b"%s.%09dZ" % (self._text, frac)
