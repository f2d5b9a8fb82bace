"""Kubernetes remotecommand (exec and attach), protocols v1 to v5, over SPDY or a WebSocket.

Facts of the protocol, as kubelet and client-go implement them:
- SPDY: the client opens one stream per role, named by its ``streamType`` header (``error``,
  ``stdin``, ``stdout``, ``stderr`` and, from v3 with a TTY, ``resize``); the server waits for
  all the expected ones before it starts the process.
- WebSocket: fixed channels 0 stdin, 1 stdout, 2 stderr, 3 error, 4 resize.
- Resize messages are JSON objects ``{"Width": W, "Height": H}``, one after another.
- The outcome goes on the error stream: from v4 a ``Status`` JSON (Success, or Failure with
  reason NonZeroExitCode and the code as an ``ExitCode`` cause); before v4 nothing on success
  and the message text on failure.
- v5 (WebSocket only in Kubernetes; accepted over SPDY as v4) lets the client half-close stdin
  with the close signal.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from servin.engine.server.cri.streaming.backend import StreamSession
from servin.engine.server.cri.streaming.transport import InStream, OutStream, StreamClosedError

log = logging.getLogger(__name__)

V1 = "channel.k8s.io"
V2 = "v2.channel.k8s.io"
V3 = "v3.channel.k8s.io"
V4 = "v4.channel.k8s.io"
V5 = "v5.channel.k8s.io"
BASE64_V1 = "base64.channel.k8s.io"
BASE64_V4 = "v4.base64.channel.k8s.io"

# X-Stream-Protocol-Version values the SPDY transport accepts (the client's order decides).
SPDY_PROTOCOLS = (V5, V4, V3, V2, V1)


@dataclass(frozen=True)
class WsProtocol:
    """A WebSocket subprotocol of remotecommand."""

    base64: bool
    json_status: bool
    close_signal: bool


# "" is a client that asked for no subprotocol: binary channels, text errors (as the kubelet).
WS_PROTOCOLS: dict[str, WsProtocol] = {
    V5: WsProtocol(base64=False, json_status=True, close_signal=True),
    V4: WsProtocol(base64=False, json_status=True, close_signal=False),
    BASE64_V4: WsProtocol(base64=True, json_status=True, close_signal=False),
    V1: WsProtocol(base64=False, json_status=False, close_signal=False),
    BASE64_V1: WsProtocol(base64=True, json_status=False, close_signal=False),
    "": WsProtocol(base64=False, json_status=False, close_signal=False),
}

STDIN, STDOUT, STDERR, ERROR, RESIZE = 0, 1, 2, 3, 4
STREAM_TYPES = {"stdin": STDIN, "stdout": STDOUT, "stderr": STDERR, "error": ERROR,
                "resize": RESIZE}


def json_status_for(version: str) -> bool:
    """Whether a SPDY protocol version reports its outcome as Status JSON (v4 and later)."""
    return version in (V4, V5)


def resize_supported(version: str) -> bool:
    return version in (V3, V4, V5)


def expected_streams(version: str, *, stdin: bool, stdout: bool, stderr: bool,
                     tty: bool) -> int:
    """How many SPDY streams the client opens before the session starts (as the kubelet)."""
    return 1 + stdin + stdout + stderr + (tty and resize_supported(version))


# --- outcome ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """How a session ended, before it is encoded for a protocol version."""

    success: bool
    message: str = ""
    exit_code: int | None = None  # set for a process that exited non-zero

    def status(self) -> dict[str, Any]:
        """The Kubernetes Status object (metav1.Status as the kubelet marshals it)."""
        if self.success:
            return {"metadata": {}, "status": "Success"}
        if self.exit_code is not None:
            return {"metadata": {}, "status": "Failure", "message": self.message,
                    "reason": "NonZeroExitCode",
                    "details": {"causes": [{"reason": "ExitCode",
                                            "message": str(self.exit_code)}]}}
        return {"metadata": {}, "status": "Failure", "message": self.message,
                "reason": "InternalError",
                "details": {"causes": [{"message": self.message.removeprefix(
                    "Internal error occurred: ")}]},
                "code": 500}

    def encode(self, json_status: bool) -> bytes:
        """The error stream's bytes: Status JSON (v4+), else the failure text or nothing."""
        if json_status:
            return json.dumps(self.status(), separators=(",", ":")).encode()
        return b"" if self.success else self.message.encode()


def exit_outcome(code: int, cmd: Sequence[str] | None) -> Outcome:
    if code == 0:
        return Outcome(True)
    what = f"error executing command [{' '.join(cmd)}]" if cmd is not None else "process exited"
    return Outcome(False, f"command terminated with non-zero exit code: {what}, exit code {code}",
                   exit_code=code)


def internal_outcome(message: str) -> Outcome:
    return Outcome(False, f"Internal error occurred: {message}")


# --- resize -------------------------------------------------------------------------------


class ResizeDecoder:
    """Splits the resize stream into (width, height) pairs; keys match case-insensitively."""

    MAX_PENDING = 64 * 1024

    def __init__(self) -> None:
        self._buf = ""
        self._decoder = json.JSONDecoder()

    def feed(self, data: bytes) -> list[tuple[int, int]]:
        self._buf += data.decode("utf-8", "replace")
        sizes = []
        while True:
            text = self._buf.lstrip()
            if not text:
                self._buf = ""
                break
            try:
                obj, end = self._decoder.raw_decode(text)
            except json.JSONDecodeError:
                if len(text) > self.MAX_PENDING:
                    raise ValueError("resize stream: unparseable data") from None
                self._buf = text
                break
            self._buf = text[end:]
            if isinstance(obj, dict):
                keys = {str(k).lower(): v for k, v in obj.items()}
                w, h = keys.get("width", 0), keys.get("height", 0)
                if isinstance(w, int) and isinstance(h, int) and 0 <= w < 65536 and 0 <= h < 65536:
                    sizes.append((w, h))
        return sizes


# --- the relay ----------------------------------------------------------------------------


@dataclass
class RemoteStreams:
    """The client's side of a session, whatever the transport."""

    stdin: InStream | None
    stdout: OutStream | None
    stderr: OutStream | None
    error: OutStream | None
    resize: InStream | None
    json_status: bool


async def relay(open_session: Callable[[], Awaitable[StreamSession]], streams: RemoteStreams, *,
                cmd: Sequence[str] | None, attach: bool) -> None:
    """Run one exec or attach session between the client's streams and the backend.

    Returns once the outcome is on the error stream and the output streams are closed.
    Cancellation (the client vanished, a timeout) closes the backend session.
    """
    verb = "attaching to container" if attach else "executing command in container"
    try:
        session = await open_session()
    except Exception as exc:
        log.info("streaming: %s failed: %s", verb, exc)
        await _finish(streams, internal_outcome(f"error {verb}: {exc}"))
        return
    helpers: list[asyncio.Task[Any]] = []
    try:
        if streams.stdin is not None:
            helpers.append(asyncio.create_task(_pump_stdin(streams.stdin, session)))
        if streams.resize is not None:
            helpers.append(asyncio.create_task(_pump_resize(streams.resize, session)))
        await _pump_output(session, streams)
        code = await session.wait()
        outcome = Outcome(True) if attach else exit_outcome(code, cmd)
        await _finish(streams, outcome)
    finally:
        for task in helpers:
            task.cancel()
        await session.close()


async def _pump_stdin(stdin: InStream, session: StreamSession) -> None:
    try:
        while data := await stdin.read():
            await session.write_stdin(data)
    except (StreamClosedError, OSError) as exc:
        log.debug("stdin relay ended: %s", exc)
        return
    if stdin.half_closed:
        # Only a deliberate end of input closes the process's stdin; a client that vanished
        # must not close an attached container's stdin.
        with contextlib.suppress(OSError, StreamClosedError):
            await session.close_stdin()


async def _pump_resize(resize: InStream, session: StreamSession) -> None:
    decoder = ResizeDecoder()
    try:
        while data := await resize.read():
            for width, height in decoder.feed(data):
                await session.resize(width, height)
    except (ValueError, StreamClosedError, OSError) as exc:
        log.info("resize stream ended: %s", exc)


async def _pump_output(session: StreamSession, streams: RemoteStreams) -> None:
    targets = {"stdout": streams.stdout, "stderr": streams.stderr}
    while (chunk := await session.read_output()) is not None:
        name, data = chunk
        target = targets.get(name)
        if target is None or not data:
            continue
        try:
            await target.write(data)
        except StreamClosedError:
            # The client closed that stream: drop its output, keep the others going.
            targets[name] = None
    for target in (streams.stdout, streams.stderr):
        if target is not None:
            with contextlib.suppress(StreamClosedError):
                await target.close()


async def _finish(streams: RemoteStreams, outcome: Outcome) -> None:
    if streams.error is None:
        return
    payload = outcome.encode(streams.json_status)
    with contextlib.suppress(StreamClosedError):
        if payload:
            await streams.error.write(payload)
        await streams.error.close()
