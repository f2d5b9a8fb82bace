"""Bounds on what a caller may store: names, labels, environment, other metadata.

Every record is stored, returned by every list and kept in memory by clients; without bounds a
60 MB label costs every ``ps`` 60 MB. The limits are generous for real use and small next to
the cost of abuse; each breach is one InvalidArgument naming the limit. The numbers are
documented in docs/security.md.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from typing import Any

import msgspec

from servin.errors import InvalidArgument

# Names of containers, volumes, networks and pods: docker's characters, and short enough to
# be a file name (volumes are directories named after them) and to read in a table.
NAME_MAX = 255
NAME_PATTERN = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")

LABELS_MAX = 1000  # entries per object
LABEL_KEY_MAX = 1024  # bytes
LABELS_TOTAL_MAX = 256 * 1024  # bytes of all keys and values of one object (as Kubernetes)

# The kernel refuses a single argument or environment string over 128 KiB (MAX_ARG_STRLEN).
ARG_MAX = 128 * 1024
ARGS_TOTAL_MAX = 1024 * 1024  # command, entrypoint and environment together
ENV_MAX = 4096  # entries

TEXT_MAX = 4096  # any other single string (a path, a user, a hostname, a comment)
SPEC_MAX = 4 * 1024 * 1024  # everything a container's configuration holds, in bytes
LIST_MAX = 4096  # entries of any other list (mounts, ports, DNS servers, ...)
OPTIONS_MAX = 64 * 1024  # bytes of a driver's options (volumes, networks)


def check_name(kind: str, name: str) -> str:
    """``name`` if it follows docker's rule and the length limit; InvalidArgument otherwise."""
    if len(name) > NAME_MAX:
        raise InvalidArgument(f"invalid {kind} name: {len(name)} characters, "
                              f"at most {NAME_MAX} are allowed")
    if not NAME_PATTERN.fullmatch(name):
        raise InvalidArgument(f"invalid {kind} name {name!r}: only [a-zA-Z0-9][a-zA-Z0-9_.-] "
                              "are allowed")
    return name


def check_name_length(kind: str, name: str) -> None:
    """Only the length limit (where a kind keeps its own character rule)."""
    if len(name) > NAME_MAX:
        raise InvalidArgument(f"invalid {kind} name: {len(name)} characters, "
                              f"at most {NAME_MAX} are allowed")


def _bytes(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def check_labels(labels: Mapping[str, str], what: str = "labels") -> None:
    """Label count, key length and total size."""
    if len(labels) > LABELS_MAX:
        raise InvalidArgument(f"too many {what}: {len(labels)} (at most {LABELS_MAX})")
    total = 0
    for key, value in labels.items():
        if _bytes(key) > LABEL_KEY_MAX:
            raise InvalidArgument(f"a key of the {what} is {_bytes(key)} bytes long "
                                  f"(at most {LABEL_KEY_MAX})")
        total += _bytes(key) + _bytes(value)
    if total > LABELS_TOTAL_MAX:
        raise InvalidArgument(f"{what} take {total} bytes (at most {LABELS_TOTAL_MAX})")


def check_options(options: Mapping[str, str], what: str = "driver options") -> None:
    """Driver options: bounded like labels, in fewer bytes."""
    check_labels(options, what)
    total = sum(_bytes(k) + _bytes(v) for k, v in options.items())
    if total > OPTIONS_MAX:
        raise InvalidArgument(f"{what} take {total} bytes (at most {OPTIONS_MAX})")


def check_process(args: Iterable[str], env: Iterable[str]) -> None:
    """A command line and its environment: what execve itself could take."""
    args, env = list(args), list(env)
    if len(env) > ENV_MAX:
        raise InvalidArgument(f"too many environment variables: {len(env)} (at most {ENV_MAX})")
    total = 0
    for item, what in [(a, "an argument") for a in args] + [(e, "an environment entry")
                                                             for e in env]:
        size = _bytes(item)
        if size > ARG_MAX:
            raise InvalidArgument(f"{what} is {size} bytes long (at most {ARG_MAX})")
        total += size
    if total > ARGS_TOTAL_MAX:
        raise InvalidArgument(f"the command and environment take {total} bytes "
                              f"(at most {ARGS_TOTAL_MAX})")


def check_text(value: str, what: str) -> None:
    """One free-form string."""
    if _bytes(value) > TEXT_MAX:
        raise InvalidArgument(f"{what} is {_bytes(value)} bytes long (at most {TEXT_MAX})")


def size_of(value: Any) -> int:
    """Bytes a value holds: strings, bytes, numbers, lists, maps, dataclasses and protobuf
    messages (whatever form the configuration takes)."""
    if isinstance(value, str):
        return _bytes(value)
    if isinstance(value, bytes | bytearray):
        return len(value)
    if isinstance(value, bool | int | float) or value is None:
        return 8
    byte_size = getattr(value, "ByteSize", None)
    if callable(byte_size):  # a protobuf message
        return int(byte_size())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return sum(size_of(getattr(value, f.name)) for f in dataclasses.fields(value))
    if isinstance(value, msgspec.Struct):  # the core's model
        return sum(size_of(getattr(value, f)) for f in value.__struct_fields__)
    if isinstance(value, Mapping):
        return sum(size_of(k) + size_of(v) for k, v in value.items())
    if isinstance(value, Iterable):
        return sum(size_of(v) for v in value)
    return 8


def _lists(value: Any) -> Iterable[tuple[str, int]]:
    """(field name, length) of every list field of a dataclass, model struct or protobuf
    message (the nested structs of the model included)."""
    if isinstance(value, msgspec.Struct):
        items: list[tuple[str, Any]] = []
        for f in value.__struct_fields__:
            field_value = getattr(value, f)
            if isinstance(field_value, msgspec.Struct):
                yield from _lists(field_value)
            else:
                items.append((f, field_value))
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        items = [(f.name, getattr(value, f.name)) for f in dataclasses.fields(value)]
    elif callable(getattr(value, "ListFields", None)):
        items = [(f.name, v) for f, v in value.ListFields()]
    else:
        return
    yield from ((name, len(v)) for name, v in items
                if not isinstance(v, str | bytes | Mapping) and hasattr(v, "__len__"))


def check_container_config(request: Any) -> None:
    """A container's configuration (the core's ``CreateRequest``): labels, command and
    environment, every other string and list, and the whole."""
    config, host = request.config, request.host_config
    check_labels(dict(config.labels))
    check_process([*(config.entrypoint or []), *config.cmd], list(config.env))
    for part, fields in ((config, ("image", "working_dir", "user", "hostname", "domainname",
                                   "stop_signal")),
                         (host, ("network_mode", "ipc_mode", "pid_mode", "uts_mode", "runtime",
                                 "cgroup_parent"))):
        for field in fields:
            value = getattr(part, field, "")
            if isinstance(value, str):
                check_text(value, field.replace("_", " "))
    spec = request
    for name, length in _lists(spec):
        if name not in ("env", "cmd", "entrypoint") and length > LIST_MAX:
            raise InvalidArgument(f"too many {name.replace('_', ' ')}: {length} "
                                  f"(at most {LIST_MAX})")
    total = size_of(spec)
    if total > SPEC_MAX:
        raise InvalidArgument(f"the container's configuration takes {total} bytes "
                              f"(at most {SPEC_MAX})")
