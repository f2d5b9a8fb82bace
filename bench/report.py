"""The results as JSON and as the markdown table of docs/benchmarks.md."""

from __future__ import annotations

import datetime
import json
import os
import platform
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from bench.model import Row, ScenarioResult

# Hand-written text below this line in docs/benchmarks.md survives a regeneration.
KEEP_MARKER = "<!-- Everything below this line is kept when bench rewrites this file. -->"
PEER_VERSIONS = {
    "dockerd": ["dockerd", "--version"],
    "containerd": ["containerd", "--version"],
    "podman": ["podman", "--version"],
    "conmon": ["conmon", "--version"],
    "crun": ["crun", "--version"],
    "runc": ["runc", "--version"],
    "skopeo": ["skopeo", "--version"],
    "docker-registry": ["docker-registry", "--version"],
}


def _first(argv: list[str]) -> str:
    if shutil.which(argv[0]) is None:
        return "not installed"
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    return next((ln.strip() for ln in proc.stdout.splitlines() if ln.strip()), "?")


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem_kb = next(
        int(ln.split()[1]) for ln in Path("/proc/meminfo").read_text().splitlines()
        if ln.startswith("MemTotal:")
    )  # fmt: skip
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=Path(__file__).parent).stdout.strip()  # fmt: skip
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "servin_commit": commit or "unknown",
        "load_average": os.getloadavg()[0],
        "peers": {name: _first(argv) for name, argv in PEER_VERSIONS.items()},
    }


def load(path: Path) -> dict[str, Any]:
    """A previous results.json (``{}`` when there is none)."""
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def merge(previous: dict[str, Any], quick: bool, results: list[ScenarioResult]) -> dict[str, Any]:
    """Replace this run's scenarios in ``previous`` (a run of a subset keeps the others)."""
    scenarios = dict(previous.get("scenarios", {})) if previous.get("quick") == quick else {}
    for r in results:
        scenarios[r.name] = r.to_json()
    return {"quick": quick, "machine": machine(), "scenarios": scenarios}


def _num(value: float) -> str:
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _median(m: Any) -> str:
    return f"{_num(m.median)} {m.unit}" if m and m.samples else "-"


def _spread(m: Any) -> str:
    if not m or not m.samples:
        return "-"
    return f"{_num(m.low)}-{_num(m.high)} (n={len(m.samples)})"


_TARGET = re.compile(r"^(<=|<)\s*([\d.]+)\s*(x|ms|MB|%)$")


def target_met(row: Row) -> str:
    """"yes"/"no" when the row's target can be checked, else ""."""
    match = _TARGET.match(row.target.strip())
    if not match or row.servin is None or not row.servin.samples:
        return ""
    op, bound, unit = match.group(1), float(match.group(2)), match.group(3)
    if unit == "x":
        value = row.ratio
        if value is None:
            return ""
    else:
        value = row.servin.median
    ok = value <= bound if op == "<=" else value < bound
    return "yes" if ok else "**no**"


def table(order: list[str], scenarios: dict[str, ScenarioResult]) -> list[str]:
    lines = [
        "| Scenario | Metric | Peer | Servin median | Peer median | Ratio | Servin min-max "
        "| Peer min-max | Target | Met |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for index, name in enumerate(order, 1):
        if name not in scenarios:
            continue
        res = scenarios[name]
        for row in res.rows:
            ratio = f"{row.ratio:.2f}x" if row.ratio is not None else "-"
            servin = _median(row.servin) if row.servin else (row.note or "-")
            lines.append(
                f"| {index}. {res.title} | {row.metric} | {row.peer or '-'} | {servin} "
                f"| {_median(row.peer_measure)} | {ratio} | {_spread(row.servin)} "
                f"| {_spread(row.peer_measure)} | {row.target or '-'} | {target_met(row)} |"
            )
    return lines


def markdown(data: dict[str, Any], order: list[str], keep: str = "") -> str:
    """The whole benchmarks page from merged results."""
    m = data["machine"]
    scenarios = {k: ScenarioResult.from_json(v) for k, v in data["scenarios"].items()}
    quick = " (--quick: tiny sizes, no peers; not comparable)" if data["quick"] else ""
    out = [
        "# Benchmarks",
        "",
        "Servin measured beside the engines users would pick instead, in one run on one "
        f"machine{quick}. Each scenario alternates Servin and its peers round by round, so "
        "the shared machine's noise falls on all of them; the table gives medians, the "
        "min-max spread and the ratio Servin/peer (below 1: Servin is faster or smaller).",
        "",
        "## Reproduce",
        "",
        "As root on Debian 12, after `scripts/bootstrap`:",
        "",
        "```",
        "python -m bench                      # every scenario, with peers (installs them)",
        "python -m bench start pull --out DIR # some scenarios; results.json and a copy here",
        "python -m bench --quick --out DIR    # tiny sizes, no peers (what CI runs)",
        "```",
        "",
        "`bench` starts its own Servin daemon and its own peers in temp dirs: dockerd on a "
        "private socket and data root, podman with private --root/--runroot, docker-registry "
        "on 127.0.0.1, runc/crun on a bundle made with `runc spec` around the bundled busybox "
        "rootfs (imported into docker and podman with `import`). Containers run with "
        "`--network none` on every engine. A full run took 16 minutes on this machine (its "
        "peers already installed), a quarter of it the memory scenario; `--report-only` "
        "rewrites this page from OUT/results.json.",
        "",
        "## Machine",
        "",
        f"- CPU: {m['cpu']}, {m['cores']} cores; memory {m['memory_gb']} GB",
        f"- kernel {m['kernel']}, Python {m['python']}, Servin commit {m['servin_commit']}",
        f"- date {m['date']}; load average at the end {m['load_average']:.2f} (shared machine)",
        "- peers: " + "; ".join(f"{k}: {v}" for k, v in m["peers"].items()),
        "",
        "## Results",
        "",
        *table(order, scenarios),
        "",
        "## Notes by scenario",
        "",
    ]
    for index, name in enumerate(order, 1):
        if name in scenarios and scenarios[name].notes:
            res = scenarios[name]
            out.append(f"{index}. **{res.title}** ({res.seconds:.0f} s)")
            out.extend(f"   - {note}" for note in res.notes)
    out += ["", KEEP_MARKER, keep.rstrip("\n"), ""]
    return "\n".join(out).rstrip("\n") + "\n"


def kept_text(path: Path) -> str:
    """The hand-written part of an existing page (after KEEP_MARKER)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return ""
    return text.split(KEEP_MARKER, 1)[1].lstrip("\n") if KEEP_MARKER in text else ""
