"""The CRI streaming server: exec, attach and port-forward for kubelet, crictl and kubectl.

Modules: ``spdy`` (sans-I/O SPDY/3.1), ``spdysession`` and ``wssession`` (their asyncio
drivers), ``channels`` (the Kubernetes WebSocket channel protocol), ``remotecommand`` and
``portforward`` (the Kubernetes protocols), ``tokens`` (single-use URLs), ``backend`` (what
the engine provides) and ``server`` (the HTTP endpoint).
"""

from servin.engine.server.cri.streaming.backend import StreamingBackend, StreamSession
from servin.engine.server.cri.streaming.server import (
    AttachRequest,
    ExecRequest,
    PortForwardRequest,
    StreamingConfig,
    StreamingServer,
)

__all__ = [
    "AttachRequest",
    "ExecRequest",
    "PortForwardRequest",
    "StreamSession",
    "StreamingBackend",
    "StreamingConfig",
    "StreamingServer",
]
