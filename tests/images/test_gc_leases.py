"""The collector and leases, on stores in a temp dir (no daemon): what a lease holds stays,
what nothing holds goes, and a collector running flat out never takes what an operation is
about to record."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

from servin.engine.images import gc, mediatypes
from servin.engine.images.importer import oci_manifest
from servin.engine.images.store import ImageRecord, ImageStore
from servin.engine.store.content import ContentStore
from servin.engine.store.metadata import MetadataStore
from servin.engine.store.snapshots import Snapshotter
from servin.engine.store.snapshots.layers import chain_id
from tests.images.helpers import sha256
from tests.snapshots.helpers import file, make_tar


@dataclass
class Stores:
    images: ImageStore
    snaps: Snapshotter

    @property
    def content(self) -> ContentStore:
        return self.images.content


@pytest.fixture
def stores(tmp_path: Path):  # type: ignore[no-untyped-def]
    meta = MetadataStore(tmp_path / "servin.db")
    s = Stores(ImageStore(meta, ContentStore(tmp_path / "content")),
               Snapshotter(tmp_path / "snapshots", driver="copy", durable=False))
    yield s
    meta.close()


LAYER = make_tar([file("etc/motd", "hello")])


def _record(s: Stores, lease) -> ImageRecord:  # type: ignore[no-untyped-def]
    """Write a one-layer image's blobs under ``lease``, unpack it; the record to add."""
    blob = s.content.write_bytes(LAYER, lease=lease)
    diff = sha256(LAYER)
    lease.add_chain(chain_id(None, diff))
    s.snaps.ensure_layers(s.content, [(blob, diff)])
    config = json.dumps({"rootfs": {"type": "layers", "diff_ids": [diff]}}).encode()
    config_digest = s.content.write_bytes(config, lease=lease)
    layer_desc = {"mediaType": mediatypes.OCI_LAYER_TAR, "digest": blob, "size": len(LAYER)}
    manifest = s.content.write_bytes(oci_manifest(config_digest, len(config), [layer_desc]),
                                     lease=lease)
    return ImageRecord(config_digest, manifest, mediatypes.OCI_MANIFEST, config_digest,
                       "2024-01-01T00:00:00Z", len(LAYER))


def test_lease_holds_until_released(stores: Stores) -> None:
    with stores.content.leases.lease("test") as lease:
        record = _record(stores, lease)
        assert gc.collect(stores.images, stores.snaps).blobs == []
        assert stores.snaps.layers() == [sha256(LAYER)]
        assert stores.content.leases.open_leases() == ["test"]
    assert stores.content.leases.open_leases() == []
    done = gc.collect(stores.images, stores.snaps)  # never recorded: all of it goes
    assert sorted(done.blobs) == sorted([record.manifest_digest, record.config_digest,
                                         sha256(LAYER)])
    assert done.layers == [sha256(LAYER)] and done.reclaimed > len(LAYER)
    assert list(stores.content.digests()) == [] and stores.snaps.layers() == []
    assert list((stores.snaps.layout.tmp).iterdir()) == []


def test_recorded_image_keeps_its_blobs_and_layers(stores: Stores) -> None:
    with stores.content.leases.lease("test") as lease:
        record = _record(stores, lease)
        stores.images.add(record, [])
    assert gc.collect(stores.images, stores.snaps).blobs == []
    assert stores.snaps.has_layer(sha256(LAYER))
    stores.images.delete(record.id)
    assert len(gc.collect(stores.images, stores.snaps).blobs) == 3


def test_reusing_an_unreferenced_blob_and_an_ingest_in_progress(stores: Stores) -> None:
    orphan = stores.content.write_bytes(b"left by someone")
    with stores.content.leases.lease("reuse") as lease:
        lease.add_blob(orphan)  # first hold it, then rely on it existing
        assert stores.content.exists(orphan)
        writer = stores.content.writer(lease)
        writer.write(b"half")
        gc.collect(stores.images, stores.snaps)
        assert stores.content.exists(orphan)
        writer.write(b" written")
        digest = writer.commit()
        gc.collect(stores.images, stores.snaps)
        assert stores.content.exists(digest)
    gc.collect(stores.images, stores.snaps)
    assert not stores.content.exists(orphan) and not stores.content.exists(digest)


def test_collector_racing_operations_never_takes_what_they_record(stores: Stores) -> None:
    stop = threading.Event()
    errors: list[BaseException] = []

    def collector() -> None:
        try:
            while not stop.is_set():
                gc.collect(stores.images, stores.snaps)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=collector)
    thread.start()
    try:
        for _ in range(25):
            with stores.content.leases.lease("op") as lease:
                record = _record(stores, lease)
                stores.images.add(record, [])
            # Recorded: nothing of it may be missing, whatever the collector did meanwhile.
            for digest in gc.referenced_blobs(stores.images, record):
                stores.content.verify(digest)
            assert stores.snaps.has_layer(sha256(LAYER))
            stores.images.delete(record.id)
    finally:
        stop.set()
        thread.join()
    assert errors == []
    gc.collect(stores.images, stores.snaps)
    assert list(stores.content.digests()) == [] and stores.snaps.layers() == []
