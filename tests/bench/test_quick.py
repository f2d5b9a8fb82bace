"""``python -m bench --quick`` runs every scenario end to end and each one yields a number.

Never asserts a time: the machine is shared; this only keeps the suite from rotting.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench.scenarios import SCENARIOS
from tests.daemon import REPO

# The only scenario allowed to report a reason instead of a number, and only this one:
# a daemon without registry pull answers that it does not support it.
PULL_UNAVAILABLE = "servin pull not available"


def test_quick_run_measures_every_scenario(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert proc.returncode == 0, f"bench failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    data = json.loads((out / "results.json").read_text())
    assert data["quick"] is True
    assert set(data["scenarios"]) == set(SCENARIOS)
    for name, scenario in data["scenarios"].items():
        assert not any(n.startswith("FAILED") for n in scenario["notes"]), (name, scenario)
        numbers = [
            row["servin"]["median"]
            for row in scenario["rows"]
            if row["servin"] and row["servin"]["samples"]
        ]
        if name == "pull" and not numbers:
            assert any(n.startswith(PULL_UNAVAILABLE) for n in scenario["notes"]), scenario
            continue
        assert numbers, f"scenario {name} measured nothing: {scenario}"
        assert all(isinstance(n, float | int) and n >= 0 for n in numbers), (name, numbers)
    page = (out / "benchmarks.md").read_text()
    assert "| Scenario | Metric |" in page and "## Machine" in page
