"""Signal names and numbers as docker spells them on Linux (``kill -s``, ``stop -s``,
``--stop-signal``, an image's STOPSIGNAL).

The table is docker's own, not the host Python's ``signal.Signals`` (which has no
``RTMIN+3`` and no name for 32-33 or 35-63): ``KILL``, ``SIGKILL``, ``sigkill`` and ``9`` all
name SIGKILL; ``RTMIN`` is 34 and ``RTMAX`` 64 as in the container's C library, so
``SIGRTMIN+3`` (systemd's halt signal) is 37.
"""

from __future__ import annotations

from servin.errors import InvalidArgument

SIGRTMIN = 34
SIGRTMAX = 64
LAST = 64  # Linux signals are 1-64

_CLASSIC = {
    "HUP": 1, "INT": 2, "QUIT": 3, "ILL": 4, "TRAP": 5, "ABRT": 6, "IOT": 6, "BUS": 7,
    "FPE": 8, "KILL": 9, "USR1": 10, "SEGV": 11, "USR2": 12, "PIPE": 13, "ALRM": 14,
    "TERM": 15, "STKFLT": 16, "CHLD": 17, "CLD": 17, "CONT": 18, "STOP": 19, "TSTP": 20,
    "TTIN": 21, "TTOU": 22, "URG": 23, "XCPU": 24, "XFSZ": 25, "VTALRM": 26, "PROF": 27,
    "WINCH": 28, "IO": 29, "POLL": 29, "PWR": 30, "SYS": 31,
}


def _table() -> dict[str, int]:
    table = dict(_CLASSIC)
    table["RTMIN"] = SIGRTMIN
    table["RTMAX"] = SIGRTMAX
    for n in range(1, 16):
        table[f"RTMIN+{n}"] = SIGRTMIN + n
        table[f"RTMAX-{n}"] = SIGRTMAX - n
    return table


SIGNALS: dict[str, int] = _table()  # name (without SIG) -> number


def parse_signal(value: str | int) -> int:
    """The number of a signal given as ``KILL``, ``SIGKILL``, ``sigkill`` or ``9``."""
    text = str(value).strip().upper()
    if text.isdigit():
        number = int(text)
        if not 0 < number <= LAST:
            raise InvalidArgument(f"invalid signal: {value}")
        return number
    named = SIGNALS.get(text.removeprefix("SIG"))
    if named is None:
        raise InvalidArgument(f"invalid signal: {value}")
    return named

