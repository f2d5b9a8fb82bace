"""Detach keys: docker's ``--detach-keys`` syntax and a scanner over a stdin stream.

Syntax: comma-separated keys, each a single character (``a``) or ``ctrl-<c>`` where ``<c>``
is a letter or one of ``@ [ \\ ] ^ _`` (``ctrl-@`` is NUL, ``ctrl-a`` is 1, ``ctrl-[`` is
ESC, ...). The default is ``ctrl-p,ctrl-q``.
"""

from __future__ import annotations

from servin.errors import InvalidArgument

DEFAULT_DETACH_KEYS = "ctrl-p,ctrl-q"
_CTRL_SPECIAL = {"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}


def parse_detach_keys(text: str) -> bytes:
    """The byte sequence ``text`` names (the default when empty); InvalidArgument if bad."""
    text = text or DEFAULT_DETACH_KEYS
    out = bytearray()
    for key in text.split(","):
        lowered = key.lower()
        if len(key) == 1:
            out.append(ord(key))
            continue
        if lowered.startswith("ctrl-") and len(key) == 6:
            c = lowered[5]
            if "a" <= c <= "z":
                out.append(ord(c) - ord("a") + 1)
                continue
            if c in _CTRL_SPECIAL:
                out.append(_CTRL_SPECIAL[c])
                continue
        raise InvalidArgument(f"invalid detach keys {text!r}: unknown key {key!r}")
    if not out or any(b > 127 for b in out):
        raise InvalidArgument(f"invalid detach keys {text!r}")
    return bytes(out)


class DetachScanner:
    """Finds the detach sequence in a byte stream, holding back a partial match.

    ``feed`` returns the bytes to forward and whether the sequence was typed; bytes held
    while they looked like the start of the sequence are forwarded once they turn out not
    to be (as docker does).
    """

    def __init__(self, keys: bytes) -> None:
        self.keys = keys
        self.matched = 0

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        """Scan ``data``: (bytes to forward, detached?). After a detach, ignore the rest."""
        out = bytearray()
        keys = self.keys
        for b in data:
            if b == keys[self.matched]:
                self.matched += 1
                if self.matched == len(keys):
                    self.matched = 0
                    return bytes(out), True
                continue
            if self.matched:
                out += keys[: self.matched]
                self.matched = 0
                if b == keys[0]:  # (a partial match implies a sequence of 2 or more keys)
                    self.matched = 1
                    continue
            out.append(b)
        return bytes(out), False
