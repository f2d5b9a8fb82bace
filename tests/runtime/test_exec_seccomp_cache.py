"""The native runtime's per-container cache of the exec seccomp filter (no container needed).

An exec reads the compiled filter from a small file kept beside the container's state,
keyed by the version of its config.json; a new config.json (a container created again
under the same id) must never get the old filter.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from servin.engine.linux.seccomp import program_for
from servin.engine.runtime.native.runtime import EXEC_SECCOMP_FILE, NativeRuntime


def profile(blocked: str) -> dict:
    return {"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": [blocked], "action": "SCMP_ACT_ERRNO"}]}


def write_config(bundle: Path, seccomp: dict | None) -> None:
    """Replace config.json as the daemon does (a new file, renamed over the old one)."""
    config = {"ociVersion": "1.0.2", "process": {"args": ["true"]}, "linux": {}}
    if seccomp is not None:
        config["linux"]["seccomp"] = seccomp
    tmp = bundle / "config.json.tmp"
    tmp.write_text(json.dumps(config))
    os.replace(tmp, bundle / "config.json")


def test_exec_filter_is_cached_per_config_version(tmp_path: Path) -> None:
    runtime = NativeRuntime(tmp_path / "state")
    cid = "c1"
    (tmp_path / "state" / cid).mkdir(parents=True)
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    cache = tmp_path / "state" / cid / EXEC_SECCOMP_FILE

    write_config(bundle, profile("mkdirat"))
    first = runtime._exec_seccomp(cid, bundle)
    assert first == program_for(profile("mkdirat"))
    assert cache.exists()
    assert runtime._exec_seccomp(cid, bundle) == first  # from the cache file

    # The container created again under its id: another profile, another filter.
    write_config(bundle, profile("unlinkat"))
    second = runtime._exec_seccomp(cid, bundle)
    assert second == program_for(profile("unlinkat")) and second != first
    assert runtime._exec_seccomp(cid, bundle) == second

    # No profile at all: no filter, cached as such.
    write_config(bundle, None)
    assert runtime._exec_seccomp(cid, bundle) is None
    assert runtime._exec_seccomp(cid, bundle) is None

    # A damaged cache entry is recomputed, never used.
    write_config(bundle, profile("mkdirat"))
    assert runtime._exec_seccomp(cid, bundle) == first
    cache.write_bytes(cache.read_bytes()[:45])
    assert runtime._exec_seccomp(cid, bundle) == first
