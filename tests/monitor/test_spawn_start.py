"""A spawn that also starts the program (``SpawnSpec.start``), with attach streams passed
along: the monitor registers them before it reads any output, so nothing is missed."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import socket

import pytest

from servin.engine.runtime.monitor import client
from servin.engine.runtime.monitor.protocol import encode_line, error_from_answer, monitor_alive
from servin.errors import InvalidArgument, NotFound, ServinError

from .conftest import Harness, arun
from .test_containers import collect, json_log, wait_monitor_gone


def test_started_at_once_with_attach_streams(harness: Harness) -> None:
    # Output from the very first instruction, on both streams.
    script = "for i in 1 2 3; do echo out$i; echo err$i >&2; done; exit 6"

    async def go():
        spec = dataclasses.replace(harness.spec(["/bin/sh", "-c", script]), start=True)
        result = await client.spawn(harness.zygote, spec, [{}, {"stderr": False}])
        both, out_only = result.attachments
        got = await asyncio.gather(collect(both), collect(out_only))
        for att in result.attachments:
            await att.close()
        mon = client.MonitorClient(spec.state_dir)
        return spec, result, got, await mon.wait()

    spec, result, (both, out_only), record = arun(go())
    assert result.pid > 0 and result.monitor_pid > 0
    assert both[1] == out_only[1] == b"out1\nout2\nout3\n"
    assert both[2] == b"err1\nerr2\nerr3\n" and out_only[2] == b""
    assert record.exit_code == 6 and record.started_at
    assert [t for s, t in json_log(spec.log.path) if s == "stdout"] == ["out1\n", "out2\n",
                                                                      "out3\n"]
    wait_monitor_gone(spec.state_dir)


def test_started_at_once_stdin_and_state(harness: Harness) -> None:
    async def go():
        spec = dataclasses.replace(harness.spec(["/bin/cat"], open_stdin=True), start=True)
        result = await client.spawn(harness.zygote, spec, [{"stdin": True, "stdin_once": True}])
        [att] = result.attachments
        mon = client.MonitorClient(spec.state_dir)
        state = await mon.state()
        with pytest.raises(ServinError):
            await mon.start()  # already running
        await att.write(b"typed\n")
        first = await collect(att, until=b"typed\n")
        await att.close_stdin()
        await collect(att)
        await att.close()
        return state, first, await mon.wait()

    state, first, record = arun(go())
    assert state.status == "running" and state.started_at
    assert first[1] == b"typed\n" and record.exit_code == 0


def test_started_at_once_without_attach(harness: Harness) -> None:
    async def go():
        spec = dataclasses.replace(harness.spec(["/bin/sh", "-c", "echo quiet"]), start=True)
        result = await client.spawn(harness.zygote, spec)
        return spec, result, await client.MonitorClient(spec.state_dir).wait()

    spec, result, record = arun(go())
    assert result.attachments == () and record.exit_code == 0
    assert json_log(spec.log.path) == [("stdout", "quiet\n")]


def test_failed_start_leaves_nothing(harness: Harness) -> None:
    async def go():
        spec = dataclasses.replace(harness.spec(["/no/such/program"]), start=True)
        with pytest.raises(NotFound) as failure:
            await client.spawn(harness.zygote, spec, [{}])
        return spec, failure.value

    spec, error = arun(go())
    assert "/no/such/program" in str(error) and "\n" not in str(error)
    assert not monitor_alive(spec.state_dir)


def test_passed_connections_must_match_attach_requests(harness: Harness) -> None:
    spec = dataclasses.replace(harness.spec(["/bin/true"]), start=True)
    a, b = socket.socketpair()
    try:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.connect(str(harness.zygote))
            # Two attach requests, one connection: refused before anything is created.
            request = {"op": "spawn", "spec": spec.to_json(), "attach": [{}, {}]}
            socket.send_fds(sock, [encode_line(request)], [b.fileno()])
            answer = sock.makefile("rb").readline()
    finally:
        a.close()
        b.close()
    error = error_from_answer(json.loads(answer))
    assert isinstance(error, InvalidArgument) and "1 connections for 2" in str(error)
    assert not monitor_alive(spec.state_dir) and not (spec.state_dir / "pid").exists()
