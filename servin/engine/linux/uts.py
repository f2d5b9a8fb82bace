"""sethostname(2) and setdomainname(2), for a container's own UTS namespace."""

from __future__ import annotations

import ctypes

from servin.engine.linux.syscalls import check, libc

libc.sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
libc.setdomainname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]


def set_hostname(name: str) -> None:
    """Set the hostname of the calling process's UTS namespace."""
    raw = name.encode()
    check(libc.sethostname(raw, len(raw)), "sethostname", name)


def set_domainname(name: str) -> None:
    """Set the NIS domain name of the calling process's UTS namespace."""
    raw = name.encode()
    check(libc.setdomainname(raw, len(raw)), "setdomainname", name)
