"""Reading container specs stored by schema versions 2-5 (for migration 6 only).

Up to schema 5 the ``containers.spec`` column held a serialised ``servin.v1.ContainerSpec``
protobuf: the core stored its front door's wire type. Migration 6 rewrites each row as the
core's own JSON document. It must read those old bytes forever, whatever servin.v1 becomes,
and the core must not import the generated API package; so this module is a small reader of
the protobuf wire format (varints, length-delimited fields) with the ContainerSpec field table
of schemas 4 and 5 (up to field 51, the last one a protobuf spec ever stored) frozen below,
and it writes plain dicts in the schema-6 document format (in docs/architecture.md, "Stored
form"). It depends on nothing else of the engine, so later
changes to the model cannot change what this migration wrote.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from servin.protowire import WireError, read_varint

# Wire types.
_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5

Fields = dict[int, list[Any]]


def parse(data: bytes) -> Fields:
    """Every field of one message: number -> its values in order (ints or bytes)."""
    out: Fields = {}
    pos = 0
    while pos < len(data):
        key, pos = read_varint(data, pos)
        number, wire = key >> 3, key & 7
        value: Any
        if wire == _VARINT:
            value, pos = read_varint(data, pos)
        elif wire == _LEN:
            size, pos = read_varint(data, pos)
            if pos + size > len(data):
                raise WireError("truncated field")
            value, pos = data[pos : pos + size], pos + size
        elif wire == _I64:
            value, pos = int.from_bytes(data[pos : pos + 8], "little"), pos + 8
        elif wire == _I32:
            value, pos = int.from_bytes(data[pos : pos + 4], "little"), pos + 4
        else:
            raise WireError(f"unsupported wire type {wire}")
        out.setdefault(number, []).append(value)
    return out


def _signed(value: int) -> int:
    """An int32/int64 varint as the signed number it encodes (two's complement)."""
    return value - (1 << 64) if value >= 1 << 63 else value


def _str(f: Fields, n: int) -> str:
    values = f.get(n)
    return bytes(values[-1]).decode() if values else ""


def _strs(f: Fields, n: int) -> list[str]:
    return [bytes(v).decode() for v in f.get(n, [])]


def _int(f: Fields, n: int) -> int:
    values = f.get(n)
    return _signed(values[-1]) if values else 0


def _bool(f: Fields, n: int) -> bool:
    return bool(_int(f, n))


def _msgs(f: Fields, n: int) -> list[Fields]:
    return [parse(bytes(v)) for v in f.get(n, [])]


def _map(f: Fields, n: int, value: Callable[[Fields, int], Any] = _str) -> dict[str, Any]:
    return {_str(entry, 1): value(entry, 2) for entry in _msgs(f, n)}


def _message(f: Fields, n: int) -> Fields | None:
    found = _msgs(f, n)
    return found[-1] if found else None


def _compact(d: dict[str, Any]) -> dict[str, Any]:
    """Leave out empty values (the documents omit defaults)."""
    return {k: v for k, v in d.items() if v not in ("", 0, False, [], {}, None)}


def _mount(m: Fields) -> dict[str, Any]:
    return _compact({
        "type": _str(m, 1), "source": _str(m, 2), "target": _str(m, 3),
        "read_only": _bool(m, 4), "propagation": _str(m, 5), "options": _strs(m, 6),
        "driver": _str(m, 7), "name": _str(m, 8),
    }) | {"type": _str(m, 1)}


def _device(text: str) -> dict[str, Any]:
    """``HOST:CONTAINER:PERMS`` as schema 5 recorded it (``HOST[:CONTAINER][:PERMS]`` as
    typed is read the same way docker's CLI reads it)."""
    host, _, rest = text.partition(":")
    inside, _, perms = rest.partition(":")
    if inside and not perms and not inside.startswith("/") and set(inside) <= set("rwm"):
        inside, perms = "", inside
    return _compact({"path_on_host": host, "path_in_container": inside,
                     "permissions": perms}) | {"path_on_host": host}


def _endpoint(entry: Fields, n: int) -> dict[str, Any]:
    ep = _message(entry, n) or {}
    return _compact({"aliases": _strs(ep, 1), "ipv4_address": _str(ep, 2),
                     "mac_address": _str(ep, 3)})


def convert(blob: bytes) -> tuple[dict[str, Any], str]:
    """A schema-5 ContainerSpec as a schema-6 container document, and its pod ID."""
    s = parse(blob)
    config: dict[str, Any] = {
        "image": _str(s, 1), "cmd": _strs(s, 2), "env": _strs(s, 5),
        "working_dir": _str(s, 6), "user": _str(s, 7), "hostname": _str(s, 8),
        "domainname": _str(s, 9), "labels": _map(s, 10), "tty": _bool(s, 11),
        "open_stdin": _bool(s, 12), "stdin_once": _bool(s, 13), "stop_signal": _str(s, 14),
        "exposed_ports": _strs(s, 17),
    }
    config = _compact(config)
    if _bool(s, 4):  # entrypoint_set: an explicit (possibly empty) entrypoint
        config["entrypoint"] = _strs(s, 3)
    # -1 was "not set" (the CLI's default); 0, also when absent, was zero seconds.
    stop_timeout = _int(s, 15)
    if stop_timeout >= 0:
        config["stop_timeout"] = stop_timeout
    health = _message(s, 16)
    if health is not None:
        test = ["NONE"] if _bool(health, 6) else _strs(health, 1)
        config["healthcheck"] = _compact({
            "test": test, "interval_ns": _int(health, 2), "timeout_ns": _int(health, 3),
            "start_period_ns": _int(health, 4), "retries": _int(health, 5),
        })
    r = _message(s, 18) or {}
    resources = _compact({
        "memory": _int(r, 1), "memory_swap": _int(r, 2), "memory_reservation": _int(r, 3),
        "nano_cpus": _int(r, 4), "cpu_shares": _int(r, 5), "cpu_period": _int(r, 6),
        "cpu_quota": _int(r, 7), "cpuset_cpus": _str(r, 8), "cpuset_mems": _str(r, 9),
        "pids_limit": _int(r, 10), "blkio_weight": _int(r, 11), "oom_score_adj": _int(r, 12),
        "oom_kill_disable": _bool(r, 13),
    })
    policy = _message(s, 23) or {}
    log_config = _message(s, 39) or {}
    annotations = dict(a.split("=", 1) for a in _strs(s, 49) if "=" in a)
    host_config = _compact({
        "binds": _strs(s, 120),
        "volumes_from": _strs(s, 38),
        "network_mode": _str(s, 19),
        "port_bindings": [
            _compact({"container_port": _int(p, 1), "protocol": _str(p, 2),
                      "host_ip": _str(p, 3), "host_port": _int(p, 4),
                      "host_port_end": _int(p, 5)})
            | {"container_port": _int(p, 1)}
            for p in _msgs(s, 20)
        ],
        "publish_all_ports": _bool(s, 21),
        "restart_policy": _compact({"name": _str(policy, 1),
                                    "maximum_retry_count": _int(policy, 2)}),
        "auto_remove": _bool(s, 24), "privileged": _bool(s, 25),
        "cap_add": _strs(s, 26), "cap_drop": _strs(s, 27), "security_opt": _strs(s, 28),
        "readonly_rootfs": _bool(s, 29), "runtime": _str(s, 30), "ipc_mode": _str(s, 31),
        "pid_mode": _str(s, 32), "uts_mode": _str(s, 33), "dns": _strs(s, 34),
        "dns_search": _strs(s, 35), "dns_options": _strs(s, 36), "extra_hosts": _strs(s, 37),
        "log_config": _compact({"type": _str(log_config, 1), "options": _map(log_config, 2)}),
        "sysctls": _map(s, 40),
        "ulimits": [{"name": _str(u, 1), "soft": _int(u, 2), "hard": _int(u, 3)}
                    for u in _msgs(s, 41)],
        "init": _bool(s, 42), "shm_size": _int(s, 43),
        "devices": [_device(d) for d in _strs(s, 44)],
        "group_add": _strs(s, 45), "annotations": annotations, "resources": resources,
        "device_cgroup_rules": _strs(s, 50), "cgroupns_mode": _str(s, 51),
    })
    doc = {
        "config": config,
        "host_config": host_config,
        "networking": _compact({"endpoints": _map(s, 46, _endpoint)}),
        # Up to schema 5 the engine replaced the requested mounts by the resolved ones.
        "mounts": [_mount(m) for m in _msgs(s, 22)],
    }
    return doc, _str(s, 48)
