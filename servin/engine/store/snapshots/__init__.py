"""Servin's snapshotter: image layers as overlayfs lowers, container root filesystems on top.

See :mod:`.snapshotter` for the model and :mod:`.layout` for the on-disk layout.
"""

from servin.engine.store.snapshots.layers import chain_id, chain_ids
from servin.engine.store.snapshots.mounts import SnapshotMounts
from servin.engine.store.snapshots.snapshotter import DRIVERS, Snapshotter

__all__ = ["DRIVERS", "SnapshotMounts", "Snapshotter", "chain_id", "chain_ids"]
