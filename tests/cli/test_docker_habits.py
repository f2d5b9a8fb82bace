"""docker-style command lines against a real daemon: the output has docker's shape.

Each case is a command line (as a user would type it after ``docker``) and a check of what it
prints; the fleet fixture made containers ``ok`` (exited 0), ``three`` (exited 3) and
``runner`` (running, label tier=web), in that order.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable

import pytest

from tests.cli.conftest import Fleet

HEX12 = re.compile(r"^[0-9a-f]{12}$")
HEX64 = re.compile(r"^[0-9a-f]{64}$")


def lines(out: str) -> list[str]:
    return out.splitlines()


def json_lines(out: str) -> list[dict[str, object]]:
    objs = [json.loads(line) for line in lines(out)]
    assert all(isinstance(o, dict) for o in objs), out
    return objs


Check = Callable[[str, Fleet], None]


def expect_lines(*expected: str) -> Check:
    def check(out: str, fleet: Fleet) -> None:
        assert lines(out) == list(expected), out

    return check


def every_line(pattern: str, count: int) -> Check:
    def check(out: str, fleet: Fleet) -> None:
        got = lines(out)
        assert len(got) == count, out
        assert all(re.fullmatch(pattern, line) for line in got), out

    return check


def table(header: list[str], rows: int) -> Check:
    def check(out: str, fleet: Fleet) -> None:
        got = lines(out)
        assert re.split(r"\s{2,}", got[0].strip()) == header, out
        assert len(got) == rows + 1, out
        assert "\x1b[" not in out  # piped: plain text

    return check


def _images_json(out: str, fleet: Fleet) -> None:
    first = json.loads(lines(out)[0])  # `images --format json | head -1` is one object
    assert isinstance(first, dict)
    assert first["Repository"] == "busybox" and first["Tag"] == "latest"
    assert HEX12.match(str(first["ID"]))


def _container_ls_json(out: str, fleet: Fleet) -> None:
    objs = json_lines(out)
    assert [o["Names"] for o in objs] == ["runner", "three", "ok"]
    assert objs[0]["State"] == "running" and objs[0]["Labels"] == "tier=web"


def _inspect_array(out: str, fleet: Fleet) -> None:
    data = json.loads(out)
    assert isinstance(data, list) and len(data) == 2
    assert [d["Name"] for d in data] == ["/three", "/runner"]
    assert data[0]["State"]["ExitCode"] == 3


def _ids(key: str, full: bool) -> Check:
    def check(out: str, fleet: Fleet) -> None:
        ids = fleet.ids
        want = {"exited": [ids["three"], ids["ok"]], "all": [ids["runner"], ids["three"],
                                                              ids["ok"]]}[key]
        assert lines(out) == [i if full else i[:12] for i in want], out

    return check


def _prefix(out: str, fleet: Fleet) -> None:
    assert out.strip() == "/runner"


def _df_json(out: str, fleet: Fleet) -> None:
    types = [o["Type"] for o in json_lines(out)]
    assert "Images" in types and "Containers" in types


def _events(out: str, fleet: Fleet) -> None:
    assert lines(out) == [f"container start {fleet.ids['runner']}"], out


CASES: list[tuple[str, Check]] = [
    ("ps -a --format '{{.Names}} {{.Status}}'",
     every_line(r"(runner Up .+|three Exited \(3\) .+|ok Exited \(0\) .+)", 3)),
    ("ps -q --filter status=exited", _ids("exited", False)),  # status= implies -a, as docker
    ("ps -q --filter exited=3", every_line(HEX12.pattern, 1)),
    ("ps -aq --no-trunc --filter status=exited", _ids("exited", True)),
    ("ps -a --filter exited=3 --format '{{.Names}}'", expect_lines("three")),
    ("ps -a --filter label=tier=web --format '{{.Names}}'", expect_lines("runner")),
    ("ps -a --filter name=o --filter status=exited --format '{{.Names}}'",
     expect_lines("ok")),
    ("ps -a --filter status=exited --filter status=running --format '{{.Names}}'",
     expect_lines("runner", "three", "ok")),
    ("ps -a --filter before=runner --format '{{.Names}}'", expect_lines("three", "ok")),
    ("ps -a --filter since=ok --format '{{.Names}}'", expect_lines("runner", "three")),
    ("ps -a --filter ancestor=busybox -q", _ids("all", False)),
    ("ps -a --filter is-task=true -q", expect_lines()),
    ("ps --format '{{.Names}} {{.Label \"tier\"}} {{index .Labels \"tier\"}}'",
     expect_lines("runner web web")),
    ("ps --format 'table {{.ID}}\\t{{.Names}}'", table(["CONTAINER ID", "NAMES"], 1)),
    ("ps -a",
     table(["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"], 3)),
    ("ps -a -n 1 --format '{{.Names}}'", expect_lines("runner")),
    ("ps -a -n 2 --format '{{.Names}}'", expect_lines("runner", "three")),
    ("ps -l --format '{{.Names}}'", expect_lines("runner")),
    ("ps --last 1 -q", every_line(HEX12.pattern, 1)),
    ("ps -a -q", every_line(HEX12.pattern, 3)),
    ("ps -a -q --no-trunc", every_line(HEX64.pattern, 3)),
    ("ps -a --no-trunc --format '{{.ID}}'", every_line(HEX64.pattern, 3)),
    ("ps -s --format '{{.Size}}'", every_line(r"\d.*B \(virtual \d.*B\)", 1)),
    ("container ls -a --format json", _container_ls_json),
    ("container list -a --format '{{json .Names}}'",
     expect_lines('"runner"', '"three"', '"ok"')),
    ("container ps -aq", _ids("all", False)),
    ("images --format json", _images_json),
    ("image ls --format '{{.Repository}}:{{.Tag}}'", expect_lines("busybox:latest")),
    ("image list -q", every_line(HEX12.pattern, 1)),
    ("images --format 'table {{.Repository}}\\t{{.Tag}}'", table(["REPOSITORY", "TAG"], 1)),
    ("inspect -f '{{.State.ExitCode}}' three", expect_lines("3")),
    ("container inspect --format '{{.State.Status}} {{.Config.Labels.tier}}' runner",
     expect_lines("running web")),
    ("inspect three runner", _inspect_array),
    ("inspect --type image -f '{{index .RepoTags 0}}' busybox", expect_lines("busybox:latest")),
    ("inspect -f '{{range $k, $v := .Config.Labels}}{{$k}}={{$v}}{{end}}' runner",
     expect_lines("tier=web")),
    ("inspect -f '{{printf \"%s:%d\" .Name .State.ExitCode}}' three", expect_lines("/three:3")),
    ("inspect -f '{{.Name | upper}} {{lower \"X\"}} {{title \"a\"}} {{len .Args}}' three",
     expect_lines("/THREE x A 2")),
    ("inspect -f '{{join .Args \",\"}}' three", expect_lines("-c,exit 3")),
    ("inspect -f '{{if eq .State.ExitCode 0}}ok{{else}}failed{{end}}' ok three",
     expect_lines("ok", "failed")),
    ("inspect -f '{{json .State.ExitCode}}' three", expect_lines("3")),
    ("system info -f '{{.Containers}} {{.ContainersRunning}}'", expect_lines("3 1")),
    ("info --format '{{json .ContainersStopped}}'", expect_lines("2")),
    ("system df --format json", _df_json),
    ("info --format json", lambda out, fleet: json_lines(out)),  # one line, one object
    ("version --format json", lambda out, fleet: json_lines(out)),
    ("events --since 1h --until 0s --filter container=runner --filter event=start "
     "--format '{{.Type}} {{.Action}} {{.ID}}'", _events),
    ("system events --since 1h --until 0s -f container=runner -f event=start "
     "--format '{{.Type}} {{.Action}} {{.ID}}'", _events),
]


@pytest.mark.parametrize(("line", "check"), CASES, ids=[c[0] for c in CASES])
def test_command_line_output(fleet: Fleet, line: str, check: Check) -> None:
    out = fleet.daemon.cli(*shlex.split(line))
    assert out.returncode == 0, f"{line}: {out.stderr}"
    check(out.stdout, fleet)


def test_id_prefixes_and_names_resolve(fleet: Fleet) -> None:
    d = fleet.daemon
    runner = fleet.ids["runner"]
    for ref in (runner[:4], runner[:12], runner, "runner", "/runner"):
        out = d.cli("inspect", "-f", "{{.Name}}", ref)
        assert out.stdout.strip() == "/runner", (ref, out.stderr)
    out = d.cli("container", "inspect", "-f", "{{.Id}}", runner[:6])
    assert out.stdout.strip() == runner


def test_ambiguous_prefix_is_a_clear_error(fleet: Fleet) -> None:
    d = fleet.daemon
    made: list[str] = []
    try:
        # Pigeonhole: among 17 IDs two share their first hex digit; usually far fewer needed.
        while True:
            ids = [*fleet.ids.values(), *made]
            firsts = [i[0] for i in ids]
            shared = next((c for c in firsts if firsts.count(c) > 1), None)
            if shared is not None:
                break
            made.append(d.cli("create", "busybox", "true", check=True).stdout.strip())
        out = d.cli("inspect", shared)
        assert out.returncode == 1
        assert out.stderr.strip().splitlines()[-1].startswith("Error:")
        assert "multiple containers found with provided prefix" in out.stderr
        out = d.cli("rm", shared)
        assert out.returncode == 1 and "multiple containers" in out.stderr
    finally:
        if made:
            d.cli("rm", *made, check=True)


def test_filters_are_checked(fleet: Fleet) -> None:
    out = fleet.daemon.cli("ps", "--filter", "status")
    assert out.returncode == 125
    assert "bad format of filter (expected name=value)" in out.stderr
    out = fleet.daemon.cli("ps", "--filter", "nosuch=1")
    assert out.returncode == 1
    assert out.stderr.strip() == (
        "Error: invalid filter 'nosuch' (valid: ancestor, before, exited, expose, health, id, "
        "is-task, isolation, label, name, network, publish, since, status, volume)"
    )


def test_rmi_is_image_rm(fleet: Fleet) -> None:
    d = fleet.daemon
    for command in (["rmi"], ["image", "rm"], ["image", "remove"]):
        d.cli("tag", "busybox", "alias:1", check=True)
        out = d.cli(*command, "alias:1", check=True)
        assert out.stdout.strip() == "Untagged: alias:1", command
    assert d.cli("images", "--format", "{{.Repository}}").stdout.split() == ["busybox"]
