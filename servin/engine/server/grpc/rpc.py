"""Types the servin.v1 servicers share."""

from __future__ import annotations

from typing import Any

import grpc

# Every servicer method's context (its request and response types are the method's own).
Context = grpc.aio.ServicerContext[Any, Any]
