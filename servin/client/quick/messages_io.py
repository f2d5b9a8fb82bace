"""The lite messages of the quick front's ``logs``, ``stats`` and ``exec`` (see ``lite``):
field tables written once, checked against the generated descriptors by
``tests/cli/quick/test_io_messages.py``; attribute names are the generated classes', so the
shared formatting (``servin.cli.logwrite``, ``statsview``, ``execout``) reads either kind."""

from __future__ import annotations

from servin.client.quick.lite import (
    BOOL,
    BYTES,
    DOUBLE,
    INT32,
    INT64,
    MAP,
    MESSAGE,
    STRING,
    UINT32,
    UINT64,
    Field,
    Message,
    Timestamp,
)


class ContainerLogsRequest(Message):
    """servin.v1.ContainerLogsRequest."""

    id: str
    follow: bool
    stdout: bool
    stderr: bool
    tail: int
    since: Timestamp
    until: Timestamp
    timestamps: bool
    details: bool
    FIELDS = (
        Field(1, "id", STRING),
        Field(2, "follow", BOOL),
        Field(3, "stdout", BOOL),
        Field(4, "stderr", BOOL),
        Field(5, "tail", INT64),
        Field(6, "since", MESSAGE, message=Timestamp),
        Field(7, "until", MESSAGE, message=Timestamp),
        Field(8, "timestamps", BOOL),
        Field(9, "details", BOOL),
    )


class LogChunk(Message):
    """servin.v1.LogChunk (records expanded by ``servin.client.logs.records``)."""

    data: bytes
    sizes: list[int]
    streams: bytes
    times: list[int]
    container_id: str
    attrs: dict[str, str]
    FIELDS = (
        Field(1, "data", BYTES),
        Field(2, "sizes", UINT32, repeated=True),
        Field(3, "streams", BYTES),
        Field(4, "times", INT64, repeated=True),
        Field(5, "container_id", STRING),
        Field(6, "attrs", MAP, key=STRING, value=STRING),
    )


class StatsRequest(Message):
    """servin.v1.StatsRequest."""

    ids: list[str]
    stream: bool
    interval_ms: int
    FIELDS = (
        Field(1, "ids", STRING, repeated=True),
        Field(2, "stream", BOOL),
        Field(3, "interval_ms", UINT32),
    )


class ContainerStats(Message):
    """servin.v1.ContainerStats."""

    id: str
    name: str
    read: Timestamp
    cpu_percent: float
    cpu_total_ns: int
    memory_usage: int
    memory_limit: int
    memory_percent: float
    net_rx: int
    net_tx: int
    block_read: int
    block_write: int
    pids: int
    online_cpus: int
    FIELDS = (
        Field(1, "id", STRING),
        Field(2, "name", STRING),
        Field(3, "read", MESSAGE, message=Timestamp),
        Field(4, "cpu_percent", DOUBLE),
        Field(5, "cpu_total_ns", UINT64),
        Field(6, "memory_usage", UINT64),
        Field(7, "memory_limit", UINT64),
        Field(8, "memory_percent", DOUBLE),
        Field(9, "net_rx", UINT64),
        Field(10, "net_tx", UINT64),
        Field(11, "block_read", UINT64),
        Field(12, "block_write", UINT64),
        Field(13, "pids", UINT64),
        Field(14, "online_cpus", UINT32),
    )


class StatsBatch(Message):
    """servin.v1.StatsBatch."""

    stats: list[ContainerStats]
    FIELDS = (Field(1, "stats", MESSAGE, repeated=True, message=ContainerStats),)


class ExecCreateRequest(Message):
    """servin.v1.ExecCreateRequest."""

    container_id: str
    cmd: list[str]
    env: list[str]
    user: str
    working_dir: str
    tty: bool
    attach_stdin: bool
    attach_stdout: bool
    attach_stderr: bool
    privileged: bool
    detach_keys: str
    FIELDS = (
        Field(1, "container_id", STRING),
        Field(2, "cmd", STRING, repeated=True),
        Field(3, "env", STRING, repeated=True),
        Field(4, "user", STRING),
        Field(5, "working_dir", STRING),
        Field(6, "tty", BOOL),
        Field(7, "attach_stdin", BOOL),
        Field(8, "attach_stdout", BOOL),
        Field(9, "attach_stderr", BOOL),
        Field(10, "privileged", BOOL),
        Field(11, "detach_keys", STRING),
    )


class ExecCreateResponse(Message):
    """servin.v1.ExecCreateResponse."""

    id: str
    FIELDS = (Field(1, "id", STRING),)


class ExecInput(Message):
    """servin.v1.ExecInput."""

    exec_id: str
    detach: bool
    data: bytes
    rows: int
    cols: int
    close_stdin: bool
    create: ExecCreateRequest
    FIELDS = (
        Field(1, "exec_id", STRING),
        Field(2, "detach", BOOL),
        Field(3, "data", BYTES),
        Field(4, "rows", UINT32),
        Field(5, "cols", UINT32),
        Field(6, "close_stdin", BOOL),
        Field(7, "create", MESSAGE, message=ExecCreateRequest),
    )


class AttachOutput(Message):
    """servin.v1.AttachOutput."""

    stream: int
    data: bytes
    exited: bool
    exit_code: int
    detached: bool
    FIELDS = (
        Field(1, "stream", INT32),
        Field(2, "data", BYTES),
        Field(3, "exited", BOOL),
        Field(4, "exit_code", INT32),
        Field(5, "detached", BOOL),
    )


class ExecInspectRequest(Message):
    """servin.v1.ExecInspectRequest."""

    exec_id: str
    FIELDS = (Field(1, "exec_id", STRING),)


class ExecDetail(Message):
    """servin.v1.ExecDetail."""

    id: str
    container_id: str
    running: bool
    exit_code: int
    pid: int
    cmd: list[str]
    tty: bool
    FIELDS = (
        Field(1, "id", STRING),
        Field(2, "container_id", STRING),
        Field(3, "running", BOOL),
        Field(4, "exit_code", INT32),
        Field(5, "pid", INT32),
        Field(6, "cmd", STRING, repeated=True),
        Field(7, "tty", BOOL),
    )


ALL: tuple[type[Message], ...] = (
    ContainerLogsRequest, LogChunk, StatsRequest, ContainerStats, StatsBatch, ExecCreateRequest,
    ExecCreateResponse, ExecInput, AttachOutput, ExecInspectRequest, ExecDetail,
)
"""Every message here (the descriptor cross-check walks them)."""
