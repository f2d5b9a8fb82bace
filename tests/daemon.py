"""Real servin daemons in temp dirs, and the CLI run against them, for integration tests.

The implementation lives in ``servin.devtools.daemonproc`` (the benchmarks use it too).
"""

from servin.devtools.daemonproc import (
    REPO,
    DaemonProcess,
    claim_net_slot,
    release_net_slot,
    run_cli,
    short_tmpdir,
)

__all__ = [
    "REPO",
    "DaemonProcess",
    "claim_net_slot",
    "release_net_slot",
    "run_cli",
    "short_tmpdir",
]
