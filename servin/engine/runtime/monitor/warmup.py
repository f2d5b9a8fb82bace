"""Run a monitor's hot paths in the zygote, before any fork.

Python 3.11 rewrites a function's bytecode in place after its first few calls (the
specializing interpreter), fills the interpreter's type-attribute cache on first lookups,
computes string hashes on first use and fills lazy caches. Done in a monitor, each of those
writes copies a shared page into its private memory; done here, every monitor shares them.
(Reference counts are still written by every use: that part no warm-up avoids.)
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]  # the C module, as the monitor
import contextlib
import json
import os
import shutil
import socket
from pathlib import Path
from typing import Any, NoReturn

from servin.engine.runtime.monitor.logfile import LogWriter
from servin.engine.runtime.monitor.monitor import Monitor, _noop
from servin.engine.runtime.monitor.protocol import (
    MONITOR_SOCK,
    STDERR,
    STDOUT,
    ExitRecord,
    LogConfig,
    SpawnSpec,
    decode_line,
    encode_line,
    error_answer,
    frame_header,
    rfc3339_nano,
)
from servin.errors import Conflict

_ROUNDS = 16  # more than the specializer's warm-up threshold


def run(work_dir: Path) -> None:
    """Exercise the log writer, the protocol helpers and the JSON paths; leave no file."""
    work_dir.mkdir(parents=True, exist_ok=True)
    spec_json = {
        "id": "warmup",
        "bundle": "/nonexistent",
        "state_dir": str(work_dir),
        "runtime": {"name": "native"},
        "log": {"path": str(work_dir / "warmup.log"), "driver": "json-file"},
    }
    for driver in ("json-file", "cri"):
        path = work_dir / f"warmup-{os.getpid()}.{driver}.log"
        config = LogConfig(path=path, driver=driver, max_size=4096, max_file=2)
        writer = LogWriter.from_config(config)
        try:
            for i in range(_ROUNDS):
                writer.write(STDOUT, b"line %d\nhalf" % i)
                writer.write(STDERR, b"err \xff\n" + b"x" * 17000)
                writer.write(STDOUT, b" done\n")
            writer.finish()
            writer.sync()
        finally:
            writer.close()
            for p in (path, path.with_name(path.name + ".1")):
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()
    for _ in range(_ROUNDS):
        request = decode_line(encode_line({"op": "kill", "signal": 15, "all": False}))
        request.get("op")
        frame_header(STDOUT, 12)
        rfc3339_nano()
        error_answer(Conflict("warm-up"))
        SpawnSpec.from_json(spec_json)
        ExitRecord.from_json({"exit_code": 0, "signal": None, "finished_at": rfc3339_nano()})
        json.dumps({"exit_code": 0, "signal": None, "oom_killed": False}).encode()


class _WarmMonitor(Monitor):
    """A monitor whose runtime is a plain forked process: no runtime code, no cgroup."""

    def __init__(self, state: dict[str, Any], fds: list[int], wake_r: int, go_w: int) -> None:
        super().__init__(state, fds, wake_r)
        self._go_w = go_w

    def _runtime_call(self, call: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if call == "start":  # runs in the helper fork, exactly as a real runtime call does
            os.write(self._go_w, b"g")
        return None

    def _delete_container(self) -> None:
        pass


def _fake_container(go_r: int, stdin_r: int, out_w: int, err_w: int, listen_fd: int) -> NoReturn:
    code = 3
    try:
        os.close(listen_fd)  # a real init has no fd of its monitor's
        os.read(go_r, 1)
        for i in range(_ROUNDS * 4):
            os.write(out_w, b"out %d\n" % i)
            os.write(err_w, b"err %d\n" % i)
        line = os.read(stdin_r, 100)
        os.write(out_w, line)
    finally:
        os._exit(code)


def _fake_client(path: str, listen_fd: int) -> NoReturn:
    try:
        os.close(listen_fd)  # else the listener outlives the monitor and a late connect hangs

        def call(request: dict[str, Any]) -> bytes:
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(path)
                s.sendall(encode_line(request))
                return s.makefile("rb").readline()

        call({"op": "state"})
        attach = socket.socket(socket.AF_UNIX)
        attach.connect(path)
        attach.sendall(encode_line({"op": "attach", "stdin": True, "stdin_once": True}))
        reader = attach.makefile("rb")
        reader.readline()
        call({"op": "start"})
        call({"op": "state"})
        call({"op": "resize", "rows": 10, "cols": 10})  # no tty: an error answer
        call({"op": "nonsense"})
        last = _ROUNDS * 4 - 1
        seen = {1: b"", 2: b""}
        while not (seen[1].endswith(b"out %d\n" % last) and seen[2].endswith(b"err %d\n" % last)):
            header = reader.read(8)
            if len(header) < 8:
                break
            seen[header[0]] += reader.read(int.from_bytes(header[4:], "big"))
        attach.sendall(b"stdin line\n")
        attach.shutdown(socket.SHUT_WR)
        call({"op": "wait"})
        call({"op": "kill", "signal": 9})  # too late: an error answer
        while reader.read(65536):
            pass
        attach.close()
    finally:
        os._exit(0)


def run_monitor(work_dir: Path) -> None:
    """One whole monitor life in this process: a fake container, a client, every request.

    Leaves the process as it found it: signal disposition, wakeup fd, no child, no file.
    """
    directory = work_dir / f"warmup-{os.getpid()}"
    directory.mkdir(parents=True, exist_ok=True)
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    old_wakeup = _signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
    old_handler = _signal.signal(_signal.SIGCHLD, _noop)
    go_r, go_w = os.pipe2(os.O_CLOEXEC)
    stdin_r, stdin_w = os.pipe2(os.O_CLOEXEC)
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    listener = socket.socket(socket.AF_UNIX)
    path = str(directory / MONITOR_SOCK)
    listener.bind(path)
    listener.listen(16)
    log_fd = os.open(directory / "warmup.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    client = 0
    try:
        container = os.fork()
        if container == 0:
            _fake_container(go_r, stdin_r, out_w, err_w, listener.fileno())
        for fd in (go_r, stdin_r, out_w, err_w):
            os.close(fd)
        state = {
            "id": "warmup", "pid": container, "state_dir": str(directory), "tty": False,
            "open_stdin": True, "cgroups_path": None, "log_path": str(directory / "warmup.log"),
            "log_driver": "json-file", "log_max_size": 4096, "log_max_file": 2, "spec": "{}",
            "fds": {"listener": 0, "stdout": 1, "stderr": 2, "stdin": 3, "log": 4},
        }
        listen_fd = listener.detach()
        monitor = _WarmMonitor(state, [listen_fd, out_r, err_r, stdin_w, log_fd], wake_r, go_w)
        client = os.fork()
        if client == 0:
            _fake_client(path, listen_fd)
        monitor.serve()
    finally:
        if client:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(client, 0)
        for fd in (go_w, wake_r, wake_w):
            os.close(fd)
        _signal.set_wakeup_fd(old_wakeup)
        _signal.signal(_signal.SIGCHLD, old_handler)
        shutil.rmtree(directory, ignore_errors=True)
