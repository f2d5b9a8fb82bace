"""Schema migrations of the metadata store, applied in order; never edit a released one.

Each entry is one SQL script, or a function given the connection inside the migration's
transaction; its position (1-based) is the schema version it brings. Statements are separated
by ';' (no ';' inside string literals).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable

from servin.engine.store import legacy_spec


def _containers_as_documents(db: sqlite3.Connection) -> None:
    """6: container specs become the core's own JSON document (was servin.v1's protobuf).

    ``spec`` holds ``{"config", "host_config", "networking", "mounts"}`` as described in
    docs/architecture.md ("Stored form"); the pod a container belongs to gets a column.
    """
    db.execute("ALTER TABLE containers ADD COLUMN doc TEXT NOT NULL DEFAULT '{}'")
    db.execute("ALTER TABLE containers ADD COLUMN pod_id TEXT NOT NULL DEFAULT ''")
    rows = db.execute("SELECT id, spec FROM containers").fetchall()
    for row in rows:
        doc, pod_id = legacy_spec.convert(bytes(row[1]))
        db.execute("UPDATE containers SET doc = ?, pod_id = ? WHERE id = ?",
                   (json.dumps(doc, separators=(",", ":")), pod_id, row[0]))
    db.execute("ALTER TABLE containers DROP COLUMN spec")
    db.execute("ALTER TABLE containers RENAME COLUMN doc TO spec")
    db.execute("CREATE INDEX containers_by_pod ON containers(pod_id)")


Migration = str | Callable[[sqlite3.Connection], None]

MIGRATIONS: tuple[Migration, ...] = (
    # 1: images and the names that point at them.
    """
    CREATE TABLE images (
        id TEXT PRIMARY KEY,                 -- sha256:<config digest hex>
        manifest_digest TEXT NOT NULL,
        manifest_media_type TEXT NOT NULL,
        config_digest TEXT NOT NULL,
        created TEXT NOT NULL,               -- RFC 3339, from the image config
        size INTEGER NOT NULL,               -- bytes of the uncompressed layers
        labels TEXT NOT NULL DEFAULT '{}',   -- JSON object
        added_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
    );
    CREATE TABLE image_refs (
        name TEXT PRIMARY KEY,               -- normalised: docker.io/library/busybox:latest
        image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
        kind TEXT NOT NULL DEFAULT 'tag'     -- tag or digest
    );
    CREATE INDEX image_refs_by_image ON image_refs(image_id)
    """,
    # 2: containers.
    """
    CREATE TABLE containers (
        id TEXT PRIMARY KEY,                 -- 64 hex digits
        name TEXT NOT NULL UNIQUE,
        image_ref TEXT NOT NULL,             -- the image as the user named it
        image_id TEXT NOT NULL,
        spec BLOB NOT NULL,                  -- servin.v1.ContainerSpec, serialised
        created_ns INTEGER NOT NULL,
        state TEXT NOT NULL,                 -- JSON: see servin.engine.containers.model
        snapshot_chain TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX containers_by_image ON containers(image_id)
    """,
    # 3: volumes (named data that outlives containers; the local driver keeps it under
    # <root>/volumes/<name>/_data).
    """
    CREATE TABLE volumes (
        name TEXT PRIMARY KEY,
        driver TEXT NOT NULL DEFAULT 'local',
        created_ns INTEGER NOT NULL,
        labels TEXT NOT NULL DEFAULT '{}',   -- JSON object
        options TEXT NOT NULL DEFAULT '{}',  -- JSON object: type, device, o
        anonymous INTEGER NOT NULL DEFAULT 0
    )
    """,
    # 4: networks, and each container's endpoint on them (its address: the IPAM record).
    """
    CREATE TABLE networks (
        id TEXT PRIMARY KEY,                 -- 64 hex digits
        name TEXT NOT NULL UNIQUE,
        driver TEXT NOT NULL,                -- bridge, host, null
        subnet TEXT NOT NULL DEFAULT '',     -- CIDR ('' for host and null)
        gateway TEXT NOT NULL DEFAULT '',
        ip_range TEXT NOT NULL DEFAULT '',
        internal INTEGER NOT NULL DEFAULT 0,
        bridge TEXT NOT NULL DEFAULT '',     -- the Linux bridge's name
        labels TEXT NOT NULL DEFAULT '{}',   -- JSON object
        options TEXT NOT NULL DEFAULT '{}',  -- JSON object
        builtin INTEGER NOT NULL DEFAULT 0,  -- bridge, host, none: cannot be removed
        created_ns INTEGER NOT NULL
    );
    CREATE TABLE network_endpoints (
        network_id TEXT NOT NULL REFERENCES networks(id) ON DELETE RESTRICT,
        container_id TEXT NOT NULL REFERENCES containers(id) ON DELETE CASCADE,
        address TEXT NOT NULL,               -- IPv4, no prefix
        mac TEXT NOT NULL,
        aliases TEXT NOT NULL DEFAULT '[]',  -- JSON list
        static INTEGER NOT NULL DEFAULT 0,   -- given with --ip
        PRIMARY KEY (network_id, container_id),
        UNIQUE (network_id, address)
    );
    CREATE INDEX network_endpoints_by_container ON network_endpoints(container_id)
    """,
    # 5: the build cache: each build step's result by the digest of its inputs.
    """
    CREATE TABLE build_cache (
        key TEXT PRIMARY KEY,                -- hex sha256 of the step's inputs
        state TEXT NOT NULL,                 -- JSON: the image config and layers after it
        blobs TEXT NOT NULL DEFAULT '[]',    -- JSON list: the layer blobs the state uses
        chain TEXT NOT NULL DEFAULT '',      -- the top layer's chain ID ('' for none)
        description TEXT NOT NULL DEFAULT '',-- the instruction, for listings
        size INTEGER NOT NULL DEFAULT 0,     -- bytes of the step's own layer (0: none)
        created_ns INTEGER NOT NULL,
        last_used_ns INTEGER NOT NULL
    )
    """,
    _containers_as_documents,
    # 7: pods (docs/architecture.md, "Pods"); members point at them by containers.pod_id.
    """
    CREATE TABLE pods (
        id TEXT PRIMARY KEY,                 -- 64 hex digits
        name TEXT NOT NULL UNIQUE,
        created_ns INTEGER NOT NULL,
        spec TEXT NOT NULL,                  -- JSON: the PodConfig
        state TEXT NOT NULL                  -- JSON: infra, cgroup, times, intents
    )
    """,
)
