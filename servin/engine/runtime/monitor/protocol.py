"""What the daemon, the zygote and the monitors agree on: specs, records, file names, framing.

Wire protocol: every request and every answer is one JSON object on one line. Answers carry
``"ok": true`` or ``"ok": false`` with ``"error"`` (one line) and ``"kind"`` (a
``servin.errors`` kind, so the daemon re-raises the same class the runtime raised).

After a successful ``attach`` answer the connection carries Docker's multiplexed framing
from the monitor to the client (8-byte header: stream number, three zero bytes, big-endian
uint32 payload length) and raw stdin bytes from the client to the monitor.
"""

from __future__ import annotations

import json
import json.decoder
import json.encoder
import os
import struct
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from servin.errors import ERROR_TABLE, InvalidArgument, ServinError

# Files in a container's state directory (<exec_root>/containers/<id>/).
MONITOR_PID = "monitor.pid"  # "<pid>\n<start time in clock ticks since boot>\n"
CONTAINER_PID = "pid"  # "<host pid of the container's init>\n"
MONITOR_SOCK = "monitor.sock"  # the control socket
EXIT_RECORD = "exit.json"  # written once, atomically, when the container has exited
CONSOLE_SOCK = "console.sock"  # transient: where the runtime sends the pty master

# Files in <exec_root>/monitor/.
ZYGOTE_DIR = "monitor"
ZYGOTE_SOCK = "zygote.sock"
ZYGOTE_LOCK = "zygote.lock"
ZYGOTE_LOG = "zygote.log"

# The process name (comm) every monitor sets, part of proving a pid is really a monitor.
MONITOR_COMM = "servin-monitor"

# Multiplexed stream numbers (Docker's).
STDIN, STDOUT, STDERR = 0, 1, 2
_FRAME = struct.Struct(">BxxxI")
FRAME_HEADER_SIZE = _FRAME.size

# The longest request line either side accepts.
MAX_LINE = 1 << 20

LOG_DRIVERS = ("json-file", "cri")

_KINDS: dict[str, type[ServinError]] = {m.cls.kind: m.cls for m in ERROR_TABLE}


def frame_header(stream: int, length: int) -> bytes:
    """The 8-byte header of one multiplexed frame."""
    return _FRAME.pack(stream, length)


def parse_frame_header(header: bytes) -> tuple[int, int]:
    """(stream number, payload length) of an 8-byte frame header."""
    return _FRAME.unpack(header)


def utc_seconds_text(sec: int) -> str:
    """``YYYY-MM-DDTHH:MM:SS`` (UTC) of a Unix time, by integer arithmetic.

    Not ``time.strftime``: in a monitor its locale and time-zone machinery costs private
    pages (see monitor.py); the proleptic Gregorian conversion is a dozen integer operations.
    """
    days, rem = divmod(sec, 86400)
    hour, rem = divmod(rem, 3600)
    minute, second = divmod(rem, 60)
    # Civil date from days since 1970-01-01, in 400-year eras starting on March 1st.
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    year = yoe + era * 400 + (month <= 2)
    return f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}"


def rfc3339_nano(ns: int | None = None) -> str:
    """A UTC timestamp with nanoseconds, as Go's RFC3339Nano writes it but fixed-width."""
    if ns is None:
        ns = time.time_ns()
    sec, frac = divmod(ns, 1_000_000_000)
    return f"{utc_seconds_text(sec)}.{frac:09d}Z"


def error_answer(error: BaseException) -> dict[str, Any]:
    """The ``ok: false`` answer for an exception: one line of text and its error kind."""
    kind = error.kind if isinstance(error, ServinError) else "internal"
    return {"ok": False, "error": one_line(str(error) or type(error).__name__), "kind": kind}


def error_from_answer(answer: Mapping[str, Any]) -> ServinError:
    """Rebuild the typed error an ``ok: false`` answer describes."""
    cls = _KINDS.get(str(answer.get("kind", "internal")), _KINDS["internal"])
    return cls(str(answer.get("error") or "unknown monitor error"))


def one_line(text: str) -> str:
    """Fold a multi-line message into one line (runtimes like to print several)."""
    parts = [p.strip() for p in text.splitlines() if p.strip()]
    return "; ".join(parts) if parts else text.strip()


# The C encoder and scanner, called directly: json.dumps/json.loads run several Python
# functions per call, each a private page or two in every monitor that calls them.
_c_encoder = json.encoder.c_make_encoder  # type: ignore[attr-defined]  # CPython's C half
_encode = (
    _c_encoder(None, None, json.encoder.encode_basestring_ascii, None, ":", ",",
               False, False, True)
    if _c_encoder is not None
    else None
)
_scan = json.decoder.JSONDecoder().scan_once  # type: ignore[attr-defined]  # set in __init__


def encode_line(obj: Mapping[str, Any]) -> bytes:
    """One protocol line: compact JSON and a newline."""
    if _encode is None:
        return json.dumps(obj, separators=(",", ":")).encode() + b"\n"
    return "".join(_encode(obj, 0)).encode() + b"\n"


def decode_line(line: bytes) -> Any:
    """Parse one protocol line (one JSON value, surrounding whitespace allowed)."""
    text = line.decode().strip()
    try:
        value, end = _scan(text, 0)
    except StopIteration:
        raise ValueError("not a JSON value") from None
    if end != len(text):
        raise ValueError("extra data after the JSON value")
    return value


@dataclass(frozen=True)
class LogConfig:
    """Where and how a container's output is logged."""

    path: Path
    driver: str = "json-file"  # "json-file" (Docker's) or "cri" (kubelet's)
    max_size: int = 0  # bytes per file before rotating; 0 = never rotate
    max_file: int = 1  # files kept in all: path, path.1, ... path.<max_file-1>
    attrs: dict[str, str] = field(default_factory=dict)  # on every json-file entry

    def __post_init__(self) -> None:
        if self.driver not in LOG_DRIVERS:
            raise InvalidArgument(f"unknown log driver {self.driver!r}")
        if self.max_size < 0 or self.max_file < 1:
            raise InvalidArgument("log max_size must be >= 0 and max_file >= 1")


@dataclass(frozen=True)
class RuntimeConfig:
    """Which OCI runtime creates the container: "native", or "runc"/"crun" with its binary."""

    name: str = "native"
    binary: str | None = None
    root: str | None = None  # the external runtime's --root (its state directory)

    def __post_init__(self) -> None:
        if self.name != "native" and not self.binary:
            raise InvalidArgument(f"runtime {self.name!r} needs a binary path")


@dataclass(frozen=True)
class SpawnSpec:
    """Everything a monitor needs to create, run and account for one container."""

    id: str
    bundle: Path
    state_dir: Path
    log: LogConfig
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    open_stdin: bool = False
    tty: bool = False
    # Start the program as soon as it is created (the caller has nothing to do in between):
    # one round trip less than a ``start`` request, and no runtime call from the monitor.
    start: bool = False

    def __post_init__(self) -> None:
        if not self.id or "/" in self.id or self.id in (".", ".."):
            raise InvalidArgument(f"bad container id {self.id!r}")

    def to_json(self) -> dict[str, Any]:
        """The spec as the JSON object of a spawn request."""
        out = asdict(self)
        out["bundle"] = str(self.bundle)
        out["state_dir"] = str(self.state_dir)
        out["log"]["path"] = str(self.log.path)
        return out

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> SpawnSpec:
        """Parse and check a spawn request's spec; raises InvalidArgument if malformed."""
        try:
            log = obj.get("log") or {}
            rt = obj.get("runtime") or {"name": "native"}
            return cls(
                id=str(obj["id"]),
                bundle=Path(obj["bundle"]),
                state_dir=Path(obj["state_dir"]),
                log=LogConfig(
                    path=Path(log["path"]),
                    driver=str(log.get("driver", "json-file")),
                    max_size=int(log.get("max_size") or 0),
                    max_file=int(log.get("max_file") or 1),
                    attrs={str(k): str(v) for k, v in (log.get("attrs") or {}).items()},
                ),
                runtime=RuntimeConfig(
                    name=str(rt.get("name", "native")),
                    binary=rt.get("binary"),
                    root=rt.get("root"),
                ),
                open_stdin=bool(obj.get("open_stdin", False)),
                tty=bool(obj.get("tty", False)),
                start=bool(obj.get("start", False)),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise InvalidArgument(f"malformed monitor spec: {e!r}") from e


@dataclass(frozen=True)
class SpawnResult:
    """A monitor that has created (with ``SpawnSpec.start``: and started) its container."""

    monitor_pid: int
    pid: int  # the container's init, host pid
    # The attach streams asked for with the spawn (client ``Attachment`` objects), in order.
    attachments: tuple[Any, ...] = ()


@dataclass(frozen=True)
class ExitRecord:
    """How a container ended, as ``exit.json`` keeps it."""

    exit_code: int  # docker's: the status, or 128 + signal when killed by one
    signal: int | None
    oom_killed: bool
    finished_at: str
    started_at: str | None = None
    pid: int | None = None

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> ExitRecord:
        """Parse an exit record (from ``exit.json`` or a ``wait`` answer)."""
        sig = obj.get("signal")
        pid = obj.get("pid")
        return cls(
            exit_code=int(obj["exit_code"]),
            signal=int(sig) if sig is not None else None,
            oom_killed=bool(obj.get("oom_killed", False)),
            finished_at=str(obj["finished_at"]),
            started_at=obj.get("started_at"),
            pid=int(pid) if pid is not None else None,
        )


@dataclass(frozen=True)
class MonitorState:
    """A monitor's answer to ``state``."""

    status: str  # created | running | stopped
    pid: int
    started_at: str | None = None
    finished_at: str | None = None
    exit_code: int | None = None
    signal: int | None = None
    oom_killed: bool | None = None

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> MonitorState:
        """Parse a ``state`` answer."""
        return cls(
            status=str(obj["status"]),
            pid=int(obj["pid"]),
            started_at=obj.get("started_at"),
            finished_at=obj.get("finished_at"),
            exit_code=obj.get("exit_code"),
            signal=obj.get("signal"),
            oom_killed=obj.get("oom_killed"),
        )


def write_file_atomic(path: Path | str, data: bytes, *, durable: bool = True) -> None:
    """Write ``path`` so a reader sees the old content or all of the new.

    ``durable``: fsync the file before the rename and the directory after it, so the new
    content also survives a crash of the machine.
    """
    directory, name = os.path.split(os.fspath(path))
    tmp = os.path.join(directory, f".{name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, data)
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, path)
    if not durable:
        return
    dfd = os.open(directory or ".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def read_exit_record(state_dir: Path | str) -> ExitRecord | None:
    """The container's exit record if its monitor wrote one, else None."""
    try:
        data = (Path(state_dir) / EXIT_RECORD).read_bytes()
    except FileNotFoundError:
        return None
    try:
        return ExitRecord.from_json(json.loads(data))
    except (ValueError, KeyError, TypeError):
        # Written atomically, so a bad record is not a torn write: report it, do not guess.
        raise InvalidArgument(f"corrupt exit record in {state_dir}") from None


def proc_start_ticks(pid: int) -> int | None:
    """The start time of ``pid`` in clock ticks since boot, or None if it does not exist."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # comm may contain spaces and parentheses: fields resume after the last ')'.
    fields = stat[stat.rindex(b")") + 2 :].split()
    if fields[0] == b"Z":
        return None
    return int(fields[19])


def monitor_alive(state_dir: Path | str) -> bool:
    """Whether the monitor that wrote ``monitor.pid`` is still that very process."""
    try:
        text = (Path(state_dir) / MONITOR_PID).read_text().split()
        pid, ticks = int(text[0]), int(text[1])
    except (FileNotFoundError, ValueError, IndexError):
        return False
    if proc_start_ticks(pid) != ticks:
        return False  # gone, a zombie, or a recycled pid
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip() == MONITOR_COMM
    except FileNotFoundError:
        return False


def code_fingerprint() -> str:
    """A cheap identity of the monitor's code on disk, so a stale zygote can be replaced.

    No hashing module: importing hashlib would map OpenSSL into the zygote and every monitor.
    """
    import servin

    root = Path(servin.__file__).parent
    count = size = newest = 0
    for sub in ("engine/runtime", "engine/linux"):
        for dirpath, _, files in os.walk(root / sub):
            for name in files:
                if name.endswith(".py"):
                    st = os.stat(os.path.join(dirpath, name))
                    count += 1
                    size += st.st_size
                    newest = max(newest, st.st_mtime_ns)
    return f"{servin.__version__}:{count}:{size}:{newest}"
