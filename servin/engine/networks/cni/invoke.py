"""Running one CNI plugin: the spec's calling convention (section 2) over asyncio subprocesses.

The plugin gets its parameters as ``CNI_*`` environment variables on top of the daemon's own
environment (plugins such as portmap run ``iptables``), its request configuration on stdin,
and answers with a JSON result on stdout, or an error object (``code``, ``msg``, ``details``)
and a non-zero exit. Each call has a deadline; a plugin that misses it is killed together with
the plugins it delegated to (it runs in its own process group).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from servin.engine.networks.cni.errors import (
    PluginError,
    PluginNotFound,
    PluginUnavailable,
    error_for_code,
)

# Plugins print a few KiB; more than this is a broken plugin, not a result to keep.
MAX_OUTPUT = 4 << 20
_DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class Invocation:
    """The parameters of one call (spec section 2, "Parameters")."""

    command: str  # ADD, DEL, CHECK, STATUS, GC, VERSION
    container_id: str = ""
    netns: str = ""
    ifname: str = ""
    args: str = ""  # CNI_ARGS: "K1=V1;K2=V2"

    def environment(self, bin_dirs: Sequence[Path]) -> dict[str, str]:
        """The plugin's environment: the daemon's, without stray CNI_* variables, plus ours."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("CNI_")}
        env.setdefault("PATH", _DEFAULT_PATH)
        env["CNI_COMMAND"] = self.command
        env["CNI_PATH"] = os.pathsep.join(str(d) for d in bin_dirs)
        for key, value in (("CNI_CONTAINERID", self.container_id), ("CNI_NETNS", self.netns),
                           ("CNI_IFNAME", self.ifname), ("CNI_ARGS", self.args)):
            if value:
                env[key] = value
        return env


def find_plugin(kind: str, bin_dirs: Sequence[Path], network: str = "") -> Path:
    """The executable of plugin ``kind``: the first bin dir that has it wins."""
    for directory in bin_dirs:
        path = directory / kind
        if path.is_file() and os.access(path, os.X_OK):
            return path
    on = f" (network {network})" if network else ""
    raise PluginNotFound(
        f"CNI plugin {kind!r}{on} not found in {', '.join(str(d) for d in bin_dirs)}",
        plugin=kind, command="", code=0,
    )


async def _read_capped(stream: asyncio.StreamReader) -> bytes:
    # Drain everything (a plugin blocked on a full pipe would never exit) but keep only so much.
    kept = bytearray()
    while chunk := await stream.read(65536):
        if len(kept) < MAX_OUTPUT:
            kept += chunk[: MAX_OUTPUT - len(kept)]
    return bytes(kept)


async def _feed(stdin: asyncio.StreamWriter, data: bytes) -> None:
    # A plugin may exit without reading its input (VERSION, an early error): not our failure.
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        stdin.write(data)
        await stdin.drain()
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        stdin.close()
        await stdin.wait_closed()


def _one_line(text: str, limit: int = 400) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


async def run_plugin(path: Path, call: Invocation, stdin: bytes, *, bin_dirs: Sequence[Path],
                     timeout: float, network: str = "") -> Any:
    """Run the plugin at ``path`` and return its decoded JSON answer (None if it printed none).

    Raises a PluginError subclass (one line: plugin, command, network, what went wrong).
    """
    kind = path.name
    on = f" on network {network}" if network else ""
    what = f"CNI plugin {kind} {call.command}{on}"
    try:
        proc = await asyncio.create_subprocess_exec(
            str(path), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=call.environment(bin_dirs), cwd="/",
            start_new_session=True,
        )
    except OSError as exc:
        raise PluginError(f"{what}: cannot run {path}: {exc.strerror}", plugin=kind,
                          command=call.command) from None
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    try:
        _, out, err, status = await asyncio.wait_for(
            asyncio.gather(_feed(proc.stdin, stdin), _read_capped(proc.stdout),
                           _read_capped(proc.stderr), proc.wait()),
            timeout,
        )
    except (TimeoutError, asyncio.CancelledError) as exc:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            await asyncio.shield(proc.wait())
        if isinstance(exc, asyncio.CancelledError):
            raise
        raise PluginUnavailable(f"{what}: no answer within {timeout:g} s (killed)", plugin=kind,
                                command=call.command) from None
    answer = _decode(out)
    if status == 0:
        if out.strip() and answer is None:
            shown = _one_line(out.decode(errors="replace"), 200)
            raise PluginError(f"{what}: printed invalid JSON: {shown}", plugin=kind,
                              command=call.command)
        return answer
    raise _failure(what, kind, call.command, status, answer, out, err)


def _decode(data: bytes) -> Any:
    if not data.strip():
        return None
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None


def _failure(what: str, kind: str, command: str, status: int, answer: Any, out: bytes,
             err: bytes) -> PluginError:
    # The spec puts the error object on stdout; some plugins print it on stderr.
    for doc in (answer, _decode(err)):
        if isinstance(doc, Mapping) and ("msg" in doc or "code" in doc):
            raw_code = doc.get("code")
            code = raw_code if isinstance(raw_code, int) else 0
            msg = str(doc.get("msg") or "").strip()
            details = str(doc.get("details") or "").strip()
            text = ": ".join(p for p in (msg, details) if p) or "failed"
            return error_for_code(code)(
                f"{what}: {_one_line(text)} (code {code})", plugin=kind, command=command,
                code=code, details=details,
            )
    tail = [ln for ln in (err or out).decode(errors="replace").splitlines() if ln.strip()]
    reason = f"exited with status {status}" if status > 0 else f"killed by signal {-status}"
    if tail:
        reason += f": {_one_line(tail[-1])}"
    return PluginError(f"{what}: {reason}", plugin=kind, command=command)
