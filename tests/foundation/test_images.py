"""`image import`, `ls`, `inspect`, `rm` against a real daemon, and their failure modes."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import zstandard

from tests.daemon import DaemonProcess


def _blobs(d: DaemonProcess) -> set[str]:
    return {p.name for p in (d.root / "content" / "blobs" / "sha256").iterdir()}


def _ingest(d: DaemonProcess) -> list[Path]:
    return list((d.root / "content" / "ingest").iterdir())


def test_import_list_inspect_remove(daemon: DaemonProcess, busybox_tar: Path) -> None:
    out = daemon.cli(
        "import",
        "-c",
        'CMD ["sh"]',
        "-c",
        "ENV A=1",
        "-m",
        "bundled",
        str(busybox_tar),
        "busybox",
        check=True,
    )
    image_id = out.stdout.strip()
    assert image_id.startswith("sha256:") and len(image_id) == 71

    table = daemon.cli("images", check=True).stdout.splitlines()
    assert table[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert table[1].split()[:3] == ["busybox", "latest", image_id[7:19]]
    assert "\x1b[" not in "".join(table)  # piped output has no escape codes

    rows = [
        json.loads(line)
        for line in daemon.cli("image", "ls", "--format", "json", check=True).stdout.splitlines()
    ]
    assert len(rows) == 1 and rows[0]["Repository"] == "busybox" and rows[0]["Tag"] == "latest"
    assert daemon.cli("images", "-q", check=True).stdout.split() == [image_id[7:19]]
    assert (
        daemon.cli("images", "--format", "{{.Repository}}:{{.Tag}}", check=True).stdout.strip()
        == "busybox:latest"
    )

    [detail] = json.loads(daemon.cli("image", "inspect", "busybox", check=True).stdout)
    assert detail["Id"] == image_id
    assert detail["RepoTags"] == ["busybox:latest"]
    assert detail["Config"]["Cmd"] == ["sh"]
    assert detail["Config"]["Env"] == ["A=1"]
    assert detail["Comment"] == "bundled"
    assert detail["Os"] == "linux"
    assert len(detail["RootFS"]["Layers"]) == 1
    # The manifest, config and layer blobs are all in the content store.
    assert detail["Descriptor"]["digest"][7:] in _blobs(daemon)
    assert image_id[7:] in _blobs(daemon)
    assert (
        daemon.cli("image", "inspect", "-f", "{{.Id}}", image_id[7:19], check=True).stdout.strip()
        == image_id
    )

    removed = daemon.cli("rmi", "busybox", check=True).stdout
    assert "Untagged: busybox:latest" in removed and f"Deleted: {image_id}" in removed
    assert daemon.cli("images", "-q", check=True).stdout.strip() == ""
    assert _blobs(daemon) == set()


def test_import_compressed_inputs_and_stdin(
    daemon: DaemonProcess, busybox_tar: Path, tmp_path: Path
) -> None:
    raw = busybox_tar.read_bytes()
    gz = tmp_path / "rootfs.tar.gz"
    gz.write_bytes(gzip.compress(raw))
    zst = tmp_path / "rootfs.tar.zst"
    zst.write_bytes(zstandard.ZstdCompressor().compress(raw))
    ids = {}
    for name, path in (("plain", busybox_tar), ("gz", gz), ("zst", zst)):
        ids[name] = daemon.cli("import", str(path), f"bb:{name}", check=True).stdout.strip()
    ids["stdin"] = daemon.cli("import", "-", "bb:stdin", input=raw, check=True).stdout.strip()
    layers = {}
    for name in ids:
        [d] = json.loads(daemon.cli("image", "inspect", f"bb:{name}", check=True).stdout)
        layers[name] = d["RootFS"]["Layers"][0]
    # The same tar gives the same diff ID whatever the compression.
    assert len(set(layers.values())) == 1


def test_tag_then_rm_by_name_keeps_image(daemon: DaemonProcess, busybox_image: str) -> None:
    daemon.cli("tag", "busybox", "localhost:5000/team/bb:1", check=True)
    names = daemon.cli("images", "--format", "{{.Repository}}:{{.Tag}}", check=True).stdout.split()
    assert sorted(names) == ["busybox:latest", "localhost:5000/team/bb:1"]
    out = daemon.cli("rmi", "localhost:5000/team/bb:1", check=True).stdout
    assert out.strip() == "Untagged: localhost:5000/team/bb:1"
    assert daemon.cli("images", "-q", check=True).stdout.strip() == busybox_image[7:19]
    # By ID, an image known in two repositories needs -f.
    daemon.cli("tag", "busybox", "other", check=True)
    refused = daemon.cli("rmi", busybox_image[7:19])
    assert refused.returncode == 1 and "must be forced" in refused.stderr
    daemon.cli("rmi", "-f", busybox_image[7:19], check=True)
    assert daemon.cli("images", "-q", check=True).stdout.strip() == ""


def test_corrupted_blob_is_refused(daemon: DaemonProcess, busybox_image: str) -> None:
    config_blob = daemon.root / "content" / "blobs" / "sha256" / busybox_image[7:]
    data = bytearray(config_blob.read_bytes())
    data[10] ^= 0x01
    config_blob.write_bytes(bytes(data))
    out = daemon.cli("image", "inspect", "busybox")
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == [
        f"Error: blob {busybox_image} is corrupted on disk "
        f"(its content hashes to {out.stderr.split('hashes to ')[1].split(')')[0]})"
    ]


def _assert_nothing_left(d: DaemonProcess) -> None:
    assert d.cli("images", "-q", "-a", check=True).stdout.strip() == ""
    assert _blobs(d) == set()
    assert _ingest(d) == []


def test_bad_input_leaves_nothing(daemon: DaemonProcess, busybox_tar: Path, tmp_path: Path) -> None:
    cases = []
    cases.append(
        (
            daemon.cli("import", str(tmp_path / "missing.tar"), "x"),
            f"Error: open {tmp_path / 'missing.tar'}: no such file or directory",
        )
    )
    cases.append(
        (
            daemon.cli("import", str(busybox_tar), "Foo:bar:baz"),
            "Error: invalid reference format: 'Foo:bar:baz'",
        )
    )
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"this is not a tar archive at all\n" * 100)
    cases.append((daemon.cli("import", str(junk), "junk"), "Error: input is not a valid tar"))
    truncated = tmp_path / "trunc.tar.gz"
    truncated.write_bytes(gzip.compress(busybox_tar.read_bytes())[:50_000])
    cases.append((daemon.cli("import", str(truncated), "trunc"), "Error: input is not a valid"))
    empty = tmp_path / "empty.tar"
    empty.write_bytes(b"")
    cases.append((daemon.cli("import", str(empty), "empty"), "Error: input is empty"))
    cases.append(
        (
            daemon.cli("import", "-c", "RUN rm -rf /", str(busybox_tar), "x"),
            "Error: RUN is not a valid change command",
        )
    )
    cases.append((daemon.cli("image", "inspect", "nope"), "Error: No such image: nope"))
    cases.append((daemon.cli("rmi", "nope"), "Error: No such image: nope"))
    for result, expected in cases:
        assert result.returncode == 1, (expected, result.stdout)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith(expected), (lines[0], expected)
    _assert_nothing_left(daemon)


def test_path_traversal_tarball_refused(daemon: DaemonProcess, tmp_path: Path) -> None:
    import io
    import tarfile

    evil = tmp_path / "evil.tar"
    with tarfile.open(evil, "w") as tar:
        info = tarfile.TarInfo("../../etc/evil")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"bad"))
    out = daemon.cli("import", str(evil), "evil")
    assert out.returncode == 1
    assert "points outside the root filesystem" in out.stderr
    _assert_nothing_left(daemon)


def test_import_survives_restart(daemon_factory: type[DaemonProcess], busybox_tar: Path) -> None:
    d = daemon_factory().start()
    image_id = d.cli("import", str(busybox_tar), "persist:1", check=True).stdout.strip()
    d.stop()
    d.start()
    assert (
        d.cli("image", "inspect", "-f", "{{.Id}}", "persist:1", check=True).stdout.strip()
        == image_id
    )
