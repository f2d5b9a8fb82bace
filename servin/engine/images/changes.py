"""Dockerfile instructions applied to an image config (``import -c``, ``commit -c``)."""

from __future__ import annotations

import json
import shlex
from typing import Any

from servin.engine import limits
from servin.errors import InvalidArgument
from servin.signals import parse_signal

SUPPORTED = (
    "CMD",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "LABEL",
    "USER",
    "VOLUME",
    "WORKDIR",
    "STOPSIGNAL",
)


def apply_changes(config: dict[str, Any], changes: list[str]) -> None:
    """Apply each instruction to ``config`` (the image config's ``config`` object) in place."""
    if len(changes) > limits.LIST_MAX:
        raise InvalidArgument(f"too many changes: {len(changes)} (at most {limits.LIST_MAX})")
    for change in changes:
        if len(change) > limits.ARG_MAX:
            raise InvalidArgument(f"a change is {len(change)} characters long "
                                  f"(at most {limits.ARG_MAX})")
        instruction, _, rest = change.strip().partition(" ")
        if not instruction:
            continue
        name = instruction.upper()
        rest = rest.strip()
        if name not in SUPPORTED:
            raise InvalidArgument(
                f"{instruction} is not a valid change command (use one of {', '.join(SUPPORTED)})"
            )
        if not rest:
            raise InvalidArgument(f"{name} needs an argument")
        if name in ("CMD", "ENTRYPOINT"):
            config["Cmd" if name == "CMD" else "Entrypoint"] = _command(rest)
        elif name == "ENV":
            env = [e for e in config.get("Env") or [] if isinstance(e, str)]
            for key, value in _pairs(rest, name):
                env = [e for e in env if e.split("=", 1)[0] != key] + [f"{key}={value}"]
            config["Env"] = env
        elif name == "LABEL":
            labels = dict(config.get("Labels") or {})
            labels.update(_pairs(rest, name))
            config["Labels"] = labels
        elif name == "EXPOSE":
            ports = dict(config.get("ExposedPorts") or {})
            for port in rest.split():
                number, _, proto = port.partition("/")
                if (
                    not number.isdigit()
                    or not 0 < int(number) < 65536
                    or proto not in ("", "tcp", "udp", "sctp")
                ):
                    raise InvalidArgument(f"invalid port in EXPOSE: {port!r}")
                ports[f"{int(number)}/{proto or 'tcp'}"] = {}
            config["ExposedPorts"] = ports
        elif name == "VOLUME":
            volumes = dict(config.get("Volumes") or {})
            paths = json.loads(rest) if rest.startswith("[") else rest.split()
            for path in paths:
                volumes[path] = {}
            config["Volumes"] = volumes
        elif name == "USER":
            config["User"] = rest
        elif name == "WORKDIR":
            config["WorkingDir"] = rest
        elif name == "STOPSIGNAL":
            parse_signal(rest)  # refused now rather than at the first stop
            config["StopSignal"] = rest
    limits.check_labels(dict(config.get("Labels") or {}))
    limits.check_process([*(config.get("Entrypoint") or []), *(config.get("Cmd") or [])],
                         list(config.get("Env") or []))


def _command(text: str) -> list[str]:
    if text.startswith("["):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidArgument(f"invalid JSON array {text!r}: {exc.msg}") from exc
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise InvalidArgument(f"invalid JSON array {text!r}: expected strings")
        return value
    return ["/bin/sh", "-c", text]


def _pairs(text: str, name: str) -> list[tuple[str, str]]:
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise InvalidArgument(f"{name}: {exc}") from exc
    if words and "=" not in words[0]:
        # Legacy form: ENV KEY some value
        return [(words[0], " ".join(words[1:]))]
    pairs = []
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise InvalidArgument(f"{name}: expected KEY=VALUE, got {word!r}")
        pairs.append((key, value))
    return pairs
