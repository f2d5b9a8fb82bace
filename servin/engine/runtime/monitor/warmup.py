"""Run a monitor's hot paths once in the zygote, before any fork.

Python 3.11 rewrites a function's bytecode in place after its first few calls (the
specializing interpreter), computes and caches string hashes on first use, and fills lazy
caches (struct formats, time zone data). Done in a monitor, each of those writes copies a
shared page into the monitor's private memory; done once here, every monitor shares the
result.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from servin.engine.runtime.monitor.logfile import LogWriter
from servin.engine.runtime.monitor.protocol import (
    STDERR,
    STDOUT,
    ExitRecord,
    LogConfig,
    SpawnSpec,
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
        request = json.loads(encode_line({"op": "kill", "signal": 15, "all": False}))
        request.get("op")
        frame_header(STDOUT, 12)
        rfc3339_nano()
        error_answer(Conflict("warm-up"))
        SpawnSpec.from_json(spec_json)
        ExitRecord.from_json({"exit_code": 0, "signal": None, "finished_at": rfc3339_nano()})
        json.dumps({"exit_code": 0, "signal": None, "oom_killed": False}).encode()
