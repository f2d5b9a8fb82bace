"""Run a function in a forked child under a seccomp filter and bring its result back."""

from __future__ import annotations

import ctypes
import json
import os
import traceback
from collections.abc import Callable
from typing import Any

from servin.engine.linux.seccomp import load_filter

PR_SET_NO_NEW_PRIVS = 38

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long


def call(fn: Callable[..., int], *args: Any) -> tuple[int, int]:
    """Call a libc function; return (result, errno) with errno 0 on success."""
    ctypes.set_errno(0)
    rc = fn(*args)
    return rc, (ctypes.get_errno() if rc < 0 else 0)


def run_filtered(spec: dict[str, Any] | None, body: Callable[[], Any]) -> Any:
    """Fork; in the child set no_new_privs, load ``spec`` and return ``body()``'s JSON result.

    With ``spec`` None the child runs unfiltered (the control case). A failure in the child
    is re-raised in the parent with the child's traceback.
    """
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        status = 0
        try:
            os.close(read_end)
            if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
                raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
            if spec is not None:
                load_filter(spec)
            payload = {"ok": body()}
        except BaseException:
            payload = {"error": traceback.format_exc()}
            status = 1
        try:
            os.write(write_end, json.dumps(payload).encode())
        finally:
            os._exit(status)
    os.close(write_end)
    chunks = []
    while chunk := os.read(read_end, 65536):
        chunks.append(chunk)
    os.close(read_end)
    _, wait_status = os.waitpid(pid, 0)
    if not chunks:
        raise AssertionError(f"child died without a result (wait status {wait_status:#x})")
    payload = json.loads(b"".join(chunks))
    if "error" in payload:
        raise AssertionError("child failed:\n" + payload["error"])
    assert os.waitstatus_to_exitcode(wait_status) == 0
    return payload["ok"]
