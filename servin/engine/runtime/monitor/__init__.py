"""The per-container monitor ("shim") and the daemon's side of it.

Processes, for one container:

    daemon ──spawn──► zygote ──fork──► monitor ──fork──► setup (exits after create)
                      (long-lived,     (long-lived:       │
                       pre-imported)    stdio, logs,      └─ runtime.create ─► container init
                                        exit record)          (reparented to the monitor)

Modules:
- ``zygote``: a detached, pre-imported, warmed-up process forking one monitor per request.
- ``monitor``: the monitor's event loop: stdio, log, attach, control socket, exit record.
- ``setup``: everything a monitor does once (spec, state dir, runtime create), in a child
  that exits, so its memory is not kept for the container's whole life.
- ``logfile``: Docker json-file and CRI log formats, line splitting, rotation.
- ``client``: what the daemon uses (asyncio): ``ensure_zygote``, ``spawn``, ``MonitorClient``.
- ``protocol``: specs, exit record, file names and wire framing both sides share.
- ``heap``, ``warmup``, ``prctl``: what keeps a monitor at ~1.6 MB PSS (see each module).

This package's ``__init__`` imports nothing: the zygote must stay free of asyncio and the
daemon must not pull in the monitor's event loop.
"""
