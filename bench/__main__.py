"""``python -m bench [SCENARIO...] [--quick] [--out DIR]``: run the benchmarks, write the table."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from pathlib import Path

from bench.env import Environment
from bench.model import ScenarioResult
from bench.report import kept_text, load, markdown, merge
from bench.scenarios import SCENARIOS

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def parse(argv: list[str] | None) -> argparse.Namespace:
    names = list(SCENARIOS)
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark Servin beside crun, runc, podman, docker and skopeo.",
    )
    listing = ", ".join(f"{i}={n}" for i, n in enumerate(names, 1))
    parser.add_argument(
        "scenarios", nargs="*", metavar="SCENARIO", help=f"by name or number (all): {listing}"
    )
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes, no peers (fast; not comparable numbers)"
    )
    parser.add_argument(
        "--out", type=Path, default=Path("bench/out"),
        help="where results.json and benchmarks.md go (default: bench/out)",
    )  # fmt: skip
    parser.add_argument(
        "--report-only", action="store_true", help="rewrite the pages from OUT/results.json"
    )
    parser.add_argument(
        "--no-doc", action="store_true", help="do not rewrite docs/benchmarks.md (full runs do)"
    )
    args = parser.parse_args(argv)
    chosen = []
    for item in args.scenarios or names:
        name = names[int(item) - 1] if item.isdigit() and 0 < int(item) <= len(names) else item
        if name not in SCENARIOS:
            parser.error(f"unknown scenario {item!r}: choose from {', '.join(names)}")
        chosen.append(name)
    args.scenarios = chosen
    return args


def save(out: Path, quick: bool, result: ScenarioResult) -> None:
    """Merge one scenario's result into OUT/results.json."""
    data = merge(load(out / "results.json"), quick, [result])
    (out / "results.json").write_text(json.dumps(data, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if os.geteuid() != 0:
        print("bench: run as root (the engines run real containers)", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    failed = False
    if not args.report_only:
        failed = run_scenarios(args)
    data = load(args.out / "results.json")
    if not data:
        print(f"bench: no results in {args.out}", file=sys.stderr)
        return 2
    quick = bool(data["quick"])
    order = list(SCENARIOS)
    page_path = args.out / "benchmarks.md"
    page_path.write_text(markdown(data, order, kept_text(DOC)))
    if not quick and not args.no_doc:
        DOC.write_text(markdown(data, order, kept_text(DOC)))
    print(page_path.read_text())
    return 1 if failed else 0


def run_scenarios(args: argparse.Namespace) -> bool:
    """Run the chosen scenarios, saving each result; True if any failed."""
    env = Environment(args.quick)
    failed = False
    try:
        for name in args.scenarios:
            module = SCENARIOS[name]
            result = ScenarioResult(name, module.TITLE, args.quick)
            print(f"bench: {name}...", flush=True)
            start = time.monotonic()
            try:
                module.run(env, result)
            except Exception as exc:  # one scenario failing must not lose the others
                failed = True
                result.notes.append(f"FAILED: {type(exc).__name__}: {exc}")
                traceback.print_exc()
            result.seconds = time.monotonic() - start
            print(f"bench: {name} done in {result.seconds:.0f} s", flush=True)
            save(args.out, args.quick, result)  # a crash later loses nothing measured so far
    finally:
        env.close()
    return failed


if __name__ == "__main__":
    sys.exit(main())
