"""What the streaming server needs from the engine: the interface the CRI adapter implements.

The server speaks the wire protocols; a backend runs the processes and opens the sockets.
Errors are ``servin.errors`` (``NotFound`` for an unknown container or pod, ``Conflict`` for one
that is not running...): the server reports their message on the client's error stream as the
kubelet does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol


class StreamSession(Protocol):
    """A running exec or an attachment: bytes in, (stream name, bytes) out, an exit code.

    The server calls ``close`` exactly once, when it is done with the session for any reason.
    If the process is still running then (the client vanished, a timeout hit, the connection
    broke), an exec's process must be killed and an attachment detached: nothing may be left
    behind.
    """

    async def write_stdin(self, data: bytes) -> None:
        """Send bytes to the process's stdin (only called when stdin was requested)."""

    async def close_stdin(self) -> None:
        """The client ended its input (a half-close): close the process's stdin (EOF).

        Not called when the client merely goes away (``close`` is, then). For an attachment
        the backend decides, as the container's ``stdin_once`` says.
        """

    async def read_output(self) -> tuple[str, bytes] | None:
        """The next output chunk as ("stdout" | "stderr", bytes); None once all output ended.

        With a TTY everything is "stdout".
        """

    async def resize(self, width: int, height: int) -> None:
        """The client's terminal changed size (TTY sessions only)."""

    async def wait(self) -> int:
        """Wait for the process to end; its exit code (128+N for a signal N).

        For an attachment: the container's exit code, or 0 when the attachment ended otherwise.
        """

    async def close(self) -> None:
        """Release the session; kill an exec still running, detach an attachment. Idempotent."""


class StreamingBackend(Protocol):
    """The engine side of the CRI streaming server."""

    async def exec(self, container_id: str, cmd: Sequence[str], *, tty: bool, stdin: bool,
                   stdout: bool, stderr: bool) -> StreamSession:
        """Start ``cmd`` in the container (stderr is never requested together with tty)."""

    async def attach(self, container_id: str, *, tty: bool, stdin: bool, stdout: bool,
                     stderr: bool) -> StreamSession:
        """Attach to the container's main process."""

    async def port_forward(self, pod_id: str,
                           port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A TCP connection to ``port`` on the pod's loopback, inside its network namespace.

        (``servin.engine.linux.netns_socket.open_connection_in_netns`` does the namespace part.)
        """
