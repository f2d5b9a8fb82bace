"""``rmi`` (untag vs delete, images in use), ``images`` filters, ``image prune``, and the
garbage collection behind them (at removal and at daemon start)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from servin.engine.store.content import ContentStore
from servin.engine.store.snapshots import Snapshotter
from tests.daemon import DaemonProcess
from tests.images.helpers import EMPTY_STORE, sha256, store_state
from tests.snapshots.helpers import file, make_tar


def _ids(d: DaemonProcess, *args: str) -> list[str]:
    return d.cli("images", "-q", "--no-trunc", *args, check=True).stdout.split()


def test_rmi_refuses_an_image_in_use_unless_forced(
    daemon: DaemonProcess, busybox_image: str
) -> None:
    cid = daemon.cli("create", "busybox", "true", check=True).stdout.strip()
    held = store_state(daemon)
    refused = daemon.cli("rmi", "busybox")
    assert refused.returncode != 0
    assert "must force" in refused.stderr and cid[:12] in refused.stderr
    assert store_state(daemon) == held
    assert daemon.cli("rmi", busybox_image[7:19]).returncode != 0  # by ID too

    forced = daemon.cli("rmi", "-f", "busybox", check=True).stdout
    assert forced.strip() == "Untagged: busybox:latest"  # the container keeps the image
    assert _ids(daemon, "--filter", "dangling=true") == [busybox_image]
    # A dangling image a container uses is not pruned, and its layers stay.
    pruned = daemon.cli("image", "prune", "-f", check=True).stdout
    assert pruned.strip() == "Total reclaimed space: 0B"
    assert store_state(daemon)["layers"] == held["layers"]
    daemon.cli("start", "-a", cid, check=True)

    daemon.cli("rm", cid, check=True)
    pruned = daemon.cli("image", "prune", "-f", check=True).stdout.splitlines()
    assert pruned[:2] == ["Deleted Images:", f"deleted: {busybox_image}"]
    assert pruned[-1].startswith("Total reclaimed space: ") and pruned[-1] != (
        "Total reclaimed space: 0B")
    assert store_state(daemon) == EMPTY_STORE


def test_rmi_untag_versus_delete(daemon: DaemonProcess, busybox_image: str) -> None:
    daemon.cli("tag", "busybox", "one:1", check=True)
    daemon.cli("tag", "busybox", "two:2", check=True)
    assert daemon.cli("rmi", "one:1", check=True).stdout.strip() == "Untagged: one:1"
    assert _ids(daemon) == [busybox_image]
    by_id = daemon.cli("rmi", busybox_image[7:19])
    assert by_id.returncode != 0 and "referenced in multiple repositories" in by_id.stderr
    out = daemon.cli("rmi", "-f", busybox_image[7:19], check=True).stdout.splitlines()
    assert sorted(out[:-1]) == ["Untagged: busybox:latest", "Untagged: two:2"]
    assert out[-1] == f"Deleted: {busybox_image}"
    assert store_state(daemon) == EMPTY_STORE


def test_images_filters_and_digests(daemon: DaemonProcess, busybox_tar: Path) -> None:
    first = daemon.cli("import", str(busybox_tar), "busybox", check=True).stdout.strip()
    second = daemon.cli("import", "-c", "LABEL team=a tier=web", str(busybox_tar),
                        "example.com/web:1", check=True).stdout.strip()
    third = daemon.cli("import", "-c", "LABEL team=b", str(busybox_tar), check=True).stdout.strip()
    assert _ids(daemon, "--filter", "dangling=true") == [third]
    assert sorted(_ids(daemon, "--filter", "dangling=false")) == sorted([first, second])
    assert _ids(daemon, "--filter", "reference=busy*") == [first]
    assert _ids(daemon, "--filter", "reference=example.com/*") == [second]
    assert sorted(_ids(daemon, "--filter", "label=team")) == sorted([second, third])
    assert _ids(daemon, "--filter", "label=team=a") == [second]
    assert _ids(daemon, "--filter", "label=team=a", "--filter", "label=tier=web") == [second]
    assert _ids(daemon, "--filter", f"before={second[7:19]}") == [first]
    assert _ids(daemon, "--filter", "since=busybox", "--filter", "dangling=false") == [second]
    bad = daemon.cli("images", "--filter", "colour=red")
    assert bad.returncode != 0 and "invalid filter 'colour'" in bad.stderr
    table = daemon.cli("images", "--digests", check=True).stdout.splitlines()
    assert table[0].split()[:3] == ["REPOSITORY", "TAG", "DIGEST"]


def test_prune_all_with_filters(daemon: DaemonProcess, busybox_tar: Path) -> None:
    keep = daemon.cli("import", "-c", "LABEL keep=yes", str(busybox_tar), "keep:1",
                      check=True).stdout.strip()
    other = daemon.cli("import", "-c", "LABEL keep=no", str(busybox_tar), "other:1",
                       check=True).stdout.strip()
    # Without -f the answer is asked for; "no" removes nothing.
    asked = daemon.cli("image", "prune", "-a", input=b"n\n", check=True).stdout
    assert "WARNING! This will remove all images without at least one container" in asked
    assert sorted(_ids(daemon)) == sorted([keep, other])
    # until=1h: both images are newer than an hour ago, so nothing goes.
    out = daemon.cli("image", "prune", "-a", "-f", "--filter", "until=1h", check=True).stdout
    assert out.strip() == "Total reclaimed space: 0B"
    out = daemon.cli("image", "prune", "-a", "-f", "--filter", "label!=keep=yes",
                     check=True).stdout.splitlines()
    assert out[:3] == ["Deleted Images:", "untagged: other:1", f"deleted: {other}"]
    assert _ids(daemon) == [keep]
    # Both images shared one layer blob: it stays for the image that is left.
    assert daemon.cli("run", "--rm", "keep:1", "true").returncode == 0
    out = daemon.cli("image", "prune", "-a", "-f", "--filter", "until=2000-01-01T00:00:00Z",
                     check=True).stdout
    assert out.strip() == "Total reclaimed space: 0B"
    bad = daemon.cli("image", "prune", "-f", "--filter", "until=soon")
    assert bad.returncode != 0 and "invalid until filter" in bad.stderr
    daemon.cli("image", "prune", "-a", "-f", check=True)
    assert store_state(daemon) == EMPTY_STORE


def test_daemon_start_collects_garbage(
    daemon_factory: type[DaemonProcess], busybox_tar: Path
) -> None:
    d = daemon_factory().start()
    image = d.cli("import", "-c", 'CMD ["sh"]', str(busybox_tar), "busybox",
                  check=True).stdout.strip()
    kept = store_state(d)
    d.stop()
    # What a crash between writing and recording could leave: a blob, an unpacked layer,
    # a container snapshot without a container.
    content = ContentStore(d.root / "content")
    layer = make_tar([file("orphan", "x")])
    blob = content.write_bytes(layer)
    snaps = Snapshotter(d.root / "snapshots", driver="copy")
    chain = snaps.ensure_layers(content, [(blob, sha256(layer))])
    snaps.prepare("orphan-snapshot", chain)
    stray = content.write_bytes(json.dumps({"stray": True}).encode())
    assert os.path.exists(content.blob_path(stray))

    d.start()
    assert store_state(d) == kept
    assert not (d.root / "snapshots/containers/orphan-snapshot").exists()
    assert "collected unreferenced blobs and layers at start" in d.log()
    assert d.cli("run", "--rm", image[7:19], "true").returncode == 0
