"""The config-only instructions applied to an image config, with docker's rules.

Values come in already substituted (the builder knows ARG and ENV); these functions check
them as docker's builder does and change the ``config`` part of a ``State`` in place.
"""

from __future__ import annotations

import posixpath
import re
from typing import Any

from servin.engine.build.events import StepError
from servin.errors import InvalidArgument
from servin.signals import parse_signal

DEFAULT_SHELL = ["/bin/sh", "-c"]
_PORT = re.compile(r"^(\d+)(?:-(\d+))?(?:/(tcp|udp|sctp))?$", re.I)
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_DURATION_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
                "m": 60_000_000_000, "h": 3_600_000_000_000}


def shell(image: dict[str, Any]) -> list[str]:
    """The shell of shell-form commands (SHELL, else ``/bin/sh -c``)."""
    value = image.get("Shell")
    return list(value) if value else list(DEFAULT_SHELL)


def command(image: dict[str, Any], argv: list[str] | None, script: str) -> list[str]:
    """A CMD/ENTRYPOINT/RUN as argv: exec form as is, shell form through the shell."""
    if argv is not None:
        return list(argv)
    return [*shell(image), script]


def set_labels(image: dict[str, Any], pairs: list[tuple[str, str]]) -> None:
    """LABEL: add or replace labels."""
    labels = dict(image.get("Labels") or {})
    for key, value in pairs:
        if not key:
            raise StepError("LABEL names can not be blank")
        labels[key] = value
    image["Labels"] = labels


def expose(image: dict[str, Any], ports: list[str]) -> None:
    """EXPOSE: ``80``, ``80/udp``, ``8000-8002/tcp`` (a range adds every port)."""
    exposed = dict(image.get("ExposedPorts") or {})
    for text in ports:
        match = _PORT.match(text.strip())
        if not match:
            raise StepError(f"invalid containerPort: {text}")
        start = int(match.group(1))
        end = int(match.group(2) or start)
        proto = (match.group(3) or "tcp").lower()
        if not 0 < start <= end <= 65535:
            raise StepError(f"invalid port range: {text}")
        for port in range(start, end + 1):
            exposed[f"{port}/{proto}"] = {}
    image["ExposedPorts"] = exposed


def add_volumes(image: dict[str, Any], paths: list[str]) -> None:
    """VOLUME: add mount points."""
    volumes = dict(image.get("Volumes") or {})
    for path in paths:
        if not path.strip():
            raise StepError("VOLUME specified can not be an empty string")
        volumes[path] = {}
    image["Volumes"] = volumes


def workdir(image: dict[str, Any], path: str) -> str:
    """WORKDIR: relative to the current one; returns the new absolute, clean path."""
    if not path:
        raise StepError("WORKDIR cannot be empty")
    if not path.startswith("/"):
        path = posixpath.join("/", image.get("WorkingDir") or "/", path)
    clean = posixpath.normpath(path)
    if clean.startswith("//"):
        clean = "/" + clean.lstrip("/")
    image["WorkingDir"] = clean
    return clean


def stop_signal(image: dict[str, Any], value: str) -> None:
    """STOPSIGNAL: a signal name (with or without SIG, docker's table) or number."""
    try:
        parse_signal(value)
    except InvalidArgument:
        raise StepError(f"invalid signal: {value}") from None
    image["StopSignal"] = value


def duration_ns(text: str, what: str) -> int:
    """A Go duration (``30s``, ``1m30s``, ``500ms``) in nanoseconds."""
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise StepError(f"invalid duration {text!r} for {what} (e.g. 30s, 1m30s)")
    return int(sum(float(n) * _DURATION_NS[u] for n, u in parts))


def healthcheck(image: dict[str, Any], test: list[str], *, interval: str, timeout: str,
                start_period: str, start_interval: str, retries: str) -> None:
    """HEALTHCHECK: the test and its timings (docker leaves zero values out)."""
    if test == ["NONE"]:
        image["Healthcheck"] = {"Test": ["NONE"]}
        return
    check: dict[str, Any] = {"Test": list(test)}
    for key, text, flag in (("Interval", interval, "--interval"),
                            ("Timeout", timeout, "--timeout"),
                            ("StartPeriod", start_period, "--start-period"),
                            ("StartInterval", start_interval, "--start-interval")):
        if not text:
            continue
        value = duration_ns(text, flag)
        if value and value < 1_000_000:
            raise StepError(f"{flag} {text!r} cannot be less than 1ms")
        if value:
            check[key] = value
    if retries:
        try:
            count = int(retries)
        except ValueError:
            raise StepError(f"invalid --retries {retries!r}") from None
        if count < 0:
            raise StepError("--retries cannot be negative")
        if count:
            check["Retries"] = count
    image["Healthcheck"] = check
