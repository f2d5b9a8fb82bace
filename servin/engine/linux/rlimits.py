"""Resource limits by their OCI names, clamped to what this process may set.

Raising a hard limit needs CAP_SYS_RESOURCE, which some hosts (this project's CI VM among
them) do not grant even to root. Rather than fail the whole container, a limit asking for
more than the current hard limit is clamped to it.
"""

from __future__ import annotations

import errno
import resource

# OCI ``process.rlimits[].type`` -> resource number (the generic Linux numbering used by
# x86_64 and arm64; Python's resource module lacks a few of these names).
RLIMITS: dict[str, int] = {
    "RLIMIT_CPU": 0, "RLIMIT_FSIZE": 1, "RLIMIT_DATA": 2, "RLIMIT_STACK": 3, "RLIMIT_CORE": 4,
    "RLIMIT_RSS": 5, "RLIMIT_NPROC": 6, "RLIMIT_NOFILE": 7, "RLIMIT_MEMLOCK": 8, "RLIMIT_AS": 9,
    "RLIMIT_LOCKS": 10, "RLIMIT_SIGPENDING": 11, "RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13,
    "RLIMIT_RTPRIO": 14, "RLIMIT_RTTIME": 15,
}

# The OCI spec (and the kernel) use 2**64-1 for "unlimited".
_UNLIMITED = 2**64 - 1


def rlimit_number(name: str) -> int:
    """The resource number of an OCI rlimit name such as ``RLIMIT_NOFILE``."""
    try:
        return RLIMITS[name.upper()]
    except KeyError:
        raise ValueError(f"unknown rlimit {name!r}") from None


def _normalize(value: int) -> int:
    return resource.RLIM_INFINITY if value >= _UNLIMITED or value < 0 else value


def _le(a: int, b: int) -> bool:
    """a <= b where RLIM_INFINITY is the largest value."""
    if b == resource.RLIM_INFINITY:
        return True
    if a == resource.RLIM_INFINITY:
        return False
    return a <= b


def set_rlimit(name: str, soft: int, hard: int) -> tuple[int, int]:
    """Set a limit, clamping to the current hard limit when raising it is not allowed.

    Returns the (soft, hard) pair actually in force.
    """
    number = rlimit_number(name)
    soft, hard = _normalize(soft), _normalize(hard)
    try:
        resource.setrlimit(number, (soft, hard))
        return soft, hard
    except ValueError as exc:
        # Python raises ValueError for soft > hard and, on EPERM, for raising the hard limit.
        if not _le(soft, hard):
            raise OSError(errno.EINVAL, f"setrlimit {name}: soft {soft} > hard {hard}") from exc
    except OSError as exc:
        if exc.errno != errno.EPERM:
            raise OSError(exc.errno, f"setrlimit {name}: {exc.strerror}") from None
    _, current_hard = resource.getrlimit(number)
    hard = hard if _le(hard, current_hard) else current_hard
    soft = soft if _le(soft, hard) else hard
    try:
        resource.setrlimit(number, (soft, hard))
    except (OSError, ValueError) as exc:
        raise OSError(errno.EPERM, f"setrlimit {name} ({soft}, {hard}): {exc}") from None
    return soft, hard
