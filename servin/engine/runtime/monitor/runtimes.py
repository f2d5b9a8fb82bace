"""Which OCI runtime a monitor drives, and the imports the zygote does once for every monitor."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

from servin.engine.runtime.monitor.protocol import RuntimeConfig
from servin.engine.runtime.oci import OCIRuntime
from servin.errors import InvalidArgument

# Modules a monitor may need after the fork. The zygote imports them before forking so no
# monitor pays for an import (time, and private memory: an import writes to shared pages).
# Optional ones are skipped if absent; their users then degrade (no OOM flag) or fail clearly.
PRELOAD = (
    "servin.engine.runtime.native",
    "servin.engine.runtime.native.execproc",
    "servin.engine.runtime.external",
    "servin.engine.linux.cgroups",
    "servin.engine.linux.cgroups.devices",
    "servin.engine.linux.seccomp",  # hashlib with it (OpenSSL: milliseconds to load)
)


def preload() -> dict[str, str]:
    """Import every module in PRELOAD that imports; return the ones that failed and why."""
    failed: dict[str, str] = {}
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except Exception as e:  # an optional part missing or broken must not stop the zygote
            failed[name] = f"{type(e).__name__}: {e}"
    # What every creation would otherwise find out again: loaded or read once, here.
    for name in ("servin.engine.linux.seccomp", "servin.engine.runtime.native.rootfs",
                 "servin.engine.runtime.native.runtime"):
        module: Any = sys.modules.get(name)
        if module is None:
            continue
        try:
            module.preload()
        except Exception as e:  # no libseccomp: containers with a profile fail clearly later
            failed[f"{name}.preload"] = f"{type(e).__name__}: {e}"
    return failed


def make_runtime(config: RuntimeConfig, state_dir: Path) -> OCIRuntime:
    """The runtime object a spawn spec names.

    Without an explicit ``root`` the runtime keeps its state beside the containers' state
    directories: ``<exec_root>/runtime/<name>`` (state_dir is ``<exec_root>/containers/<id>``).
    """
    root = Path(config.root) if config.root else state_dir.parent.parent / "runtime" / config.name
    if config.name == "native":
        native: Any = _module("servin.engine.runtime.native")
        runtime: OCIRuntime = native.NativeRuntime(root)
        return runtime
    if not config.binary:
        raise InvalidArgument(f"runtime {config.name!r} needs a binary path")
    external: Any = _module("servin.engine.runtime.external")
    runtime = external.ExternalRuntime(config.name, config.binary, root)
    return runtime


def _module(name: str) -> object:
    # import_module, not a sys.modules lookup: a module another thread is still importing is
    # in sys.modules half made; import_module waits for it (two build steps removing their
    # containers at once met a "partially initialized module" error here).
    return importlib.import_module(name)
