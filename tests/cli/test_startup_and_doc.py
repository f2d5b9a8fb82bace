"""What `servin --help` and `servin ps` import (no timing: the module lists), and the doc table."""

from __future__ import annotations

import subprocess
import sys

from tests.cli.conftest import Fleet
from tests.daemon import REPO

HEAVY_FOR_PS = ("grpc", "rich", "textual", "servin.cli.gotemplate", "servin.engine", "ssl",
                "servin.client.contexts", "servin.cli.commands.images", "pathlib",
                "servin.api.servin.v1.images_pb2")
HEAVY_FOR_HELP = (*HEAVY_FOR_PS, "google.protobuf", "h2", "servin.api", "servin.cli.commands")


_PROBE = """
import atexit, sys
atexit.register(lambda: sys.stderr.write("MODULES " + " ".join(sorted(sys.modules)) + "\\n"))
sys.argv = ["servin", *sys.argv[1:]]
from servin.cli.main import main
main()
"""


def imported(*args: str) -> set[str]:
    """The modules ``servin ARGS`` has loaded when it exits (output piped)."""
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, *args], capture_output=True, text=True, cwd=REPO
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    line = next(x for x in proc.stderr.splitlines() if x.startswith("MODULES "))
    return set(line.split()[1:])


def _loaded(modules: set[str], heavy: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules for h in heavy if m == h or m.startswith(h + "."))


def test_help_imports_no_transport_or_commands() -> None:
    modules = imported("--help")
    assert "click" in modules
    assert _loaded(modules, HEAVY_FOR_HELP) == []


def test_ps_imports_only_what_it_needs(fleet: Fleet) -> None:
    modules = imported("-H", fleet.daemon.host, "ps")
    assert {"servin.client.h2channel", "servin.cli.commands.containers"} <= modules
    assert _loaded(modules, HEAVY_FOR_PS) == []
    # A template costs the parser; the default table does not.
    assert "servin.cli.gotemplate" in imported("-H", fleet.daemon.host, "ps", "--format",
                                               "{{.Names}}")


def test_doc_table_follows_the_commands() -> None:
    from servin.devtools import clidoc

    status, have, missing, _ = clidoc.compare("ps")
    assert status == "yes" and "-a/--all" in have and missing == []
    status, have, missing, _ = clidoc.compare("stop")
    assert "-t/--time/--timeout" in have
    assert clidoc.compare("build")[0] == "partial"
    assert clidoc.compare("search")[0] == "yes"
    status, _, missing, _ = clidoc.compare("logs")
    assert status == "yes" and missing == []
    status, have, missing, _ = clidoc.compare("create")
    assert status == "partial" and "-a/--attach" in have and "--gpus" in missing
    text = clidoc.render()
    assert "| `container ls` (`container list`, `container ps`) | yes |" in text
    assert "| `context create` | yes |" in text
