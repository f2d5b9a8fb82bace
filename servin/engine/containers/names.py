"""Container names: validation and docker-style generated names (adjective_scientist)."""

from __future__ import annotations

import re
import secrets

from servin.engine.limits import check_name_length
from servin.errors import InvalidArgument

_VALID = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$")

_ADJECTIVES = (
    "agile",
    "bold",
    "brave",
    "bright",
    "calm",
    "clever",
    "cool",
    "crisp",
    "daring",
    "eager",
    "fair",
    "fearless",
    "gentle",
    "glad",
    "happy",
    "humble",
    "jolly",
    "keen",
    "kind",
    "lucid",
    "merry",
    "modest",
    "nimble",
    "noble",
    "patient",
    "plucky",
    "proud",
    "quick",
    "quiet",
    "serene",
    "sharp",
    "shy",
    "steady",
    "swift",
    "tender",
    "tidy",
    "vivid",
    "warm",
    "wise",
    "zealous",
)
# Scientists and engineers whose work computing stands on.
_NAMES = (
    "babbage",
    "lovelace",
    "turing",
    "hopper",
    "shannon",
    "neumann",
    "dijkstra",
    "knuth",
    "ritchie",
    "thompson",
    "kernighan",
    "liskov",
    "hamilton",
    "torvalds",
    "lamport",
    "hoare",
    "backus",
    "mccarthy",
    "allen",
    "goldberg",
    "kay",
    "cerf",
    "kahn",
    "berners",
    "perlman",
    "wirth",
    "tanenbaum",
    "bell",
    "boole",
    "noether",
    "curie",
    "euler",
    "gauss",
    "lamarr",
    "johnson",
    "vaughan",
    "jackson",
    "franklin",
    "meitner",
    "ramanujan",
)


def validate_name(name: str, kind: str = "container") -> str:
    """The name without a leading slash; InvalidArgument when docker would refuse it
    (``kind``: what is named, for the message: container, pod)."""
    check_name_length(kind, name.removeprefix("/"))
    if not _VALID.match(name):
        raise InvalidArgument(
            f"Invalid {kind} name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )
    return name.removeprefix("/")


def generate_name(taken: set[str]) -> str:
    """A fresh ``adjective_name``, with a number appended if every plain one is taken."""
    for attempt in range(50):
        name = f"{secrets.choice(_ADJECTIVES)}_{secrets.choice(_NAMES)}"
        if attempt > 10:
            name += str(secrets.randbelow(10))
        if name not in taken:
            return name
    return f"servin_{secrets.token_hex(4)}"
