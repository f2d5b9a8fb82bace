"""Errors of the CNI caller: typed (``servin.errors``) so every front door maps them alike.

A plugin's JSON error object (``code``, ``msg``, ``details``) becomes a :class:`PluginError`
whose class follows the spec's well-known codes (a bad configuration is an invalid argument, a
"try again later" is unavailable...), with one clear line as its message.
"""

from __future__ import annotations

from servin.errors import InvalidArgument, NotFound, ServinError, Unavailable

# The spec's well-known error codes (section 5, "Error").
INCOMPATIBLE_VERSION = 1
UNSUPPORTED_FIELD = 2
CONTAINER_UNKNOWN = 3
INVALID_ENVIRONMENT = 4
IO_FAILURE = 5
DECODE_FAILURE = 6
INVALID_CONFIG = 7
TRY_AGAIN_LATER = 11
NOT_AVAILABLE = 50
NOT_AVAILABLE_LIMITED = 51


class PluginError(ServinError):
    """A CNI plugin failed (an Internal error unless a subclass says otherwise).

    ``code`` is the plugin's error code (0 when it gave none: a crash, a timeout, no JSON).
    """

    def __init__(self, message: str, *, plugin: str, command: str, code: int = 0,
                 details: str = "") -> None:
        super().__init__(message)
        self.plugin = plugin
        self.command = command
        self.code = code
        self.details = details


class PluginConfigInvalid(PluginError, InvalidArgument):
    """The plugin refused the configuration or its version (codes 1, 2, 6, 7)."""


class ContainerUnknown(PluginError, NotFound):
    """The plugin does not know the container (code 3): nothing to clean up."""


class PluginUnavailable(PluginError, Unavailable):
    """The plugin cannot serve now (codes 11, 50, 51) or did not answer in time."""


class PluginNotFound(PluginError, NotFound):
    """No executable of the plugin's ``type`` in any configured bin dir."""


class NoNetworkConfig(Unavailable):
    """The conf dir holds no valid network configuration (pods cannot get a network yet)."""


_BY_CODE: dict[int, type[PluginError]] = {
    INCOMPATIBLE_VERSION: PluginConfigInvalid,
    UNSUPPORTED_FIELD: PluginConfigInvalid,
    DECODE_FAILURE: PluginConfigInvalid,
    INVALID_CONFIG: PluginConfigInvalid,
    CONTAINER_UNKNOWN: ContainerUnknown,
    TRY_AGAIN_LATER: PluginUnavailable,
    NOT_AVAILABLE: PluginUnavailable,
    NOT_AVAILABLE_LIMITED: PluginUnavailable,
}


def error_for_code(code: int) -> type[PluginError]:
    """The error class of a plugin's error code."""
    return _BY_CODE.get(code, PluginError)
