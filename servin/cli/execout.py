"""What ``exec`` and ``attach`` share between the click command and the quick front: the
exit-code failures (docker's 125/126/127), ``-e``/``--env-file`` reading, and writing a
session's ``AttachOutput`` messages to stdout/stderr.

Light on purpose (no click, no protobuf, no threads at import).
"""

from __future__ import annotations

import os

from servin.errors import InvalidArgument, NotFound, PermissionDenied, ServinError

TYPE_CHECKING = False  # typing and collections stay out of the quick CLI's start-up
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Protocol


class ExitCode(ServinError):
    """A command's failure that must exit with a given code (docker's 125/126/127)."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def exec_failure(exc: ServinError) -> ServinError:
    """A failed exec as docker exits: 127 when the command (or container) is not found, 126
    when it cannot be run, else the error itself."""
    if isinstance(exc, NotFound):
        return ExitCode(exc.message, 127)
    if isinstance(exc, PermissionDenied):
        return ExitCode(exc.message, 126)
    return exc


def env_items(values: Iterable[str], files: Iterable[str]) -> list[str]:
    """``--env-file`` lines then ``-e`` values as docker reads them: ``KEY=VALUE`` as is, a bare
    ``KEY`` from this client's environment (left out when it is not set there)."""
    items: list[str] = []
    for path in files:
        try:
            with open(path) as f:  # (not pathlib: `ps` imports this module and not pathlib)
                lines = f.read().splitlines()
        except OSError as exc:
            raise InvalidArgument(f"open {path}: {(exc.strerror or str(exc)).lower()}") from None
        items.extend(line.strip() for line in lines
                     if line.strip() and not line.lstrip().startswith("#"))
    items.extend(values)
    out = []
    for item in items:
        key, sep, _ = item.partition("=")
        if not key:
            raise InvalidArgument(f"invalid environment variable: {item!r}")
        if sep:
            out.append(item)
        elif key in os.environ:
            out.append(f"{key}={os.environ[key]}")
    return out


if TYPE_CHECKING:  # a Protocol for mypy; creating it at run time costs typing

    class AttachOutputLike(Protocol):
        """An ``AttachOutput`` message (generated or lite)."""

        @property
        def stream(self) -> int: ...
        @property
        def data(self) -> bytes: ...
        @property
        def exited(self) -> bool: ...
        @property
        def exit_code(self) -> int: ...
        @property
        def detached(self) -> bool: ...


class Outcome:
    """How a session ended: the process exited (``exit_code`` if the server said), the
    user detached, or the stream simply ended (the container's output closed)."""

    # (a plain class: dataclasses costs the quick front ~5 ms of imports)
    __slots__ = ("detached", "exit_code", "exited")

    def __init__(self) -> None:
        self.detached = False
        self.exited = False
        self.exit_code: int | None = None


def write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` to ``fd`` (unbuffered: a session's output goes out as it comes)."""
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def relay_output(messages: Iterable[AttachOutputLike], *, tty: bool) -> Outcome:
    """Write a session's output (stderr apart unless ``tty``) until the process exits, the
    user detaches or the stream ends; how it ended."""
    outcome = Outcome()
    for message in messages:
        if message.data:
            write_all(2 if (message.stream == 2 and not tty) else 1, message.data)
        if message.detached:
            outcome.detached = True
            break
        if message.exited:
            outcome.exited = True
            outcome.exit_code = message.exit_code
            break
    return outcome
