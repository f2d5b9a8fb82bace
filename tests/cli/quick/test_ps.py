"""The quick front's ``ps`` against the click path: same stdout, stderr and exit code, on one
real daemon; what the quick path imports; and what it leaves to click."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from servin.cli.quick import entry
from servin.cli.quick.flags import FlagSpec, parse_flags
from tests.cli.conftest import Fleet, on_a_pty
from tests.daemon import REPO

# Runs the real entry point and records which modules it loaded in $QUICK_PROBE.
_PROBE = """
import atexit, os, sys
def _record():
    with open(os.environ["QUICK_PROBE"], "w") as f:
        f.write(" ".join(sorted(sys.modules)))
atexit.register(_record)
if "QUICK_NOW" in os.environ:  # both paths print ages against one clock
    import time
    _now = float(os.environ["QUICK_NOW"])
    time.time = lambda: _now
sys.argv = ["servin", *sys.argv[1:]]
from servin.cli.quick.entry import main
main()
"""
HEAVY = ("click", "h2", "hpack", "grpc", "google", "rich", "servin.api", "servin.cli.main",
         "servin.client.h2channel")
# Standard modules that cost the short commands milliseconds of start-up: the common runs (a
# unix socket, -H or $SERVIN_HOST, no --since/--until) load none of them.
START_UP = ("typing", "contextlib", "re", "enum", "socket", "selectors", "dataclasses",
            "inspect", "functools")


def _start(tmp: Path, args: tuple[str, ...], quick: bool, now: float | None,
           extra_env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], Path]:
    probe = tmp / ("quick-modules" if quick else "click-modules")
    probe.unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("SERVIN_HOST", "SERVIN_CONTEXT")}
    env.update(QUICK_PROBE=str(probe), SERVIN_CONFIG=str(tmp / "config"))
    if now is not None:
        env["QUICK_NOW"] = repr(now)
    if not quick:
        env["SERVIN_QUICK"] = "0"
    env.update(extra_env or {})
    proc = subprocess.Popen([sys.executable, "-c", _PROBE, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=REPO, env=env)
    return proc, probe


def _finish(proc: subprocess.Popen[str], probe: Path) -> tuple[tuple[int, str, str], set[str]]:
    out, err = proc.communicate(timeout=60)
    modules = set(probe.read_text().split()) if probe.exists() else set()
    return (proc.returncode, out, err), modules


def servin(tmp: Path, *args: str, quick: bool) -> tuple[tuple[int, str, str], set[str]]:
    """(exit code, stdout, stderr) of ``servin ARGS`` and the modules it loaded."""
    return _finish(*_start(tmp, args, quick, None))


def heavy(modules: set[str], start_up: bool = True) -> list[str]:
    """The modules of ``HEAVY`` (and of ``START_UP`` unless told not to check them) loaded."""
    names = HEAVY + START_UP if start_up else HEAVY
    return sorted(m for m in modules for h in names if m == h or m.startswith(h + "."))


def both_ways(tmp: Path, *args: str, start_up: bool = True,
              ) -> tuple[tuple[int, str, str], tuple[int, str, str]]:
    """The quick and the click results. Both run at once with the same clock (CREATED counts
    seconds); the daemon's own "Up N seconds" may still tick between them: then again.
    ``start_up=False``: a run that may load ``START_UP`` modules (tcp://, contexts)."""
    for _ in range(5):
        now = time.time()
        started = [_start(tmp, args, True, now), _start(tmp, args, False, now)]
        (quick, quick_modules), (full, full_modules) = (_finish(*s) for s in started)
        loaded = heavy(quick_modules, start_up)
        assert loaded == [], f"quick path loaded {loaded}"
        assert "click" in full_modules
        if quick == full:
            break
    return quick, full


VARIANTS = [
    ["ps"],
    ["ps", "-a"],
    ["ps", "-aq"],
    ["ps", "-a", "--no-trunc"],
    ["ps", "-n", "2"],
    ["ps", "-n2", "-q"],
    ["ps", "--last=1"],
    ["ps", "-l", "--no-trunc"],
    ["ps", "-as"],
    ["ps", "--all", "--size", "--quiet"],
    ["ps", "-a", "-f", "status=exited"],
    ["ps", "-a", "--filter", "label=tier=web"],
    ["ps", "-a", "-f", "name=ok", "-f", "name=three", "-q"],
    ["ps", "-a", "--filter=status=running", "-q", "--no-trunc"],
    ["ps", "-a", "-f", "status=bogus"],
    ["ps", "-a", "-f", "nosuchkey=1"],
    ["container", "ls", "-a"],
    ["container", "list", "-q"],
    ["container", "ps"],
]


@pytest.mark.parametrize("args", VARIANTS, ids=[" ".join(v) for v in VARIANTS])
def test_quick_ps_is_the_click_ps(fleet: Fleet, tmp_path: Path, args: list[str]) -> None:
    quick, full = both_ways(tmp_path, "-H", fleet.daemon.host, *args)
    assert quick == full


def test_ps_on_a_terminal_loads_nothing_heavy(fleet: Fleet, tmp_path: Path) -> None:
    """On a terminal too (no rich): docker's plain table, its header bold."""
    probe = tmp_path / "tty-modules"
    env = {k: v for k, v in os.environ.items() if k not in ("SERVIN_CONTEXT", "NO_COLOR")}
    env.update(QUICK_PROBE=str(probe), SERVIN_CONFIG=str(tmp_path / "config"), TERM="xterm")
    drawn = on_a_pty([sys.executable, "-c", _PROBE, "-H", fleet.daemon.host, "ps", "-a"],
                     env, REPO)
    assert drawn.startswith(b"\x1b[1mCONTAINER ID"), drawn
    assert "runner" in drawn.decode()
    assert heavy(set(probe.read_text().split())) == []


def test_global_options_spelled_every_way(fleet: Fleet, tmp_path: Path) -> None:
    for spelled in (["--host", fleet.daemon.host], [f"--host={fleet.daemon.host}"],
                    [f"-H{fleet.daemon.host}"]):
        quick, full = both_ways(tmp_path, *spelled, "ps", "-aq")
        assert quick == full and quick[0] == 0 and len(quick[1].split()) == 3


def test_host_from_the_environment_and_contexts(fleet: Fleet, tmp_path: Path) -> None:
    (code, out, _), modules = _finish(*_start(tmp_path, ("ps", "-aq"), True, None,
                                              {"SERVIN_HOST": fleet.daemon.host}))
    assert code == 0 and len(out.split()) == 3 and heavy(modules) == []
    create = ("context", "create", "fleet", "--docker", f"host={fleet.daemon.host}")
    assert servin(tmp_path, *create, quick=True)[0][0] == 0
    # (contexts are read with dataclasses and json: START_UP modules are allowed)
    quick, full = both_ways(tmp_path, "--context", "fleet", "ps", "-aq", start_up=False)
    assert quick == full and len(quick[1].split()) == 3
    assert servin(tmp_path, "context", "use", "fleet", quick=True)[0][0] == 0
    quick, full = both_ways(tmp_path, "ps", "-aq", start_up=False)
    assert quick == full and len(quick[1].split()) == 3
    # an unknown context: left to click, which reports it
    quick, modules = servin(tmp_path, "--context", "nosuch", "ps", quick=True)
    assert "servin.cli.main" in modules
    assert quick == servin(tmp_path, "--context", "nosuch", "ps", quick=False)[0]
    assert quick[0] != 0 and quick[2].startswith("Error: ")


@pytest.mark.parametrize("host", ["unix:///nonexistent/servin.sock", "tcp://127.0.0.1:1"])
def test_unreachable_daemon_is_the_same_error(tmp_path: Path, host: str) -> None:
    # tcp:// resolves names with the socket module
    quick, full = both_ways(tmp_path, "-H", host, "ps", start_up=host.startswith("unix:"))
    assert quick == full
    assert quick[0] == 1 and quick[2].startswith("Error: Cannot connect to the Servin daemon")


@pytest.mark.parametrize(
    "args",
    [
        ["ps", "--format", "{{.Names}}"],
        ["ps", "--bogus"],
        ["ps", "-f", "no-equals-sign"],
        ["ps", "-n", "many"],
        ["ps", "extra"],
        ["ps", "--help"],
        ["-D", "ps", "-aq"],
        ["--tls", "ps"],
    ],
)
def test_what_quick_does_not_know_goes_to_click(fleet: Fleet, tmp_path: Path,
                                                args: list[str]) -> None:
    result, modules = servin(tmp_path, "-H", fleet.daemon.host, *args, quick=True)
    assert "servin.cli.main" in modules
    full, _ = servin(tmp_path, "-H", fleet.daemon.host, *args, quick=False)
    assert result == full


def test_servin_quick_0_forces_click(fleet: Fleet, tmp_path: Path) -> None:
    _, modules = servin(tmp_path, "-H", fleet.daemon.host, "ps", quick=False)
    assert "servin.cli.main" in modules


def test_ssh_hosts_go_to_click() -> None:
    assert entry._plan(["-H", "ssh://nobody@127.0.0.1", "ps"]) is None
    assert entry._plan(["-H", "unix:///x", "ps", "-a"]) is not None
    assert entry._plan(["-H", "unix:///x", "images"]) is None
    assert entry._plan(["-H"]) is None and entry._plan([]) is None


def test_flags_parse_as_click_does() -> None:
    spec = FlagSpec(booleans={"-a": "all", "-q": "quiet", "--all": "all"},
                    values={"-n": "last", "--last": "last"})
    parsed = parse_flags(spec, ["-aqn3", "--last", "4", "--last=5", "-n", "6", "--", "-x"])
    assert parsed is not None
    assert parsed.flags == {"all", "quiet"}
    assert parsed.values == [("last", "3"), ("last", "4"), ("last", "5"), ("last", "6")]
    assert parsed.positional == ["-x"]
    assert parse_flags(spec, ["-ab"]) is None
    assert parse_flags(spec, ["--all=1"]) is None
    assert parse_flags(spec, ["-n"]) is None
    stop = FlagSpec(booleans={"-d": "detach"}, values={}, interspersed=False,
                    max_positional_before_stop=1)
    parsed = parse_flags(stop, ["-d", "c1", "ls", "-d", "-l"])
    assert parsed is not None and parsed.positional == ["c1", "ls", "-d", "-l"]
