"""The per-container monitor ("shim") and the daemon's side of it.

Pieces:
- ``zygote``: a long-lived, detached process that has imported everything a monitor needs and
  forks one monitor per container on request (cheap in time and in memory).
- ``monitor``: the forked child; it creates the container through the OCI runtime, owns its
  stdio, writes its logs, records its exit status durably and outlives the daemon.
- ``client``: what the daemon uses (asyncio): ``ensure_zygote``, ``spawn``, ``MonitorClient``.
- ``protocol``: the spawn spec, the exit record, file names and wire framing both sides share.

This package's ``__init__`` imports nothing: the zygote must stay free of asyncio and the
daemon must not pull in the monitor's event loop.
"""
