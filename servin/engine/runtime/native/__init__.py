"""Servin's native OCI runtime: executes a runtime-spec bundle with namespaces, cgroups,
pivot_root, capabilities and seccomp, forking the container init straight from Python."""

from servin.engine.runtime.native.runtime import NativeRuntime

__all__ = ["NativeRuntime"]
