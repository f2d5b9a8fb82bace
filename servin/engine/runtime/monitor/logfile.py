"""A container's log file, written by its monitor in Docker's json-file or kubelet's CRI format.

json-file: one JSON object per line, ``{"log": "<text>\\n", "stream": "stdout", "time":
"<RFC3339 nanoseconds>Z"}``; a line longer than 16 KiB is cut into 16 KiB pieces that carry no
trailing newline, as Docker does. CRI: ``<RFC3339Nano> <stream> <F|P> <bytes>\\n``, P marking a
piece of a longer line. Both rotate at ``max_size`` keeping ``max_file`` files (the log, then
``.1`` the newest rotated one, ...); with ``max_file`` 1 the log is truncated instead.

Writes go straight to the kernel (no user-space buffer): once ``write`` returns, a monitor
that dies loses nothing. A failing disk never stops the monitor: errors are counted.
"""

from __future__ import annotations

import os
import time
from json.encoder import encode_basestring  # the C escaper: fast, no ensure_ascii

from servin.engine.runtime.monitor.protocol import STDERR, STDOUT, LogConfig, utc_seconds_text

# The longest piece of a line logged as one entry (Docker's and containerd's default).
MAX_LINE = 16 * 1024

_STREAM_NAMES = {STDOUT: "stdout", STDERR: "stderr"}
# Bytes that stand for themselves inside a JSON string (and the newlines between entries).
_PLAIN = bytes(range(0x20, 0x80)).replace(b'"', b"").replace(b"\\", b"") + b"\n"


class LogWriter:
    """Turns a container's output chunks into log entries, per stream, and rotates the file."""

    def __init__(self, path: str, driver: str = "json-file", max_size: int = 0,
                 max_file: int = 1, *, fd: int = -1, attrs: dict[str, str] | None = None) -> None:
        # Plain strings and os calls, no pathlib: this runs in the long-lived monitor, where
        # every library object touched costs a private page (see setup.py).
        self.path = path
        self.max_size = max_size
        self.max_file = max_file
        self._cri = driver == "cri"
        # json-file's "attrs" member (--log-opt labels=/env=), the same on every entry.
        self._attrs = "" if not attrs else ',"attrs":{' + ",".join(
            f"{encode_basestring(k)}:{encode_basestring(v)}" for k, v in sorted(attrs.items())
        ) + "}"
        self._pending: dict[int, bytearray] = {STDOUT: bytearray(), STDERR: bytearray()}
        self._sec = -1
        self._sec_text = ""
        self.errors = 0  # writes that failed (disk full, ...): counted, never fatal
        self._fd = fd
        self._size = 0
        if fd < 0:
            self._open(truncate=False)
        else:
            self._size = os.fstat(fd).st_size

    @classmethod
    def from_config(cls, config: LogConfig) -> LogWriter:
        """A writer that opens (appends to) ``config.path``."""
        return cls(str(config.path), config.driver, config.max_size, config.max_file,
                   attrs=config.attrs)

    def _open(self, *, truncate: bool) -> None:
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
        if truncate:
            flags |= os.O_TRUNC
        self._fd = os.open(self.path, flags, 0o640)
        self._size = os.fstat(self._fd).st_size

    def _timestamp(self, ns: int) -> bytes:
        sec, frac = divmod(ns, 1_000_000_000)
        if sec != self._sec:
            # The date text once per second; the nanoseconds are appended per entry.
            self._sec = sec
            self._sec_text = utc_seconds_text(sec)
        return f"{self._sec_text}.{frac:09d}Z".encode()

    def _entry(self, stream: int, piece: bytes, complete: bool, ts: bytes) -> bytes:
        name = _STREAM_NAMES[stream]
        if self._cri:
            if complete and piece.endswith(b"\n"):
                piece = piece[:-1]
            tag = b" F " if complete else b" P "
            return b"".join((ts, b" ", name.encode(), tag, piece, b"\n"))
        text = encode_basestring(piece.decode("utf-8", "replace"))
        return f'{{"log":{text},"stream":"{name}"{self._attrs},"time":"{ts.decode()}"}}\n'.encode()

    def write(self, stream: int, data: bytes, ns: int | None = None) -> None:
        """Log a chunk of a stream's output: every complete line, and pieces of long ones."""
        buf = self._pending[stream]
        buf += data
        ts = self._timestamp(time.time_ns() if ns is None else ns)
        end = buf.rfind(b"\n") + 1
        if end:
            lines = bytes(buf[:end])
            # The common case, every line shorter than MAX_LINE, is formatted for the whole
            # chunk at once (C string operations, a few per chunk instead of per line).
            if max(map(len, lines.split(b"\n"))) < MAX_LINE:
                del buf[:end]
                self._append_block(self._block(stream, lines, ts))
                if len(buf) < MAX_LINE:
                    return
        entries: list[bytes] = []
        start = 0
        end = len(buf)
        while start < end:
            nl = buf.find(b"\n", start, min(end, start + MAX_LINE))
            if nl >= 0:
                entries.append(self._entry(stream, bytes(buf[start : nl + 1]), True, ts))
                start = nl + 1
            elif end - start >= MAX_LINE:
                entries.append(self._entry(stream, bytes(buf[start : start + MAX_LINE]), False, ts))
                start += MAX_LINE
            else:
                break
        del buf[:start]
        if entries:
            self._append(entries)

    def _block(self, stream: int, lines: bytes, ts: bytes) -> bytes:
        """The entries for ``lines`` (whole lines, each shorter than MAX_LINE), byte for byte
        what ``_entry`` makes of each."""
        name = _STREAM_NAMES[stream]
        if self._cri:
            prefix = b"".join((ts, b" ", name.encode(), b" F "))
            return prefix + lines[:-1].replace(b"\n", b"\n" + prefix) + b"\n"
        end = f',"stream":"{name}"{self._attrs},"time":"{ts.decode()}"}}\n'
        if not lines.translate(None, _PLAIN):
            # Printable ASCII without quotes or backslashes is its own JSON string text.
            head = b'{"log":"'
            tail = b'\\n"' + end.encode()
            return head + lines[:-1].replace(b"\n", tail + head) + tail
        texts = lines.decode("utf-8", "replace").split("\n")
        texts.pop()  # after the last newline
        # Escaped JSON strings hold no raw newline, so in "\n".join(...) the only '"\n"'
        # are the joins: each becomes the end of one entry and the start of the next.
        joined = "\n".join(map(encode_basestring, texts))
        body = joined.replace('"\n"', f'\\n"{end}{{"log":"')
        return f'{{"log":{body[:-1]}\\n"{end}'.encode()

    def _append_block(self, block: bytes) -> None:
        """Write a block of whole entries, rotating between entries where needed."""
        if not self.max_size or self._size + len(block) <= self.max_size:
            self._write(block)
            return
        self._append([entry + b"\n" for entry in block.split(b"\n")[:-1]])

    def finish(self, ns: int | None = None) -> None:
        """At end of output: log what is left of unterminated lines (as Docker does)."""
        ts = self._timestamp(time.time_ns() if ns is None else ns)
        entries = []
        for stream, buf in self._pending.items():
            if buf:
                # An unterminated last line is a whole message: F in CRI, no newline in json.
                entries.append(self._entry(stream, bytes(buf), True, ts))
                buf.clear()
        if entries:
            self._append(entries)

    def _append(self, entries: list[bytes]) -> None:
        max_size = self.max_size
        if not max_size:
            self._write(b"".join(entries))
            return
        out = bytearray()
        for entry in entries:
            if self._size + len(out) > 0 and self._size + len(out) + len(entry) > max_size:
                self._write(out)
                out.clear()
                self._rotate()
            out += entry
        self._write(out)

    def _write(self, data: bytes | bytearray) -> None:
        view = memoryview(data)
        try:
            while view:
                n = os.write(self._fd, view)
                self._size += n
                view = view[n:]
        except OSError:
            self.errors += 1

    def _rotate(self) -> None:
        path = self.path
        self.close()
        keep = self.max_file
        try:
            if keep >= 2:
                for i in range(keep - 1, 1, -1):
                    try:  # noqa: SIM105 (contextlib costs the monitor pages)
                        os.rename(f"{path}.{i - 1}", f"{path}.{i}")
                    except FileNotFoundError:
                        pass
                os.rename(path, f"{path}.1")
        except OSError:
            self.errors += 1
        self._reopen(truncate=True)

    def _reopen(self, *, truncate: bool) -> None:
        try:
            self._open(truncate=truncate)
        except OSError:
            self.errors += 1  # writes fail (and are counted) until a later rotation succeeds
            self._fd = -1
            self._size = 0

    def reopen(self) -> None:
        """Reopen the log path (after someone else rotated it, as kubelet does in CRI mode)."""
        self.close()
        self._reopen(truncate=False)

    def sync(self) -> None:
        """Make everything written so far durable."""
        try:
            os.fdatasync(self._fd)
        except OSError:
            self.errors += 1

    def close(self) -> None:
        """Close the file (pending partial lines are not written: call ``finish`` first)."""
        if self._fd >= 0:
            try:  # noqa: SIM105 (contextlib costs the monitor pages)
                os.close(self._fd)
            except OSError:
                pass
            self._fd = -1
