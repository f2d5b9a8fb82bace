"""The CNI caller: pod networking through CNI plugins, as every Kubernetes runtime does it.

``CNI`` (caller.py) loads the default network from a conf dir (conf.py), runs its plugins
(invoke.py) to ADD, CHECK and DEL attachments, parses their results (result.py) and keeps a
record of each attachment under the daemon root (cache.py). Servin's own bridge networks
(``servin/engine/networks/``) stay for docker-style containers.
"""

from servin.engine.networks.cni.cache import AttachmentRecord
from servin.engine.networks.cni.caller import (
    CNI,
    DEFAULT_BIN_DIRS,
    DEFAULT_CONF_DIR,
    DEFAULT_TIMEOUT,
    Attachment,
    NetworkStatus,
    PluginVersion,
    PortMapping,
    port_mappings,
)
from servin.engine.networks.cni.conf import NetworkConfigList
from servin.engine.networks.cni.errors import (
    ContainerUnknown,
    NoNetworkConfig,
    PluginConfigInvalid,
    PluginError,
    PluginNotFound,
    PluginUnavailable,
)
from servin.engine.networks.cni.result import DNS, Interface, IPConfig, Result, Route

__all__ = [
    "CNI",
    "DEFAULT_BIN_DIRS",
    "DEFAULT_CONF_DIR",
    "DEFAULT_TIMEOUT",
    "DNS",
    "Attachment",
    "AttachmentRecord",
    "ContainerUnknown",
    "IPConfig",
    "Interface",
    "NetworkConfigList",
    "NetworkStatus",
    "NoNetworkConfig",
    "PluginConfigInvalid",
    "PluginError",
    "PluginNotFound",
    "PluginUnavailable",
    "PluginVersion",
    "PortMapping",
    "Result",
    "Route",
    "port_mappings",
]
