"""Generate ``servin/api`` from ``proto/`` with grpc_tools, rewriting imports into the package.

protoc names generated modules after the proto file path (``servin/v1/x.proto`` imports
``from servin.v1 import x_pb2``); the generated tree lives under ``servin/api``, so those imports
are rewritten to ``from servin.api.servin.v1 import ...``. The same holds for every top-level
directory of ``proto/``: ``cri/runtime/v1/api.proto`` (the Kubernetes CRI, package
``runtime.v1``) becomes ``servin.api.cri.runtime.v1.api_pb2``. The output is deterministic, so a
test can regenerate into a temp dir and compare it with the committed tree.

The ``.pyi`` stubs beside each ``*_pb2`` module come from mypy-protobuf's ``protoc-gen-mypy``
(a pinned dev dependency: its output is part of the committed tree), which types fields, enums
and the literal names ``HasField``/``WhichOneof`` take. The ``*_pb2_grpc`` modules get no stubs:
mypy-protobuf's make every servicer abstract over all of its service's RPCs, which doors that
implement a service in stages (the CRI) cannot satisfy.
"""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROTO_DIR = ROOT / "proto"
API_PACKAGE = "servin.api"



def _import_re() -> re.Pattern[str]:
    """Matches protoc's imports of modules generated from proto/'s own top-level dirs."""
    tops = sorted(d.name for d in PROTO_DIR.iterdir() if d.is_dir())
    return re.compile(rf"^from ((?:{'|'.join(map(re.escape, tops))})(?:\.\w+)*) import (\w+_pb2)",
                      re.M)


def proto_files() -> list[Path]:
    """Every .proto file under proto/, sorted."""
    return sorted(PROTO_DIR.rglob("*.proto"))


def mypy_plugin() -> Path:
    """mypy-protobuf's protoc plugin, installed beside this Python (scripts/bootstrap)."""
    plugin = Path(sys.executable).parent / "protoc-gen-mypy"
    if not plugin.exists():
        raise SystemExit(f"{plugin} is missing: run scripts/bootstrap (mypy-protobuf, a dev "
                         "dependency, writes the .pyi stubs)")
    return plugin


def generate(out_dir: Path) -> None:
    """Write the generated Python modules (and .pyi stubs) for every proto into ``out_dir``."""
    import grpc_tools
    from grpc_tools import protoc

    include = Path(grpc_tools.__file__).parent / "_proto"
    with tempfile.TemporaryDirectory() as tmp:
        args = [
            "protoc",
            f"-I{PROTO_DIR}",
            f"-I{include}",
            f"--plugin=protoc-gen-mypy={mypy_plugin()}",
            f"--python_out={tmp}",
            f"--mypy_out={tmp}",
            "--mypy_opt=quiet",
            f"--grpc_python_out={tmp}",
            *[str(p.relative_to(PROTO_DIR)) for p in proto_files()],
        ]
        if protoc.main(args) != 0:
            raise SystemExit("protoc failed")
        if out_dir.exists():
            for child in out_dir.iterdir():
                if child.is_dir():
                    shutil.rmtree(child)
                elif child.name != "__init__.py":
                    child.unlink()
        out_dir.mkdir(parents=True, exist_ok=True)
        import_re = _import_re()
        for src in sorted(Path(tmp).rglob("*")):
            if not src.is_file():
                continue
            rel = src.relative_to(tmp)
            dst = out_dir / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            text = import_re.sub(
                lambda m: f"from {API_PACKAGE}.{m.group(1)} import {m.group(2)}", src.read_text()
            )
            dst.write_text(text)
        pkg_dirs = {out_dir}
        for module in out_dir.rglob("*.py"):
            pkg_dirs.update(d for d in module.parents if d.is_relative_to(out_dir))
        for pkg_dir in sorted(pkg_dirs):
            init = pkg_dir / "__init__.py"
            if not init.exists():
                init.write_text('"""Generated from proto/ by scripts/gen-proto; do not edit."""\n')


def main(argv: list[str]) -> int:
    """Entry point: ``python -m servin.devtools.genproto [OUT_DIR]``."""
    out = Path(argv[1]) if len(argv) > 1 else ROOT / "servin" / "api"
    generate(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
