"""Hostile layers are refused by ``load`` (both formats) and ``import``, leaving no trace.

Each layer tries to write outside its own directory: ``..``, an absolute name, a symlink
(relative or absolute) planted and then written through, a hard link to a file outside.
After each refusal the sentinel directory outside the store is byte-for-byte unchanged and
the store holds nothing of the attempt: no image, blob, unpacked layer or temp file, even
when a benign layer before the hostile one had already been unpacked.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon import DaemonProcess, short_tmpdir
from tests.images.helpers import EMPTY_STORE, docker_archive, oci_archive, store_state, tree
from tests.snapshots.helpers import directory, file, hardlink, make_tar, symlink


@pytest.fixture(scope="module")
def daemon_m() -> Iterator[DaemonProcess]:
    d = DaemonProcess(short_tmpdir()).start()
    try:
        yield d
    finally:
        d.cleanup()


@pytest.fixture(scope="module")
def sentinel() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="sv-sentinel-", dir="/tmp"))
    (path / "victim").write_text("original")
    (path / "sub").mkdir()
    try:
        yield path
    finally:
        shutil.rmtree(path)


def _cases(sentinel: Path) -> dict[str, tuple[bytes, str]]:
    """name -> (layer tar, the entry the error must name)."""
    up = "../" * 12
    return {
        "dotdot": (make_tar([file(f"{up}{sentinel}/escape", "x")]), f"{up}{sentinel}/escape"),
        "absolute-name": (make_tar([file(f"{sentinel}/victim", "pwned")]), f"{sentinel}/victim"),
        "symlink-escape-then-write": (
            make_tar([symlink("evil", f"{up}{sentinel}"), file("evil/victim", "pwned")]),
            "evil/victim",
        ),
        "absolute-symlink-then-write": (
            make_tar([directory("etc"), symlink("etc/evil", str(sentinel)),
                      file("etc/evil/sub/pwned", "pwned")]),
            "etc/evil/sub/pwned",
        ),
        "hardlink-outside": (
            make_tar([hardlink("stolen", f"{sentinel}/victim")]), "stolen"),
        "hardlink-dotdot": (
            make_tar([hardlink("stolen", f"{up}{sentinel}/victim")]), "stolen"),
    }


CASES = list(_cases(Path("/x")))
BENIGN = make_tar([directory("etc"), file("etc/motd", "hello")])


def _check_refused(d: DaemonProcess, result: object, culprit: str, sentinel: Path,
                   before: dict[str, bytes | None]) -> None:
    assert result.returncode != 0, result.stdout  # type: ignore[attr-defined]
    err = result.stderr.strip()  # type: ignore[attr-defined]
    assert culprit in err, err
    assert len(err.splitlines()) == 1, err
    assert tree(sentinel) == before
    assert store_state(d) == EMPTY_STORE
    assert not [p for p in d.base.rglob("*") if p.name in ("escape", "pwned", "stolen")]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("fmt", ["docker-archive", "oci-archive"])
def test_load_refuses_hostile_layer(
    daemon_m: DaemonProcess, sentinel: Path, tmp_path: Path, case: str, fmt: str
) -> None:
    layer, culprit = _cases(sentinel)[case]
    layers = [BENIGN, layer]  # the benign layer is unpacked first and must go again
    data = (docker_archive(layers, ["hostile:1"]) if fmt == "docker-archive"
            else oci_archive(layers, "hostile:1"))
    archive = tmp_path / "hostile.tar"
    archive.write_bytes(data)
    before = tree(sentinel)
    result = daemon_m.cli("load", "-i", str(archive))
    _check_refused(daemon_m, result, culprit, sentinel, before)


@pytest.mark.parametrize("case", CASES)
def test_import_refuses_hostile_rootfs(
    daemon_m: DaemonProcess, sentinel: Path, tmp_path: Path, case: str
) -> None:
    layer, culprit = _cases(sentinel)[case]
    rootfs = tmp_path / "rootfs.tar"
    rootfs.write_bytes(layer)
    before = tree(sentinel)
    result = daemon_m.cli("import", str(rootfs), "hostile:1")
    _check_refused(daemon_m, result, culprit, sentinel, before)


def test_a_benign_archive_still_loads_after_the_refusals(
    daemon_m: DaemonProcess, tmp_path: Path
) -> None:
    """The same daemon (and its store) is healthy after every refusal above."""
    archive = tmp_path / "ok.tar"
    archive.write_bytes(docker_archive([BENIGN], ["benign:1"]))
    out = daemon_m.cli("load", "-q", "-i", str(archive), check=True).stdout
    assert out.strip() == "Loaded image: benign:1"
    daemon_m.cli("rmi", "benign:1", check=True)
    assert store_state(daemon_m) == EMPTY_STORE
